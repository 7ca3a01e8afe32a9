# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The quality verdict as a user meets it: ``run inference`` on a blank, a black and a turned image, and on a model whose
regressor never trained (docs/quality.md)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tiny_bundle import inference_workflow

from reliability import error_line


def _checks(quality: dict) -> list[str]:
    return [reason["check"] for reason in quality["reasons"]]


def _write(folder: Path) -> None:
    """A mid-gray portrait image, an all-black one and a landscape one (the tiny untrained network segments nothing)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    portrait = np.clip(100 + 40 * rng.standard_normal((96, 40)), 0, 255).astype(np.uint8)
    Image.fromarray(portrait).save(folder / "portrait.png")
    Image.fromarray(np.zeros((96, 40), np.uint8)).save(folder / "black.png")
    Image.fromarray(portrait.T.copy()).save(folder / "landscape.png")


def test_every_output_carries_the_verdict(tiny_inference, tmp_path) -> None:
    _write(tmp_path / "images")
    workflow = inference_workflow(tiny_inference, "inference", tmp_path / "images", tmp_path / "out")
    workflow.run()
    records = {name: json.loads((tmp_path / "out" / f"{name}.json").read_text()) for name in ("black", "landscape")}
    assert "image_blank" in _checks(records["black"]["quality"])
    assert "image_landscape" in _checks(records["landscape"]["quality"])
    for record in records.values():
        assert record["quality"]["verdict"] == "review"
        assert "regressor_training_unknown" in _checks(record["quality"])  # the tiny checkpoint has no record
        assert record["quality"]["flip_difference_deg"] is not None  # the mirrored image was run
    with (tmp_path / "out" / "summary.csv").open(newline="") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    assert rows["black.png"]["verdict"] == "review"
    assert "image_blank" in rows["black.png"]["reasons"].split(";")


def test_a_stage_a_checkpoint_is_refused_before_any_image(tiny_inference, tmp_path) -> None:
    _write(tmp_path / "images")
    stage_a = tmp_path / "stage_a"
    shutil.copytree(tiny_inference["ckpt_dir"], stage_a)
    (stage_a / "done.json").write_text(json.dumps({"stage": "a"}))
    line = error_line(
        inference_workflow(tiny_inference, "inference", tmp_path / "images", tmp_path / "out", ckpt_dir=stage_a)
    )
    print(line)
    assert line.startswith(f"ERROR: {stage_a / 'model.pt'}: its regressor N_R was never trained")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
