# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Checkpoints given to inference that cannot serve: missing, empty, cut short, overwritten, foreign, not a checkpoint.

``python -m monai.bundle run inference --config_file bundle/configs/inference.yaml --ckpt_dir models --dataset_dir
images --output_dir out`` (in-process): each ends with one ``ERROR:`` line naming ``model.pt`` and what is wrong,
before any image is read, and leaves the output folder unwritten and the checkpoint as it was.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_bundle import inference_workflow

from reliability import error_line, snapshot


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _overwrite_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = b"\0" * 4096  # a block of the file lost to a disk or copy error
    path.write_bytes(bytes(data))


def _foreign(path: Path) -> None:
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)  # a model of another project, network.json kept


def _no_record(path: Path) -> None:
    (path.parent / "network.json").unlink()  # the tiny network's weights, without the record of its settings


CASES = {
    "empty": (lambda path: path.write_bytes(b""), "is damaged (empty"),
    "truncated": (_truncate, "is damaged (truncated"),
    "overwritten": (_overwrite_middle, "is damaged ("),
    "text": (lambda path: path.write_text("weights will be here\n"), "is damaged (not a PyTorch checkpoint"),
    "foreign": (_foreign, "does not hold weights of this network"),
    "no_network_json": (_no_record, "does not hold weights of this network"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_checkpoint_that_cannot_serve_is_named_before_any_image(tiny_inference, tmp_path, case):
    damage, message = CASES[case]
    # without network.json the paper's settings build the network: the tiny overlay's must not stand in for them
    overrides = {"network_overrides": {}} if case == "no_network_json" else {}
    models = Path(shutil.copytree(tiny_inference["ckpt_dir"], tmp_path / "models"))
    damage(models / "model.pt")
    before = snapshot(models)
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((64, 32), np.uint8)).save(tmp_path / "images" / "a.png")
    line = error_line(
        inference_workflow(
            tiny_inference, "inference", tmp_path / "images", tmp_path / "out", ckpt_dir=models, **overrides
        )
    )
    print(line)
    assert line.startswith(f"ERROR: {models / 'model.pt'}") or f"{models / 'model.pt'}" in line.split(":")[1]
    assert message in line
    assert not (tmp_path / "out").exists() and snapshot(models) == before


def test_a_missing_checkpoint_is_named_before_any_image(tiny_inference, tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((64, 32), np.uint8)).save(tmp_path / "images" / "a.png")
    workflow = inference_workflow(tiny_inference, "inference", tmp_path / "images", tmp_path / "out", ckpt_dir=tmp_path)
    line = error_line(workflow)
    print(line)
    assert line.startswith(f"ERROR: checkpoint {tmp_path / 'model.pt'} does not exist")
    assert not (tmp_path / "out").exists()
