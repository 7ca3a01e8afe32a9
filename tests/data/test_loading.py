# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.loading: every file type, the (1, H, W) layout, intensity scaling, metadata and bad files."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from dicom_files import COMPRESSED_SYNTAXES, write_dicom
from monai.data import MetaTensor
from PIL import Image
from pydicom import dcmread
from pydicom.uid import JPEGLosslessSV1

from scripts.data.decode import is_dicom, read_grayscale
from scripts.data.loading import LoadGrayscale, LoadGrayscaled


def _zero_width_png(path: Path) -> Path:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)  # width 0, height 5, 8-bit grayscale
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    return path


def test_8bit_png_layout_is_rows_y_columns_x(tmp_path: Path) -> None:
    pixels = np.zeros((3, 5), dtype=np.uint8)  # H=3, W=5: a transposed layout would come back (1, 5, 3)
    pixels[1, 4] = 255  # the point (x=4, y=1)
    pixels[2, 0] = 51
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = LoadGrayscale()(tmp_path / "a.png")
    assert isinstance(image, MetaTensor)
    assert image.shape == (1, 3, 5) and image.dtype == torch.float32
    assert image[0, 1, 4].item() == 1.0
    assert image[0, 2, 0].item() == pytest.approx(0.2)
    assert image.sum().item() == pytest.approx(1.2)
    np.testing.assert_array_equal(image.meta["original_size"], [3, 5])
    assert image.meta["filename_or_obj"] == str(tmp_path / "a.png")


def test_8bit_jpeg(tmp_path: Path) -> None:
    pixels = np.full((16, 8), 200, dtype=np.uint8)
    pixels[:8] = 40  # flat blocks survive JPEG almost exactly
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    image = LoadGrayscale()(str(tmp_path / "a.jpg"))
    assert image.shape == (1, 16, 8)
    np.testing.assert_allclose(image[0, :8].numpy(), 40 / 255, atol=3 / 255)
    np.testing.assert_allclose(image[0, 8:].numpy(), 200 / 255, atol=3 / 255)


def test_16bit_png_is_scaled_by_its_bit_depth(tmp_path: Path) -> None:
    pixels = np.array([[0, 1000, 32768], [65535, 255, 13107]], dtype=np.uint16)
    Image.fromarray(pixels).save(tmp_path / "a16.png")
    assert Image.open(tmp_path / "a16.png").mode.startswith("I")
    image = LoadGrayscale()(tmp_path / "a16.png")
    np.testing.assert_allclose(image[0].numpy(), pixels / 65535.0, atol=1e-7)
    assert image[0, 0, 1].item() < 0.02  # 1000 / 255 would have saturated


def _with_sbit(path: Path, bits: int) -> None:
    """Insert a gray ``sBIT`` chunk right after the IHDR chunk of a png."""
    data = path.read_bytes()
    end_of_ihdr = 8 + 8 + 13 + 4
    chunk = struct.pack(">I", 1) + b"sBIT" + bytes([bits])
    chunk += struct.pack(">I", zlib.crc32(b"sBIT" + bytes([bits])) & 0xFFFFFFFF)
    path.write_bytes(data[:end_of_ihdr] + chunk + data[end_of_ihdr:])


