# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The vertebra-level N_S through the real commands: five stages, inference with geometry, evaluation with its scores."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from tiny_bundle import CONFIGS, run_bundle, write_tiny_training_overlay

from scripts.networks.definition import read_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five-stage pipeline with vertebrae.yaml on tiny phantoms: ``<folder>/models`` holds the final model."""
    folder = tmp_path_factory.mktemp("vertebrae")
    tiny = write_tiny_training_overlay(folder)
    files = str([str(CONFIGS / "train.yaml"), str(CONFIGS / "vertebrae.yaml"), str(tiny)])
    result = run_bundle(
        "training", "--config_file", files, "--ckpt_dir", str(folder / "models"), "--output_dir", str(folder / "eval")
    )
    assert result.returncode == 0, result.log[-3000:]
    return folder


def test_the_five_stages_train_the_vertebra_classes(trained):
    assert read_settings(trained / "models")["segment_vertebrae"] is True
    results = json.loads((trained / "models" / "results.json").read_text())
    assert list(results) == list("abcde")
    for stage in "acd":  # the stages that train N_S report the Dice over T1..L5 beside the spine's
        metrics = results[stage]["metrics"]
        assert 0.0 <= metrics["val_vertebra_dice"] <= 1.0 and 0.0 <= metrics["val_dice"] <= 1.0


def test_inference_writes_the_geometry_and_evaluation_scores_it(trained, tmp_path):
    root = next((trained / "cache").glob("phantoms-*"))
    images = root / "data" / "training"
    out = tmp_path / "out"
    overlay = tmp_path / "cpu_device.yaml"
    overlay.write_text("device: \"$torch.device('cpu')\"\nprogress_bar: false\n")
    common = ["--ckpt_dir", str(trained / "models")]
    inference = [str(CONFIGS / "inference.yaml"), str(overlay)]
    result = run_bundle(
        "inference", "--config_file", str(inference), "--dataset_dir", str(images), "--output_dir", str(out), *common
    )
    assert result.returncode == 0, result.log[-3000:]
    records = [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]
    assert len(records) == 12
    for record in records:
        geometry = record["geometry"]
        assert geometry["status"] in ("measured", "not_measured")
        if geometry["status"] == "measured":  # the angles come with their end vertebrae and the agreement
            assert len(geometry["curves"]) == 3 and record["agreement"] is not None
        else:  # no silent angle: null angles and a verdict that says why
            assert geometry["angles_deg"] is None and record["agreement"] is None
            assert "vertebra_problems" in [reason["check"] for reason in record["quality"]["reasons"]]
    with (out / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"geometric_angle1", "end_vertebrae_angle1"} <= set(rows[0])

    evaluation = [*inference, str(CONFIGS / "evaluate.yaml")]
    result = run_bundle(
        "evaluate",
        "--config_file",
        str(evaluation),
        "--dataset_dir",
        str(root),
        "--output_dir",
        str(tmp_path / "ev"),
        *common,
    )
    assert result.returncode == 0, result.log[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert 0.0 <= metrics["vertebra_dice"] <= 1.0 and len(metrics["vertebra_dice_per_level"]) == 17
    summary = metrics["geometry"]
    assert summary["num_images"] == 12 and summary["combination_weight"] == 0.5
    assert summary["smape_combined"] >= 0.0
