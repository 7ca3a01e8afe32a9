# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Every kind of image file, good and bad, in one folder run through inference.yaml as a user runs it.

``python -m monai.bundle run inference --config_file bundle/configs/inference.yaml --dataset_dir images
--output_dir out`` (here in-process, once for the module): each bad file gets one ``FAILED`` log line naming it and
why, a ``failed`` row in summary.csv and no outputs; every other file gets its four outputs; the command ends with
one ``ERROR:`` line naming every failed file. Files that hold the same picture in another format give the same
angles.
"""

from __future__ import annotations

import csv
import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_files import write_dicom
from PIL import Image
from tiny_bundle import inference_workflow

from reliability import error_line

OUTPUTS = (".json", "_mask.png", "_cam.png", "_overlay.png")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(path: Path, values: np.ndarray, sbit: int | None = None) -> None:
    """A 16-bit grayscale png of ``values`` (H, W), with an ``sBIT`` chunk when ``sbit`` is given."""
    height, width = values.shape
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in values)
    chunks = [_png_chunk(b"IHDR", header)]
    chunks += [_png_chunk(b"sBIT", bytes([sbit]))] if sbit is not None else []
    chunks += [_png_chunk(b"IDAT", zlib.compress(rows)), _png_chunk(b"IEND", b"")]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


def _huge_header(path: Path, side: int = 40000) -> None:
    """A png whose header declares ``side`` x ``side`` pixels (a decompression bomb), with almost no data."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    chunks = [_png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)), _png_chunk(b"IEND", b"")]
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


def _truncated(path: Path, save) -> None:
    save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _write_folder(folder: Path) -> None:
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    gray = rng.integers(0, 256, (96, 40), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "gray8.png")
    Image.fromarray(np.stack([gray] * 3, axis=-1), mode="RGB").save(folder / "rgb.png")
    alpha = rng.integers(0, 256, gray.shape, dtype=np.uint8)  # alpha is ignored: the picture is the same
    Image.fromarray(np.stack([gray] * 3 + [alpha], axis=-1), mode="RGBA").save(folder / "rgba.png")
    Image.fromarray(gray).save(folder / "photo.jpg", quality=95)
    twelve = rng.integers(0, 4096, (90, 44)).astype(np.uint16)
    twelve[0, 0] = 4095  # the range test finds 12 bits
    _png16(folder / "bits12_sbit.png", twelve, sbit=12)
    _png16(folder / "bits12_range.png", twelve)
    _png16(folder / "bits16.png", rng.integers(0, 65536, (90, 44)).astype(np.uint16))
    write_dicom(folder / "mono2.dcm", twelve, photometric="MONOCHROME2", PixelSpacing=[0.2, 0.2])
    write_dicom(folder / "mono1.dcm", 4095 - twelve, photometric="MONOCHROME1")
    Image.fromarray(np.tile(np.linspace(0, 255, 800, dtype=np.uint8), (2000, 1))).save(folder / "large.png")
    (folder / "left").mkdir()
    Image.fromarray(gray).save(folder / "left" / "gray8.png")  # same name in a subfolder: outputs mirror it
    # bad files
    _truncated(folder / "truncated.jpg", lambda path: Image.fromarray(gray).save(path))
    _truncated(folder / "truncated.png", lambda path: Image.fromarray(gray).save(path))
    (folder / "notes.png").write_text("this is not an image\n")
    (folder / "zero_bytes.png").write_bytes(b"")
    Image.fromarray(np.full((100, 1), 200, np.uint8)).save(folder / "one_pixel_wide.png")
    Image.fromarray(np.full((1, 1), 200, np.uint8)).save(folder / "one_pixel.png")
    _huge_header(folder / "huge.png")
    dataset = pydicom.dcmread(write_dicom(folder / "no_pixels.dcm", twelve))
    del dataset.PixelData  # a DICOM header without its image
    dataset.save_as(folder / "no_pixels.dcm")
    write_dicom(folder / "zero_rows.dcm", np.zeros((0, 3), np.uint16), rows=0)
    (folder / "readme.txt").write_text("not an image by its suffix: not looked at")


