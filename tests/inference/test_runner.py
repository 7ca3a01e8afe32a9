# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""configs/inference.yaml run in-process on tiny images: every file type, every output, bad files, no overwriting."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from inference.samples import write_bad_images, write_good_images
from monai.bundle import ConfigWorkflow
from monai.engines import SupervisedEvaluator
from PIL import Image
from tiny_bundle import CONFIGS, inference_workflow

import scripts.data.loading
import scripts.inference.predictor
import scripts.inference.writers
from scripts.inference.folders import list_images
from scripts.inference.runner import FolderEvaluator, InferenceError
from scripts.inference.writers import SUMMARY_COLUMNS, ImageResultWriter

VERSION = json.loads((CONFIGS / "metadata.json").read_text())["version"]


def _workflow(
    tiny_inference: dict[str, Path], dataset_dir: Path | str, output_dir: Path, **overrides: object
) -> ConfigWorkflow:
    return inference_workflow(tiny_inference, "inference", dataset_dir, output_dir, **overrides)


def _cause(error: BaseException) -> BaseException:
    """The error the code raised (MONAI wraps it in "Failed to evaluate ..." or "Failed to instantiate ...")."""
    while error.__cause__ is not None and str(error).startswith("Failed to "):
        error = error.__cause__
    return error


def _run(workflow: ConfigWorkflow) -> None:
    try:
        workflow.run()
    except RuntimeError as error:
        raise _cause(error) from None


def _summary(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_properties_are_present_without_a_checkpoint_or_a_folder(tiny_inference, tmp_path):
    workflow = _workflow(tiny_inference, "", tmp_path / "out", ckpt_dir=tmp_path / "no_models")
    assert workflow.check_properties() == []
    assert isinstance(workflow.evaluator, FolderEvaluator) and isinstance(workflow.evaluator, SupervisedEvaluator)


def test_each_file_is_decoded_once(tiny_inference, tmp_path, monkeypatch):
    sizes = write_good_images(tmp_path / "images")
    decoded = []
    read = scripts.data.loading.read_grayscale
    monkeypatch.setattr(scripts.data.loading, "read_grayscale", lambda path: decoded.append(path) or read(path))
    _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out"))
    assert sorted(Path(path).name for path in decoded) == sorted(sizes)


def test_the_writer_names_the_file_whose_prediction_lacks_the_original_image(tmp_path):
    writer = ImageResultWriter(model_version="1.0", checkpoint="model.pt")
    with pytest.raises(KeyError, match=r"'x\.png' has no 'image_original'.*CopyItemsd"):
        writer({"name": "x.png", "angles": np.zeros(3)}, tmp_path)


def test_every_file_type_gives_four_files_at_the_original_size(tiny_inference, tmp_path):
    sizes = write_good_images(tmp_path / "images")
    _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out"))
    out = tmp_path / "out"
    for name, (height, width) in sizes.items():
        stem = Path(name).stem
        mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
        cam = Image.open(out / f"{stem}_cam.png")
        overlay = Image.open(out / f"{stem}_overlay.png")
        assert mask.shape == (height, width) and set(np.unique(mask)) <= {0, 255}
        assert cam.size == (width, height) and cam.mode == "L"
        assert overlay.size == (width, height) and overlay.mode == "RGB"
        record = json.loads((out / f"{stem}.json").read_text())
        assert list(record["angles_deg"]) == ["angle1", "angle2", "angle3"]
        assert all(0.0 <= value <= 180.0 for value in record["angles_deg"].values())
        assert "largest" in record["angle_definitions"]["angle1"]
        assert record["curve_type"] in ("none", "single", "double", "triple") and "curve_type_definition" in record
        assert record["image_size"] == {"height": height, "width": width}
        assert record["model_version"] == VERSION
        assert record["checkpoint"] == str(tiny_inference["ckpt_dir"] / "model.pt")
        assert record["outputs"] == {
            "mask": f"{stem}_mask.png",
            "mask_nifti": f"{stem}_mask.nii.gz",
            "cam": f"{stem}_cam.png",
            "overlay": f"{stem}_overlay.png",
        }
    assert json.loads((out / "mono1.json").read_text())["pixel_spacing_mm"] == [0.15, 0.2]
    assert json.loads((out / "gray8.json").read_text())["pixel_spacing_mm"] is None
    assert json.loads((out / "mono1.json").read_text())["spacing_source"] == "PixelSpacing"
    nifti = nib.load(out / "mono1_mask.nii.gz")  # the NIfTI mask carries the DICOM spacing (row 0.15, column 0.2)
    assert nifti.header.get_zooms()[:2] == pytest.approx((0.2, 0.15))
    assert nifti.shape[:2] == sizes["mono1.dcm"][::-1]
    rows = _summary(out / "summary.csv")
    assert list(rows[0]) == list(SUMMARY_COLUMNS)
    assert [row["name"] for row in rows] == sorted(sizes) and {row["status"] for row in rows} == {"ok"}
    mono = next(row for row in rows if row["name"] == "mono1.dcm")
    assert (mono["height"], mono["width"], mono["pixel_spacing_row_mm"]) == ("120", "50", "0.15")
    first = json.loads((out / f"{Path(rows[0]['name']).stem}.json").read_text())
    assert float(rows[0]["angle1"]) == pytest.approx(first["angles_deg"]["angle1"], abs=1e-3)


def test_bad_files_are_named_and_the_good_ones_still_processed(tiny_inference, tmp_path, caplog):
    sizes = write_good_images(tmp_path / "images")
    reasons = write_bad_images(tmp_path / "images")
    (tmp_path / "images" / "readme.txt").write_text("not looked at")
    with caplog.at_level(logging.INFO, logger="scripts.inference.runner"), pytest.raises(InferenceError) as raised:
        _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out"))
    message = str(raised.value)
    assert message.startswith(f"{len(reasons)} of {len(reasons) + len(sizes)} image(s) failed")
    failed_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failed_lines) == len(reasons)
    for name, reason in reasons.items():
        assert sum(name in line and reason in line for line in failed_lines) == 1
        assert f"{tmp_path / 'images' / name}:" in message and reason in message
        assert not (tmp_path / "out" / f"{Path(name).stem}.json").exists()
    for name in sizes:
        assert (tmp_path / "out" / f"{Path(name).stem}_overlay.png").is_file()
    rows = {row["name"]: row for row in _summary(tmp_path / "out" / "summary.csv")}
    assert set(rows) == set(sizes) | set(reasons)  # readme.txt is not an image by its suffix: skipped, not failed
    assert all(rows[name]["status"] == "failed" and reasons[name] in rows[name]["error"] for name in reasons)
    assert all(rows[name]["status"] == "ok" for name in sizes)


