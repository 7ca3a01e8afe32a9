# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The repository command scripts/benchmark.py, run as a person runs it, at a tiny input size."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
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
        ["cpu", "network forward, backbone twice (before sharing it)", "1"],
        ["cpu", "network forward", "2"],
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
    shared, twice = _table(text, "Training step per stage")  # stage d runs the gated pass: the old way beside it
    assert shared[:6] == ["cpu", "d", "ConsistencyObjective", "regressor", shared[4], "2"]
    assert twice[:6] == ["cpu", "d, backbone twice", *shared[2:6]]
    for training in (shared, twice):
        assert float(training[4]) > 0 and all(float(cell) > 0 for cell in training[6:10]), training
    assert 'training rows "c, backbone twice"' in text and "interleaved" in text


def test_the_backbone_twice_training_pass_is_the_gated_pass_with_the_backbone_recomputed():
    from scripts.engines.objectives import ConsistencyObjective
    from scripts.losses.smape_loss import SMAPELoss
    from scripts.networks.cam_regressor import CAMRegressor
    from scripts.networks.pspnet import PSPNet
    from scripts.networks.seg4reg import Seg4RegPlus

    spec = importlib.util.spec_from_file_location("benchmark", REPO / "scripts" / "benchmark.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    torch.manual_seed(0)
    segmenter = PSPNet(depth=18, pyramid_channels=8, fuse_channels=8, roie=True)
    regressor = CAMRegressor(in_channels=2)
    net = Seg4RegPlus(segmenter, regressor).eval()
    with torch.no_grad():
        segmenter.gate.alpha.fill_(0.5)  # make the gate matter
        regressor.fc.weight.normal_()  # and the CAMs non-trivial
        regressor.fc.bias.normal_()
    objective = ConsistencyObjective(net, SMAPELoss())  # stage d: N_R frozen, N_S through the gated pass
    image = torch.rand(2, 1, 64, 32)
    label = (torch.rand(2, 1, 64, 32) > 0.5).float()
    shared_logits, shared_attention = net.gated_segment(image)

    benchmark._unshare_backbone(objective.model)
    backbone_passes = []
    hook = segmenter.encoder.layer4.register_forward_hook(lambda *args: backbone_passes.append(1))
    logits, attention = net.gated_segment(image)
    assert len(backbone_passes) == 2
    torch.testing.assert_close(logits, shared_logits)
    torch.testing.assert_close(attention, shared_attention)
    logits.square().mean().backward()  # the gated pass trains N_S's backbone and the gate, not N_R
    first = next(segmenter.encoder.parameters())
    assert segmenter.gate.alpha.grad.abs() > 0 and first.grad is not None and first.grad.abs().sum() > 0
    assert all(p.grad is None for p in regressor.parameters())

    backbone_passes.clear()
    objective(image, label, torch.full((2, 3), 20.0))  # what the benchmark's training step calls
    hook.remove()
    assert len(backbone_passes) == 2
    assert Seg4RegPlus.gated_segment.__qualname__ == "Seg4RegPlus.gated_segment"  # the class keeps the shared pass


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
        "run inference: all outputs, flip check", "run inference: all outputs, no flip check",
        "run inference: mask + NIfTI only, no flip check",
        "run inference: mask + NIfTI only, no flip check, ONNX Runtime",
        "fast path: all outputs, flip check", "fast path: mask + NIfTI only, no flip check",
    ]  # fmt: skip
    for row in rows:  # tiny images cost milliseconds: a rate may drown in the start-up jitter, never be made up
        start, whole, per_image, rate = (cell.strip() for cell in row.strip("|").split("|")[1:])
        assert float(start) > 0 and float(whole) > 0
        if rate == "below the noise":
            assert float(per_image) <= 0.0005  # printed to 3 decimals: 0.000 or a negative difference
        else:  # the rate is the inverse of the per-image time, which is printed rounded to 3 decimals
            assert 1 / float(rate) == pytest.approx(float(per_image), rel=0.02, abs=0.0005)
    missing = subprocess.run([*command[:3], "--ckpt-dir", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and f"{tmp_path / 'model.pt'} does not exist" in missing.stderr
