# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""ONNX Runtime as the inference runtime: the same answers as eager torch, one export per checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_bundle import CONFIGS, build_network, inference_workflow

from scripts.inference.engine import InferenceEvaluator
from scripts.inference.onnx_runtime import onnx_network
from scripts.inference.predictor import load_checkpoint


def _images(folder: Path) -> None:
    folder.mkdir(parents=True)
    for index in range(2):
        pixels = np.random.default_rng(index).integers(0, 256, (80, 40), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


def test_the_exported_network_answers_as_the_eager_one(tiny_inference, tmp_path):
    checkpoint = tiny_inference["ckpt_dir"] / "model.pt"
    network = load_checkpoint(
        build_network([CONFIGS / "inference.yaml", tiny_inference["overlay"]], tiny_inference["ckpt_dir"]), checkpoint
    )
    network = network.eval()
    exported = onnx_network(network, (64, 32), checkpoint, tmp_path / "cache")
    x = torch.rand(1, 1, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), network(x), atol=1e-4, rtol=1e-4)
    (path,) = (tmp_path / "cache").glob("*.onnx")
    written = path.stat().st_mtime_ns
    assert onnx_network(network, (64, 32), checkpoint, tmp_path / "cache").path == path  # reused, not exported again
    assert path.stat().st_mtime_ns == written
    with pytest.raises(Exception, match=r"(?i)dimension|shape"):  # one image at a time, never a silent wrong answer
        exported(torch.rand(2, 1, 64, 32))


def test_inference_with_onnxruntime_writes_the_same_angles(tiny_inference, tmp_path):
    _images(tmp_path / "images")
    results = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / runtime
        cache = tmp_path / "cache"
        inference_workflow(
            tiny_inference, "inference", tmp_path / "images", out, runtime=runtime, onnx_cache_dir=cache
        ).run()
        results[runtime] = [json.loads((out / f"{i}.json").read_text())["angles_deg"] for i in range(2)]
    for eager, exported in zip(results["torch"], results["onnxruntime"], strict=True):
        assert exported == pytest.approx(eager, abs=1e-3)
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1
    with pytest.raises(ValueError, match="runtime must be one of"):
        InferenceEvaluator("cpu", [], torch.nn.Identity(), None, lambda d: d, runtime="tensorrt")