# bad file -> what its FAILED line and its summary row must say
BAD = {
    "truncated.jpg": "truncated",
    "truncated.png": "truncated",
    "notes.png": "not an image format",
    "zero_bytes.png": "not an image format",
    "one_pixel_wide.png": "too small to hold a spine",
    "one_pixel.png": "too small to hold a spine",
    "huge.png": "DecompressionBombError",
    "no_pixels.dcm": "has no pixel data",
    "zero_rows.dcm": "zero dimension",
}
GOOD = [
    "bits12_range.png",
    "bits12_sbit.png",
    "bits16.png",
    "photo.jpg",
    "gray8.png",
    "large.png",
    "left/gray8.png",
    "mono1.dcm",
    "mono2.dcm",
    "rgb.png",
    "rgba.png",
]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def folder_run(tiny_inference, tmp_path_factory) -> dict:
    """The folder, its output folder, the log lines and the last line of one inference run over it."""
    root = tmp_path_factory.mktemp("image_files")
    _write_folder(root / "images")
    handler, logger = _Lines(), logging.getLogger("scripts")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        workflow = inference_workflow(tiny_inference, "inference", root / "images", root / "out")
        last = error_line(workflow)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    with (root / "out" / "summary.csv").open(newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    return {"images": root / "images", "out": root / "out", "lines": handler.lines, "last": last, "rows": rows}


def _angles(out: Path, name: str) -> np.ndarray:
    record = json.loads((out / f"{Path(name).with_suffix('')}.json").read_text())
    return np.array(list(record["angles_deg"].values()))


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_file_is_named_once_and_the_others_are_processed(folder_run, name):
    path = folder_run["images"] / name
    failed = [line for line in folder_run["lines"] if line.startswith("FAILED ")]
    mine = [line for line in failed if line.startswith(f"FAILED {path}: ")]
    print(mine)
    assert len(mine) == 1 and BAD[name] in mine[0], failed
    assert folder_run["rows"][name]["status"] == "failed" and BAD[name] in folder_run["rows"][name]["error"]
    assert not list(folder_run["out"].glob(f"{Path(name).stem}*"))
    assert f"{path}:" in folder_run["last"]


def test_the_command_ends_with_one_line_counting_the_failed_files(folder_run):
    total = len(BAD) + len(GOOD)
    print(folder_run["last"].splitlines()[0])
    assert folder_run["last"].startswith(f"ERROR: {len(BAD)} of {total} image(s) failed")
    assert all(folder_run["last"].count(f"{folder_run['images'] / name}:") == 1 for name in BAD)


@pytest.mark.parametrize("name", GOOD)
def test_a_good_file_gets_its_four_outputs_at_its_own_size(folder_run, name):
    stem = str(Path(name).with_suffix(""))
    assert all((folder_run["out"] / f"{stem}{suffix}").is_file() for suffix in OUTPUTS)
    record = json.loads((folder_run["out"] / f"{stem}.json").read_text())
    mask = Image.open(folder_run["out"] / f"{stem}_mask.png")
    assert record["name"] == name and (mask.height, mask.width) == tuple(record["image_size"].values())
    assert folder_run["rows"][name]["status"] == "ok"


def test_a_text_file_is_not_an_image_and_is_skipped_not_failed(folder_run):
    assert "readme.txt" not in folder_run["rows"]
    assert any("not images" in line and "readme.txt" in line for line in folder_run["lines"])


@pytest.mark.parametrize(
    ("name", "same_as"),
    [
        ("rgb.png", "gray8.png"),  # luminance of equal channels is the gray value
        ("rgba.png", "gray8.png"),  # alpha is ignored
        ("mono1.dcm", "mono2.dcm"),  # MONOCHROME1 is inverted so bone is bright
        ("bits12_sbit.png", "mono2.dcm"),  # 12-bit samples in a 16-bit png, read by their sBIT chunk
        ("bits12_range.png", "mono2.dcm"),  # the same without sBIT, read by their range
    ],
)
def test_one_picture_in_another_format_gives_the_same_angles(folder_run, name, same_as):
    np.testing.assert_allclose(_angles(folder_run["out"], name), _angles(folder_run["out"], same_as), atol=1e-3)


@pytest.mark.parametrize(("name", "source"), [("bits12_sbit.png", "sBIT chunk"), ("bits12_range.png", "largest value")])
def test_a_12_bit_png_says_how_its_depth_was_found(folder_run, name, source):
    path = folder_run["images"] / name
    assert f"{path}: 16-bit png read as 12-bit samples (from its {source})." in folder_run["lines"]


def test_a_large_radiograph_is_mapped_back_to_its_full_size(folder_run):
    mask = Image.open(folder_run["out"] / "large_mask.png")
    assert mask.size == (800, 2000)
    assert json.loads((folder_run["out"] / "large.json").read_text())["image_size"] == {"height": 2000, "width": 800}


def test_dicom_pixel_spacing_reaches_the_record(folder_run):
    assert json.loads((folder_run["out"] / "mono2.json").read_text())["pixel_spacing_mm"] == [0.2, 0.2]