@pytest.mark.parametrize(
    ("largest", "sbit", "bits", "source"),
    [
        (4095, 12, 12, "sBIT"),  # 12-bit samples stored unscaled, as exporters write them, and declared
        (4095, None, 12, "range"),  # the same without the chunk: the smallest depth that holds the values
        (1023, None, 10, "range"),
        (40000, 12, 16, "range"),  # samples scaled up to 16 bits (the png rule): the chunk does not hold them
        (200, None, 8, "range"),
    ],
)
def test_16bit_png_is_read_at_the_depth_its_samples_were_written(tmp_path, largest, sbit, bits, source, caplog):
    pixels = np.array([[0, largest // 2], [largest, 1]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(pixels).save(path)
    if sbit is not None:
        _with_sbit(path, sbit)
    with caplog.at_level(logging.INFO, logger="scripts.data.decode"):
        image = LoadGrayscale()(path)
    np.testing.assert_allclose(image[0].numpy(), pixels / (2**bits - 1), atol=1e-6)
    assert image.meta["bits_used"] == bits and image.meta["bits_source"] == source
    assert f"read as {bits}-bit samples" in caplog.text and "deep.png" in caplog.text


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_colour_png_becomes_luminance(tmp_path: Path, mode: str) -> None:
    pixels = np.zeros((2, 2, len(mode)), dtype=np.uint8)
    pixels[0, 0, 0] = pixels[0, 1, 1] = pixels[1, 0, 2] = 255  # pure red, green, blue
    pixels[1, 1, :3] = 255  # white
    if mode == "RGBA":
        pixels[..., 3] = [[0, 255], [128, 7]]  # alpha must not matter
    Image.fromarray(pixels, mode=mode).save(tmp_path / "c.png")
    image = LoadGrayscale()(tmp_path / "c.png")
    np.testing.assert_allclose(image[0].numpy(), [[0.299, 0.587], [0.114, 1.0]], atol=1e-6)


def test_dicom_monochrome2_bits_stored_and_spacing(tmp_path: Path) -> None:
    stored = np.array([[0, 4095, 2048], [0xF000 | 100, 1, 4000]], dtype=np.uint16)  # high bits beyond BitsStored=12
    path = write_dicom(tmp_path / "a.dcm", stored, PixelSpacing=[0.15, 0.2], ImagerPixelSpacing=[0.18, 0.25])
    image = LoadGrayscale()(path)
    expected = np.array([[0, 4095, 2048], [100, 1, 4000]]) / 4095.0  # 12 bits stored, not 16
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(image.meta["pixel_spacing"], [0.15, 0.2])
    np.testing.assert_allclose(image.meta["imager_pixel_spacing"], [0.18, 0.25])
    np.testing.assert_allclose(image.affine.diagonal()[:2].numpy(), [0.15, 0.2])
    assert image.meta["spacing_source"] == "PixelSpacing"
    np.testing.assert_array_equal(image.meta["original_size"], [2, 3])


def test_dicom_monochrome1_is_inverted_so_bone_is_bright(tmp_path: Path) -> None:
    stored = np.array([[0, 4095], [1023, 3071]], dtype=np.uint16)
    image = LoadGrayscale()(write_dicom(tmp_path / "m1.dcm", stored, photometric="MONOCHROME1"))
    np.testing.assert_allclose(image[0].numpy(), 1.0 - stored / 4095.0, atol=1e-6)
    assert "pixel_spacing" not in image.meta


def test_dicom_rescale_slope_and_intercept(tmp_path: Path) -> None:
    stored = np.array([[0, 1000, 4095]], dtype=np.uint16)
    # a negative slope reverses the stored scale: modality value 3000 - v, range [-1095, 3000]
    image = LoadGrayscale()(write_dicom(tmp_path / "r.dcm", stored, slope=-1.0, intercept=3000.0))
    np.testing.assert_allclose(image[0].numpy(), [[1.0, 3095 / 4095, 0.0]], atol=1e-6)
    # a positive slope and intercept only move the range with the values: the image is the stored one
    image = LoadGrayscale()(write_dicom(tmp_path / "p.dcm", stored, slope=2.0, intercept=-1024.0))
    np.testing.assert_allclose(image[0].numpy(), stored / 4095.0, atol=1e-6)


def test_dicom_found_by_content_whatever_the_suffix(tmp_path: Path) -> None:
    stored = np.array([[0, 4095, 2048]], dtype=np.uint16)
    path = write_dicom(tmp_path / "export.jpg", stored)
    assert is_dicom(path)
    np.testing.assert_allclose(read_grayscale(path)[0], stored / 4095.0, atol=1e-6)
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(tmp_path / "plain.png")
    assert not is_dicom(tmp_path / "plain.png")


def test_dictionary_version_puts_metadata_on_the_metatensor(tmp_path: Path) -> None:
    Image.fromarray(np.full((4, 2), 255, dtype=np.uint8)).save(tmp_path / "x.png")
    out = LoadGrayscaled(keys="image")({"image": str(tmp_path / "x.png"), "angles": np.zeros(3)})
    assert out["image"].shape == (1, 4, 2)
    assert out["image"].meta["filename_or_obj"] == str(tmp_path / "x.png")
    np.testing.assert_array_equal(out["image"].meta["original_size"], [4, 2])
    assert "angles" in out


def _truncated_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 48), dtype=np.uint8)).save(path.with_suffix(".full.jpg"))
    data = path.with_suffix(".full.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda folder: folder / "missing.png", "not found"),
        (lambda folder: _truncated_jpeg(folder / "cut.jpg"), "truncated"),
        (lambda folder: (folder / "notes.png").write_text("not an image") and folder / "notes.png", "not an image"),
        (lambda folder: _zero_width_png(folder / "empty.png"), "zero dimension"),
        (lambda folder: write_dicom(folder / "empty.dcm", np.zeros((0, 3), np.uint16), rows=0), "zero dimension"),
    ],
    ids=["missing", "truncated-jpeg", "text-as-png", "zero-width-png", "zero-rows-dicom"],
)
def test_bad_files_raise_value_error_naming_the_file(tmp_path: Path, make, problem: str) -> None:
    path = make(tmp_path)
    with pytest.raises(ValueError, match=problem) as caught:
        LoadGrayscale()(path)
    assert path.name in str(caught.value)