@pytest.mark.parametrize("stage", ["postprocessing", "writing"])
def test_a_failure_after_loading_names_the_file_and_the_others_are_written(
    tiny_inference, tmp_path, caplog, monkeypatch, stage
):
    sizes = write_good_images(tmp_path / "images")
    owner = scripts.inference.predictor.SpineMaskd if stage == "postprocessing" else ImageResultWriter
    original = owner.__call__

    def failing(self, data, *args):  # fails on exact.png only, as a bug or a full disk would
        if "exact.png" in str(data["image_original"].meta["filename_or_obj"]):
            raise OSError(f"no space left while {stage}")
        return original(self, data, *args)

    monkeypatch.setattr(owner, "__call__", failing)
    with caplog.at_level(logging.INFO, logger="scripts.inference.runner"), pytest.raises(InferenceError) as raised:
        _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out"))
    assert str(raised.value).startswith(f"1 of {len(sizes)} image(s) failed")
    failed_lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert failed_lines == [f"FAILED {tmp_path / 'images' / 'exact.png'}: OSError: no space left while {stage}"]
    rows = {row["name"]: row for row in _summary(tmp_path / "out" / "summary.csv")}
    assert rows["exact.png"]["status"] == "failed" and "no space left" in rows["exact.png"]["error"]
    others = [name for name in sizes if name != "exact.png"]
    assert all(rows[name]["status"] == "ok" for name in others)
    assert all((tmp_path / "out" / f"{Path(name).stem}_overlay.png").is_file() for name in others)


