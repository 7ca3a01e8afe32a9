# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The inference and evaluation commands, run the way a person runs them, on tiny images and a tiny checkpoint."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from inference.samples import write_bad_images, write_good_images
from tiny_bundle import CONFIGS, make_checkpoint, recipe_settings, run_bundle

pytestmark = pytest.mark.slow


def _files(*paths: Path) -> str:
    return str([str(path) for path in paths])


def _infer(tiny_inference: dict[str, Path], images: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    config = _files(CONFIGS / "inference.yaml", tiny_inference["overlay"])
    return run_bundle(
        "inference", "--config_file", config, "--dataset_dir", str(images), "--output_dir", str(out), *extra
    )


def test_a_folder_with_bad_files_is_processed_and_the_status_says_some_failed(tiny_inference, tmp_path):
    sizes = write_good_images(tmp_path / "images")
    reasons = write_bad_images(tmp_path / "images")
    out = tmp_path / "out"
    result = _infer(
        tiny_inference,
        tmp_path / "images",
        out,
        "--ckpt_dir",
        str(tiny_inference["ckpt_dir"]),
        "--progress_bar",
        "true",
    )
    assert result.returncode == 1, result.log[-3000:]
    for name, reason in reasons.items():
        lines = [line for line in result.stdout.splitlines() if f"FAILED {tmp_path / 'images' / name}:" in line]
        assert len(lines) == 1 and reason in lines[0]
    assert "ERROR: 3 of 8 image(s) failed" in result.log  # one line (scripts.errors), not a traceback
    assert "inference: [8/8] 100%" in result.stderr  # Ignite's progress bar
    for name in sizes:
        stem = Path(name).stem
        assert all((out / f"{stem}{suffix}").is_file() for suffix in (".json", "_mask.png", "_cam.png", "_overlay.png"))
    assert len((out / "summary.csv").read_text().splitlines()) == 1 + len(sizes) + len(reasons)

    # the same command again refuses before writing anything; --overwrite true replaces the outputs
    before = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    again = _infer(tiny_inference, tmp_path / "images", out, "--ckpt_dir", str(tiny_inference["ckpt_dir"]))
    assert again.returncode == 1 and "already exist; nothing was written (--overwrite true" in again.log
    assert "FAILED" not in again.log
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == before
    shutil.rmtree(tmp_path / "images")
    write_good_images(tmp_path / "images")
    replaced = _infer(
        tiny_inference, tmp_path / "images", out, "--ckpt_dir", str(tiny_inference["ckpt_dir"]), "--overwrite", "true"
    )
    assert replaced.returncode == 0, replaced.log[-3000:]
    assert len((out / "summary.csv").read_text().splitlines()) == 1 + len(sizes)


def test_resume_continues_a_killed_folder_run(tiny_inference, tmp_path):
    sizes = write_good_images(tmp_path / "images")
    (tmp_path / "images" / "sub").mkdir()
    (tmp_path / "images" / "gray16.png").rename(tmp_path / "images" / "sub" / "gray16.png")
    out, ckpt = tmp_path / "out", ["--ckpt_dir", str(tiny_inference["ckpt_dir"])]
    first = _infer(tiny_inference, tmp_path / "images", out, *ckpt)
    assert first.returncode == 0, first.log[-3000:]
    # what a kill while writing sub/gray16 and before summary.csv leaves: its JSON (written last) absent
    (out / "sub" / "gray16.json").unlink()
    (out / "sub" / "gray16_overlay.png").unlink()
    (out / "summary.csv").unlink()
    kept = {path: path.stat().st_mtime_ns for path in out.glob("*") if path.is_file()}
    both = _infer(tiny_inference, tmp_path / "images", out, *ckpt, "--resume", "true", "--overwrite", "true")
    assert both.returncode == 1 and "pass one of them, not both" in both.log and "Traceback" not in both.log
    resumed = _infer(tiny_inference, tmp_path / "images", out, *ckpt, "--resume", "true")
    assert resumed.returncode == 0, resumed.log[-3000:]
    assert f"resume: {len(sizes) - 1} of {len(sizes)} image(s) already have all their files" in resumed.log
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # the complete images were not written again
    assert all((out / f"sub/gray16{suffix}").is_file() for suffix in (".json", "_mask.png", "_cam.png", "_overlay.png"))
    names = [line.split(",")[0] for line in (out / "summary.csv").read_text().splitlines()[1:]]
    assert names == ["colour.png", "exact.png", "gray8.jpg", "mono1.dcm", "sub/gray16.png"]  # the walk order


def test_a_missing_checkpoint_stops_before_any_image(tiny_inference, tmp_path):
    write_good_images(tmp_path / "images")
    result = _infer(tiny_inference, tmp_path / "images", tmp_path / "out", "--ckpt_dir", str(tmp_path / "models"))
    assert result.returncode == 1
    assert f"checkpoint {tmp_path / 'models' / 'model.pt'} does not exist" in result.log
    assert not (tmp_path / "out").exists()


def test_an_empty_folder_is_an_error(tiny_inference, tmp_path):
    (tmp_path / "empty").mkdir()
    result = _infer(tiny_inference, tmp_path / "empty", tmp_path / "out", "--ckpt_dir", str(tiny_inference["ckpt_dir"]))
    assert result.returncode == 1 and "holds no image files" in result.log


def test_inference_yaml_alone_serves_a_cpu_recipe_checkpoint(tmp_path):
    ckpt_dir = tmp_path / "models"  # weights of the network the CPU recipe trains (random: nothing trained here)
    make_checkpoint(ckpt_dir, **recipe_settings(CONFIGS / "cpu.yaml"))
    write_good_images(tmp_path / "all")
    (tmp_path / "images").mkdir()
    (tmp_path / "all" / "mono1.dcm").rename(tmp_path / "images" / "mono1.dcm")
    command = ["--dataset_dir", str(tmp_path / "images"), "--output_dir", str(tmp_path / "out")]
    command += ["--ckpt_dir", str(ckpt_dir)]
    result = run_bundle("inference", "--config_file", str(CONFIGS / "inference.yaml"), *command)
    assert result.returncode == 0, result.log[-3000:]
    assert json.loads((tmp_path / "out" / "mono1.json").read_text())["pixel_spacing_mm"] == [0.15, 0.2]
    # a config that asks for another network than the one recorded beside the weights is refused, naming the setting
    wrong = run_bundle(
        "inference", "--config_file", str(CONFIGS / "inference.yaml"), *command, "--output_dir", str(tmp_path / "o2"),
        "--network_overrides", "{'pyramid_channels': 16}",
    )  # fmt: skip
    assert wrong.returncode == 1 and "pyramid_channels: trained 64, config 16" in wrong.log
    assert not (tmp_path / "o2").exists()


def test_evaluate_command_writes_metrics_and_prints_the_tables(tiny_inference, phantom_root, tmp_path):
    config = _files(CONFIGS / "inference.yaml", CONFIGS / "evaluate.yaml", tiny_inference["overlay"])
    result = run_bundle(
        "evaluate", "--config_file", config, "--dataset_dir", str(phantom_root), "--split", "training",
        "--fold", "0", "--output_dir", str(tmp_path / "out"), "--ckpt_dir", str(tiny_inference["ckpt_dir"]),
    )  # fmt: skip
    assert result.returncode == 0, result.log[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["fold"] == 0 and metrics["split"] == "training"
    assert "| Method | JA | Dice | AC | SE | SP |" in result.stdout
    assert f"| {metrics['smape']:.2f} | {metrics['mae']:.2f} |" in result.stdout
    assert (tmp_path / "out" / "per_image.csv").is_file()
