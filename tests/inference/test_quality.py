# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The quality verdict: each check on its own and the checkpoint's training record (the commands: tests/reliability)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from spine_shapes import sine_spine
from tiny_bundle import CONFIGS

from scripts.data.spine_mask import render_spine_mask
from scripts.inference.quality import QualityCheckd
from scripts.inference.verdict import (
    DEFAULT_LIMITS,
    UntrainedRegressorError,
    mask_statistics,
    quality_verdict,
    regressor_status,
)

LIMITS = yaml.safe_load((CONFIGS / "inference.yaml").read_text())["quality"]
HEIGHT, WIDTH = 800, 300


def _radiograph() -> np.ndarray:
    """A portrait (H, W) image with a radiograph's smooth shading: slow waves in [0.1, 0.7]."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    return 0.4 + 0.3 * np.sin(rows / 60.0) * np.cos(cols / 40.0)


def _spine_mask() -> np.ndarray:
    mask = render_spine_mask(sine_spine(HEIGHT, WIDTH, amplitude=20.0, phase=0.5), (HEIGHT, WIDTH))
    return mask.astype(bool) | np.roll(mask.astype(bool), 3, axis=0)  # close the gaps between vertebrae a little


def _checks(result: dict) -> list[str]:
    return [reason["check"] for reason in result["reasons"]]


def test_config_limits_are_the_known_checks() -> None:
    assert set(LIMITS) == set(DEFAULT_LIMITS)
    assert LIMITS == DEFAULT_LIMITS  # the config repeats the measured limits for its reader: the two must not drift


def test_a_plausible_prediction_is_ok() -> None:
    result = quality_verdict(_radiograph(), _spine_mask(), LIMITS, angles=[20, 10, 8], flipped_angles=[21, 9, 8])
    assert result == {"verdict": "ok", "reasons": [], "flip_difference_deg": 1.0}


@pytest.mark.parametrize(
    "image, mask, expected",
    [
        (np.zeros((HEIGHT, WIDTH)), np.zeros((HEIGHT, WIDTH)), ["image_blank", "mask_area"]),  # all black, no spine
        (np.ones((HEIGHT, WIDTH)), np.zeros((HEIGHT, WIDTH)), ["image_blank", "image_saturated", "mask_area"]),
        (_radiograph().T, _spine_mask().T, ["image_landscape", "mask_extent"]),  # turned 90 degrees
        (np.random.default_rng(0).random((HEIGHT, WIDTH)), _spine_mask(), ["image_texture"]),  # noise, not a spine
    ],
)
def test_blank_white_rotated_and_noise_images_are_marked(image, mask, expected) -> None:
    result = quality_verdict(image, mask, LIMITS)
    assert result["verdict"] == "review"
    assert _checks(result) == expected


def test_a_spine_in_pieces_and_a_disagreeing_mirror_are_marked() -> None:
    mask = _spine_mask()
    mask[300:420] = False  # a missing middle part
    result = quality_verdict(_radiograph(), mask, LIMITS, angles=[30, 12, 10], flipped_angles=[12, 30, 5])
    assert _checks(result) == ["mask_gap", "flip_disagreement"]
    gap = next(reason for reason in result["reasons"] if reason["check"] == "mask_gap")
    assert gap["value"] == pytest.approx(mask_statistics(mask)["gap"], abs=1e-4)
    assert result["flip_difference_deg"] == 18.0


def test_a_checkpoint_without_a_training_record_is_marked(tmp_path) -> None:
    assert regressor_status(tmp_path / "model.pt") == "unknown"
    result = quality_verdict(_radiograph(), _spine_mask(), LIMITS, regressor="unknown")
    assert _checks(result) == ["regressor_training_unknown"]


def test_regressor_status_reads_the_pipeline_and_stage_records(tmp_path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"a": {}, "b": {}, "c": {}, "d": {}, "e": {}}))
    assert regressor_status(tmp_path / "model.pt") == "trained"
    stage_a = tmp_path / "stage_a"
    stage_a.mkdir()
    (stage_a / "done.json").write_text(json.dumps({"stage": "a"}))
    with pytest.raises(UntrainedRegressorError, match=r"stage_a/model\.pt: its regressor N_R was never trained"):
        regressor_status(stage_a / "model.pt")
    with pytest.raises(UntrainedRegressorError):
        QualityCheckd(checkpoint=stage_a / "model.pt")


def test_unknown_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="not checks"):
        QualityCheckd(limits={"mask_size": [0, 1]})