_SYNTAX_IDS = [uid.name.split(" ")[0] + ("-SV1" if uid == JPEGLosslessSV1 else "") for uid in COMPRESSED_SYNTAXES]


@pytest.mark.parametrize("syntax", list(COMPRESSED_SYNTAXES), ids=_SYNTAX_IDS)
@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_compressed_dicom_decodes_to_the_original_pixels(tmp_path: Path, syntax, photometric: str) -> None:
    # 48 x 40: OpenJPEG's default five decomposition levels need 32 pixels a side; both ends of the 12 bits present
    stored = np.random.default_rng(7).integers(0, 4096, size=(48, 40)).astype(np.uint16)
    stored[0, 0], stored[-1, -1], stored[10, 3] = 4095, 0, 4095
    path = write_dicom(tmp_path / "c.dcm", stored, photometric=photometric, syntax=syntax, PixelSpacing=[0.1, 0.12])
    assert dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax
    assert dcmread(path)["PixelData"].is_undefined_length  # encapsulated: the file really is compressed
    image = LoadGrayscale()(path)
    expected = stored / 4095.0 if photometric == "MONOCHROME2" else 1.0 - stored / 4095.0
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(image.affine.diagonal()[:2].numpy(), [0.1, 0.12])


def test_jpeg_lossless_stuffs_ff_bytes_and_reaches_category_12(tmp_path: Path) -> None:
    # alternating 0 / 4095 columns: differences of +-4095 (category 12) and runs of 1-bits that produce 0xFF bytes
    stored = np.tile(np.array([[0, 4095]], dtype=np.uint16), (6, 8))
    path = write_dicom(tmp_path / "ff.dcm", stored, syntax=JPEGLosslessSV1)
    assert b"\xff\x00" in dcmread(path).PixelData
    np.testing.assert_allclose(LoadGrayscale()(path)[0].numpy(), stored / 4095.0, atol=1e-6)


@pytest.mark.parametrize(
    ("tags", "source", "spacing"),
    [
        ({"PixelSpacing": [0.15, 0.2], "ImagerPixelSpacing": [0.18, 0.25]}, "PixelSpacing", [0.15, 0.2]),
        ({"ImagerPixelSpacing": [0.18, 0.25]}, "ImagerPixelSpacing", [0.18, 0.25]),
        ({}, "none", [1.0, 1.0]),
    ],
    ids=["pixel-spacing-first", "imager-pixel-spacing-when-no-pixel-spacing", "none"],
)
def test_dicom_spacing_source_is_recorded(tmp_path: Path, tags: dict, source: str, spacing: list, caplog) -> None:
    stored = np.zeros((3, 4), dtype=np.uint16)
    with caplog.at_level(logging.INFO, logger="scripts.data.decode"):
        image = LoadGrayscale()(write_dicom(tmp_path / "s.dcm", stored, **tags))
    assert image.meta["spacing_source"] == source
    assert f"pixel spacing from {source}" in caplog.text
    np.testing.assert_allclose(image.affine.diagonal()[:2].numpy(), spacing)
    assert ("pixel_spacing" in image.meta) == ("PixelSpacing" in tags)
    assert ("imager_pixel_spacing" in image.meta) == ("ImagerPixelSpacing" in tags)


def test_non_dicom_files_have_no_spacing_source(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(tmp_path / "plain.png")
    image = LoadGrayscale()(tmp_path / "plain.png")
    assert image.meta["spacing_source"] == "none"
    np.testing.assert_allclose(image.affine.diagonal()[:2].numpy(), [1.0, 1.0])


def test_undecodable_compressed_dicom_names_the_file_and_syntax(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "broken.dcm", np.zeros((4, 4), dtype=np.uint16), syntax=JPEGLosslessSV1)
    dataset = dcmread(path)
    dataset.PixelData = dataset.PixelData.replace(b"\xff\xc3", b"\xff\xc7")  # SOF3 -> SOF7: not lossless JPEG
    dataset.save_as(path)
    with pytest.raises(ValueError, match=r"broken\.dcm.*JPEG Lossless.*cannot be decoded"):
        LoadGrayscale()(path)
