# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Folders given to inference: missing, empty, holding earlier outputs, a run killed half-way, output inside input.

``python -m monai.bundle run inference --config_file bundle/configs/inference.yaml --dataset_dir images
--output_dir out [--overwrite true | --resume true]``, in-process except one subprocess that shows the exit status
and the one ``ERROR:`` line (a traceback only with ``SEG4REG_DEBUG=1``), and the kill test (``slow``).
"""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_bundle import CONFIGS, inference_workflow

from reliability import REPO, bundle_command, error_line, snapshot

OUTPUTS = (".json", "_mask.png", "_cam.png", "_overlay.png")


def _images(folder: Path, *names: str) -> Path:
    for index, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(index).integers(0, 256, (64, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)
    return folder


def _infer(tiny, images: Path, out: Path, **flags: object):
    return inference_workflow(tiny, "inference", images, out, **flags)


def _summary_names(out: Path) -> list[str]:
    with (out / "summary.csv").open(newline="") as handle:
        return [row["name"] for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def finished(tiny_inference, tmp_path_factory) -> dict[str, Path]:
    """A folder of two images (one in a subfolder) and the outputs of one complete run over it."""
    root = tmp_path_factory.mktemp("finished")
    images = _images(root / "images", "a.png", "sub/b.png")
    _infer(tiny_inference, images, root / "out").run()
    return {"images": images, "out": root / "out"}


def _copy_outputs(finished: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished["out"], tmp_path / "out"))


def test_an_empty_folder_is_named_and_nothing_is_written(tiny_inference, tmp_path):
    (tmp_path / "empty").mkdir()
    line = error_line(_infer(tiny_inference, tmp_path / "empty", tmp_path / "out"))
    print(line)
    assert line.startswith(f"ERROR: {tmp_path / 'empty'} holds no image files")
    assert not (tmp_path / "out").exists()


def test_a_missing_folder_is_named_and_nothing_is_written(tiny_inference, tmp_path):
    line = error_line(_infer(tiny_inference, tmp_path / "absent", tmp_path / "out"))
    print(line)
    assert line.startswith(f"ERROR: dataset_dir {tmp_path / 'absent'} does not exist")
    assert not (tmp_path / "out").exists()


def test_no_dataset_dir_is_named(tiny_inference, tmp_path):
    line = error_line(_infer(tiny_inference, "", tmp_path / "out"))
    print(line)
    assert line.startswith("ERROR: ") and "--dataset_dir" in line
    assert not (tmp_path / "out").exists()


def test_existing_outputs_are_refused_and_left_as_they_were(tiny_inference, finished, tmp_path):
    out = _copy_outputs(finished, tmp_path)
    before = snapshot(out)
    line = error_line(_infer(tiny_inference, finished["images"], out))
    print(line)
    assert line.startswith("ERROR: ") and "already exist; nothing was written (--overwrite true" in line
    assert str(out / "a.json") in line
    assert snapshot(out) == before


def test_overwrite_true_replaces_the_outputs(tiny_inference, finished, tmp_path):
    out = _copy_outputs(finished, tmp_path)
    (out / "a.json").write_text("an old record")
    _infer(tiny_inference, finished["images"], out, overwrite="true").run()
    assert (out / "a.json").read_text().startswith("{") and _summary_names(out) == ["a.png", "sub/b.png"]


def test_a_misspelt_flag_value_is_named(tiny_inference, finished, tmp_path):
    line = error_line(_infer(tiny_inference, finished["images"], tmp_path / "out", overwrite="flase"))
    print(line)
    assert line.startswith("ERROR: overwrite must be true or false") and "'flase'" in line
    assert not (tmp_path / "out").exists()


def test_resume_with_overwrite_is_refused_before_anything_is_written(tiny_inference, finished, tmp_path):
    out = _copy_outputs(finished, tmp_path)
    before = snapshot(out)
    line = error_line(_infer(tiny_inference, finished["images"], out, resume="true", overwrite="true"))
    print(line)
    assert line.startswith("ERROR: --resume true keeps") and "pass one" in line
    assert snapshot(out) == before


def test_resume_redoes_only_the_half_written_image(tiny_inference, finished, tmp_path):
    out = _copy_outputs(finished, tmp_path)
    (out / "sub" / "b.json").unlink()  # as a kill before b's JSON (written last) leaves it
    complete = {name: value for name, value in snapshot(out).items() if name.startswith("a")}
    _infer(tiny_inference, finished["images"], out, resume="true").run()
    assert {name: value for name, value in snapshot(out).items() if name.startswith("a")} == complete
    assert all((out / f"sub/b{suffix}").is_file() for suffix in OUTPUTS)
    assert _summary_names(out) == ["a.png", "sub/b.png"]


def test_images_in_subfolders_get_outputs_mirroring_them(finished):
    for stem in ("a", "sub/b"):
        assert all((finished["out"] / f"{stem}{suffix}").is_file() for suffix in OUTPUTS)
    assert _summary_names(finished["out"]) == ["a.png", "sub/b.png"]


def test_an_output_folder_inside_the_input_folder_is_not_read(tiny_inference, tmp_path):
    images = _images(tmp_path / "images", "a.png")
    _images(images / "out", "earlier_mask.png")  # a png of an earlier run in the output folder
    _infer(tiny_inference, images, images / "out").run()
    assert _summary_names(images / "out") == ["a.png"]


def test_the_command_ends_with_one_error_line_and_status_1(tiny_inference, tmp_path):
    command = [
        "run",
        "inference",
        "--config_file",
        str([str(CONFIGS / "inference.yaml"), str(tiny_inference["overlay"])]),
    ]
    command += ["--ckpt_dir", str(tiny_inference["ckpt_dir"]), "--output_dir", str(tmp_path / "out")]
    command += ["--dataset_dir", str(tmp_path / "absent")]
    result = bundle_command(*command)
    last = result.stderr.rstrip().splitlines()[-1]
    print(last)
    assert result.returncode == 1 and "Traceback" not in result.log
    assert last.startswith(f"ERROR: dataset_dir {tmp_path / 'absent'} does not exist")
    assert last.endswith("(set SEG4REG_DEBUG=1 for the traceback)")
    assert sum(line.startswith("ERROR:") for line in result.log.splitlines()) == 1
    debug = bundle_command(*command, SEG4REG_DEBUG="1")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "does not exist" in debug.stderr


@pytest.mark.slow
def test_a_killed_folder_run_continues_with_resume(tiny_inference, tmp_path):
    images = _images(tmp_path / "images", *(f"{letter}.png" for letter in "abcdefgh"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "monai.bundle", "run", "inference"]
    command += ["--config_file", str([str(CONFIGS / "inference.yaml"), str(tiny_inference["overlay"])])]
    command += ["--ckpt_dir", str(tiny_inference["ckpt_dir"]), "--dataset_dir", str(images), "--output_dir", str(out)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (out / "b.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sorted(path.stem for path in out.glob("*.json"))
    assert done and len(done) < 8 and not (out / "summary.csv").exists(), done  # killed part-way
    kept = {name: value for name, value in snapshot(out).items() if Path(name).stem.split("_")[0] in done}
    resumed = subprocess.run([*command, "--resume", "true"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert {name: value for name, value in snapshot(out).items() if name in kept} == kept
    assert _summary_names(out) == [f"{letter}.png" for letter in "abcdefgh"]
    assert all((out / f"{letter}{suffix}").is_file() for letter in "abcdefgh" for suffix in OUTPUTS)
