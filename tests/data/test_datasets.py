# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the training datalists: the held-out fold, the inner validation part, the mean predictor's floor."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.data.aasce import patient_id
from scripts.data.datasets import fold_datalists
from scripts.metrics.angles import mean_predictor_scores


def _patients(records: list[dict]) -> set[str]:
    return {patient_id(record["name"]) for record in records}


def test_inner_validation_never_touches_the_held_out_fold(phantom_root):
    plain = fold_datalists(phantom_root, num_folds=3, fold=1)
    inner = fold_datalists(phantom_root, num_folds=3, fold=1, inner_val_folds=2)
    assert set(plain) == {"train", "val"} and set(inner) == {"train", "val", "test"}
    assert [r["name"] for r in inner["test"]] == [r["name"] for r in plain["val"]]  # the scored fold is the same
    parts = [_patients(inner[key]) for key in ("train", "val", "test")]
    assert all(not a & b for i, a in enumerate(parts) for b in parts[i + 1 :])  # patients never on two sides
    names = sorted(r["name"] for key in ("train", "val") for r in inner[key])
    assert names == sorted(r["name"] for r in plain["train"])  # the inner split divides the training part


def test_too_few_patients_for_the_inner_split_is_named(phantom_root):
    with pytest.raises(ValueError, match="cannot be split into num_folds=20"):
        fold_datalists(phantom_root, num_folds=2, fold=0, inner_val_folds=20)


def test_mean_predictor_scores_by_hand():
    train = [{"angles": [30.0, 10.0, 20.0]}, {"angles": [10.0, 30.0, 0.0]}]  # mean (20, 20, 10)
    val = [{"angles": [20.0, 10.0, 10.0]}]
    scores = mean_predictor_scores(train, val)
    # |0| + |10| + |0| over (40 + 30 + 20): 100 * 10 / 90
    np.testing.assert_allclose(scores["val_smape"], 100 * 10 / 90)
    np.testing.assert_allclose(scores["val_mae"], 10 / 3)
    assert scores["val_mae_angle2"] == 10.0 and scores["val_mae_angle1"] == 0.0
    assert mean_predictor_scores(train, []) is None
    assert mean_predictor_scores(train, [{"image": "x.png", "label": "x_mask.png"}]) is None  # MONAI Label pairs
