# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The repository command scripts/benchmark.py, run as a person runs it, at a tiny input size."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "bundle" / "configs"


def _run(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / "benchmark.py"), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def _table(text: str, title: str) -> list[list[str]]:
    """The body rows of the markdown table under ``## title``, as lists of cells."""
    section = text.split(f"## {title}\n", 1)[1].strip().split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()[2:]]


@pytest.mark.slow  # subprocess round trips: tens of seconds
def test_benchmark_reports_inference_and_training_and_replaces_only_when_asked(tmp_path):
    out = tmp_path / "docs" / "performance.md"
    out.parent.mkdir()
    out.write_text("an earlier report")
    options = ["--config", CONFIGS / "inference.yaml", CONFIGS / "cpu.yaml", "--spatial-size", 64, 32]
    options += ["--runs", 1, "--warmup", 0, "--batch-size", 2, "--threads", 1, "--device", "cpu", "--stages", "d"]
    options += ["--runtimes", "eager", "onnxruntime"]

    refused = _run(*options, "--out", out)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr and str(out) in refused.stderr
    assert out.read_text() == "an earlier report"

    result = _run(*options, "--out", out, "--overwrite")
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text == result.stdout
    assert "python scripts/benchmark.py --config" in text and "--spatial-size 64 32" in text
    assert re.search(r"- CPU: .+, \d+ logical cores, 1 torch threads", text)
    assert "torch " in text and "MONAI " in text and "input 64x32; N_S PSPNet efficientnet-lite0" in text

    inference = _table(text, "Inference")
    assert [row[:3] for row in inference] == [
        ["cpu", "network forward", "1"],
        ["cpu", "network forward", "2"],
        ["cpu", "network forward, backbone twice (before sharing it)", "1"],
        ["cpu", "preprocessing", "1"],
    ]
    for row in inference:
        numbers = [float(cell) for cell in row[3:]]  # times, images/s, peak and added memory
        assert all(value > 0 for value in numbers[:-1]) and numbers[-1] >= 0, row
        assert numbers[4] > 100, row  # peak resident set size of a process with torch loaded, in MiB

    eager, onnx, convolution = _table(text, "Runtimes (CPU, batch 1)")
    assert [eager[0], onnx[0], eager[-1]] == ["eager", "onnxruntime", "0"]
    assert float(onnx[-1]) < 1e-3  # the exported network gives the eager network's answer
    assert float(eager[3]) == float(onnx[3]) > 0 and float(convolution[4]) > 0  # GFLOP per call, GFLOP/s
    (training,) = _table(text, "Training step per stage")
    assert training[:6] == ["cpu", "d", "ConsistencyObjective", "regressor", training[4], "2"]
    assert float(training[4]) > 0 and all(float(cell) > 0 for cell in training[6:10]), training


@pytest.mark.slow  # six inference processes of a tiny model
def test_the_folder_benchmark_times_start_up_and_images_per_second(tiny_inference, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index in range(3):
        Image.fromarray(np.full((64, 32), 40 * index + 20, dtype=np.uint8)).save(images / f"{index}.png")
    command = [sys.executable, str(REPO / "scripts" / "benchmark_folder.py"), str(images)]
    command += ["--ckpt-dir", str(tiny_inference["ckpt_dir"]), "--images", "3", "--repeats", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "setting" not in line]
    assert [row.split("|")[1].strip() for row in rows] == [
        "all outputs, flip check", "all outputs, no flip check", "mask + NIfTI only, no flip check",
        "mask + NIfTI only, no flip check, ONNX Runtime",
    ]  # fmt: skip
    for row in rows:
        start, whole, per_image, rate = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert start > 0 and whole > 0 and rate == pytest.approx(1 / per_image, rel=0.02)
    missing = subprocess.run([*command[:3], "--ckpt-dir", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and f"{tmp_path / 'model.pt'} does not exist" in missing.stderr