def test_an_empty_folder_is_an_error(tiny_inference, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image files"):
        _run(_workflow(tiny_inference, tmp_path / "empty", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_a_missing_folder_is_named(tiny_inference, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset_dir .*absent does not exist"):
        _run(_workflow(tiny_inference, tmp_path / "absent", tmp_path / "out"))


def test_a_missing_checkpoint_is_named_before_any_image(tiny_inference, tmp_path):
    write_good_images(tmp_path / "images")
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*elsewhere/model\.pt does not exist"):
        _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out", ckpt_dir=tmp_path / "elsewhere"))
    assert not (tmp_path / "out").exists()


def test_existing_outputs_are_refused_unless_overwrite(tiny_inference, tmp_path):
    write_good_images(tmp_path / "all")
    (tmp_path / "images").mkdir()
    (tmp_path / "all" / "exact.png").rename(tmp_path / "images" / "exact.png")  # one image keeps three runs short
    out = tmp_path / "out"
    _run(_workflow(tiny_inference, tmp_path / "images", out))
    (out / "exact.json").write_text("kept")
    (out / "summary.csv").unlink()
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    with pytest.raises(FileExistsError, match=r"already exist; nothing was written \(--overwrite true"):
        _run(_workflow(tiny_inference, tmp_path / "images", out))
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before  # summary.csv not written either
    with pytest.raises(ValueError, match="overwrite must be true or false"):
        _run(_workflow(tiny_inference, tmp_path / "images", out, overwrite="flase"))
    _run(_workflow(tiny_inference, tmp_path / "images", out, overwrite="true"))
    assert json.loads((out / "exact.json").read_text())["name"] == "exact.png" and (out / "summary.csv").is_file()


def test_files_sharing_a_stem_keep_their_whole_name(tmp_path):
    for name in ("a.png", "a.JPG", "b.dcm", "c"):
        (tmp_path / name).write_bytes(b"")
    records = list_images(tmp_path)
    assert [(r["name"], r["stem"]) for r in records] == [("a.JPG", "a.JPG"), ("a.png", "a.png"), ("b.dcm", "b")]


def _gray(path: Path, size: tuple[int, int] = (64, 32), value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(value).integers(0, 256, size, dtype=np.uint8)).save(path)


OUTPUT_SUFFIXES = (".json", "_mask.png", "_mask.nii.gz", "_cam.png", "_overlay.png")


def test_images_in_subfolders_get_their_own_outputs_mirroring_the_folders(tiny_inference, tmp_path):
    images = tmp_path / "images"
    names = ["a.png", "left/a.png", "right/deep/a.png"]
    for index, name in enumerate(names):
        _gray(images / name, value=index)
    _gray(images / ".hidden" / "a.png")  # hidden folders are not walked
    _run(_workflow(tiny_inference, images, tmp_path / "out"))
    out = tmp_path / "out"
    for name in names:
        stem = name.removesuffix(".png")
        assert all((out / f"{stem}{suffix}").is_file() for suffix in OUTPUT_SUFFIXES)
        assert json.loads((out / f"{stem}.json").read_text())["name"] == name
    assert not (out / ".hidden").exists()
    rows = _summary(out / "summary.csv")
    assert [row["name"] for row in rows] == names and {row["status"] for row in rows} == {"ok"}
    assert rows[2]["file"] == str(images / "right" / "deep" / "a.png")


def test_list_images_walks_sorted_subfolders_and_names_what_it_skips(tmp_path, caplog):
    for name in ("b.png", "a/z.png", "a/a.jpg", "a/a.png", "c/notes.txt", ".git/x.png", "a/.x.png", "out/a_mask.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="scripts.inference.folders"):
        records = list_images(tmp_path, exclude=tmp_path / "out")
    assert [(r["name"], r["stem"]) for r in records] == [
        ("a/a.jpg", "a/a.jpg"),
        ("a/a.png", "a/a.png"),
        ("a/z.png", "a/z"),
        ("b.png", "b"),
    ]
    lines = [r.getMessage() for r in caplog.records]
    assert any("skipped 1 file(s) that are not images" in line and "c/notes.txt" in line for line in lines)
    assert any("skipped 1 subfolder(s)" in line and line.endswith(": out") for line in lines)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="scripts.inference.folders"):
        flat = list_images(tmp_path, recursive="false")
    assert [r["name"] for r in flat] == ["b.png"]
    skipped = [r.getMessage() for r in caplog.records if "subfolder" in r.getMessage()]
    assert len(skipped) == 1 and "skipped 3 subfolder(s) (recursive is false): a, c, out" in skipped[0]
    with pytest.raises(ValueError, match="recursive must be true or false"):
        list_images(tmp_path, recursive="yes please")


def test_resume_skips_complete_images_and_redoes_a_half_written_one(tiny_inference, tmp_path, monkeypatch):
    images, out = tmp_path / "images", tmp_path / "out"
    for index, name in enumerate(("a.png", "b.png", "sub/c.png")):
        _gray(images / name, size=(70, 40) if name == "b.png" else (64, 32), value=index)
    render = scripts.inference.writers.render_overlay
    killed = True

    def killed_on_b(image, **kwargs):  # as a kill after b's mask and cam would leave it (the run goes on here)
        if killed and image.shape == (70, 40):
            raise OSError("killed")
        return render(image, **kwargs)

    monkeypatch.setattr(scripts.inference.writers, "render_overlay", killed_on_b)
    with pytest.raises(InferenceError, match="1 of 3 image"):
        _run(_workflow(tiny_inference, images, out))
    assert (out / "b_cam.png").is_file() and not (out / "b.json").exists()  # the JSON is written last
    killed = False
    (out / "sub" / "c_cam.png").unlink()  # half-written the other way: JSON present, a png missing
    complete = {path: path.stat().st_mtime_ns for path in out.glob("a*")}
    decoded = []
    read = scripts.data.loading.read_grayscale
    monkeypatch.setattr(scripts.data.loading, "read_grayscale", lambda path: decoded.append(path) or read(path))
    _run(_workflow(tiny_inference, images, out, resume="true"))
    assert sorted(Path(path).name for path in decoded) == ["b.png", "c.png"]  # a.png is neither read nor predicted
    assert {path: path.stat().st_mtime_ns for path in out.glob("a*")} == complete
    assert len(complete) == len(OUTPUT_SUFFIXES)
    for stem in ("a", "b", "sub/c"):
        assert all((out / f"{stem}{suffix}").is_file() for suffix in OUTPUT_SUFFIXES)
    rows = _summary(out / "summary.csv")
    assert [row["name"] for row in rows] == ["a.png", "b.png", "sub/c.png"] and {r["status"] for r in rows} == {"ok"}
    record = json.loads((out / "a.json").read_text())
    assert float(rows[0]["angle1"]) == pytest.approx(record["angles_deg"]["angle1"], abs=1e-3)
    assert rows[0]["file"] == str(images / "a.png") and rows[0]["height"] == "64"


def test_resume_and_overwrite_together_are_refused_before_anything_is_written(tiny_inference, tmp_path):
    _gray(tmp_path / "images" / "a.png")
    with pytest.raises(ValueError, match=r"^--resume true keeps .* --overwrite true replaces them: pass one"):
        _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out", resume=True, overwrite="true"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="resume must be true or false"):
        _run(_workflow(tiny_inference, tmp_path / "images", tmp_path / "out", resume="maybe"))


def test_rewriting_an_image_removes_its_old_json_before_the_pngs(tiny_inference, tmp_path, monkeypatch):
    _gray(tmp_path / "images" / "a.png")
    out = tmp_path / "out"
    _run(_workflow(tiny_inference, tmp_path / "images", out))
    assert (out / "a.json").is_file()

    def killed(*args, **kwargs):
        raise OSError("killed")

    monkeypatch.setattr(scripts.inference.writers, "render_overlay", killed)
    with pytest.raises(InferenceError):
        _run(_workflow(tiny_inference, tmp_path / "images", out, overwrite="true"))
    assert (out / "a_mask.png").is_file() and not (out / "a.json").exists()  # reads as incomplete: --resume redoes it
    assert not list(out.glob(".*"))  # no temporary file left behind


def test_bulk_runs_can_leave_out_the_cam_and_overlay_and_resume_on_what_they_write(tiny_inference, tmp_path):
    images, out = tmp_path / "images", tmp_path / "out"
    for index, name in enumerate(("a.png", "b.png")):
        _gray(images / name, value=index)
    _run(_workflow(tiny_inference, images, out, outputs=["mask", "mask_nifti"]))
    assert sorted(path.name for path in out.iterdir()) == [
        "a.json", "a_mask.nii.gz", "a_mask.png", "b.json", "b_mask.nii.gz", "b_mask.png", "summary.csv",
    ]  # fmt: skip
    assert json.loads((out / "a.json").read_text())["outputs"] == {"mask": "a_mask.png", "mask_nifti": "a_mask.nii.gz"}
    (out / "b_mask.png").unlink()
    written = (out / "a.json").stat().st_mtime_ns
    _run(_workflow(tiny_inference, images, out, outputs=["mask", "mask_nifti"], resume="true"))
    assert (out / "b_mask.png").is_file() and (out / "a.json").stat().st_mtime_ns == written  # only b was redone
    with pytest.raises(ValueError, match=r"outputs \['overlays'\] are not files inference writes"):
        ImageResultWriter(outputs=["overlays"])
    with pytest.raises(ValueError, match=r"png_compress_level must be an integer 0\.\.9"):
        ImageResultWriter(png_compress_level=12)
