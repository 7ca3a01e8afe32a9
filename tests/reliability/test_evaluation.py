# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of a labelled split with unreadable images or no split at all.

``python -m monai.bundle run evaluate --config_file "['bundle/configs/inference.yaml','bundle/configs/evaluate.yaml']"
--dataset_dir <root> --output_dir out`` (in-process): every unreadable image is named in the one ``ERROR:`` line
before the first prediction, and nothing is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tiny_bundle import inference_workflow

from reliability import error_line


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("first", ["truncated", "not-an-image"])
def test_every_unreadable_image_is_named_before_the_first_prediction(tiny_inference, phantom_root, tmp_path, first):
    root = Path(shutil.copytree(phantom_root, tmp_path / "phantoms"))
    images = sorted((root / "data" / "training").iterdir())
    _truncate(images[1]) if first == "truncated" else images[1].write_text("not an image")
    _truncate(images[-1])
    line = error_line(inference_workflow(tiny_inference, "evaluate", root, tmp_path / "out"))
    print(line)
    assert line.startswith("ERROR: ")
    if first == "truncated":  # both decode-checked before the first prediction
        assert "2 of 12 image(s) cannot be read" in line
    else:  # the split check meets the text file; the truncated image is decoded and named with it
        assert "has 1 problem(s)" in line and "and 1 image(s) that cannot be decoded" in line
    assert str(images[1]) in line and str(images[-1]) in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_evaluation_without_a_dataset_is_named(tiny_inference, tmp_path):
    line = error_line(inference_workflow(tiny_inference, "evaluate", "", tmp_path / "out"))
    print(line)
    assert line.startswith("ERROR: ") and "--dataset_dir" in line
    assert not (tmp_path / "out").exists()
