# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of Eq. 1, soft Dice + lambda * cross-entropy, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scripts.losses.seg_loss import SegmentationLoss


def hand_values(logits: np.ndarray, labels: np.ndarray, smooth: float = 1e-5) -> tuple[float, float]:
    """Foreground soft Dice loss (mean over images) and pixel cross-entropy, in plain numpy."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = exp / exp.sum(axis=1, keepdims=True)
    dice = []
    for b in range(logits.shape[0]):
        p, g = prob[b, 1], (labels[b, 0] == 1).astype(float)
        dice.append(1.0 - (2.0 * (p * g).sum() + smooth) / (p.sum() + g.sum() + smooth))
    picked = np.take_along_axis(prob, labels.astype(int), axis=1)
    return float(np.mean(dice)), float(-np.log(picked).mean())


def test_matches_hand_computed_value() -> None:
    logits = np.array(
        [
            [[[2.0, -1.0], [0.0, 0.5]], [[-1.0, 1.0], [0.0, 2.0]]],
            [[[0.3, 0.2], [-0.4, 1.5]], [[1.1, -0.7], [0.9, 0.0]]],
        ]
    )
    labels = np.array([[[[0, 1], [1, 1]]], [[[1, 0], [0, 0]]]])
    dice, ce = hand_values(logits, labels)
    for lambda_ce in (0.0, 1.0, 0.5):
        loss = SegmentationLoss(lambda_ce=lambda_ce)(torch.tensor(logits), torch.tensor(labels))
        assert math.isclose(loss.item(), dice + lambda_ce * ce, rel_tol=1e-6)


def test_perfect_prediction_is_near_zero() -> None:
    labels = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    labels[..., 1:3, 1:3] = 1
    logits = torch.cat([(1 - labels) * 40.0, labels * 40.0], dim=1).float()
    assert SegmentationLoss()(logits, labels).item() < 1e-4


def test_bad_lambda() -> None:
    with pytest.raises(ValueError, match="lambda_ce"):
        SegmentationLoss(lambda_ce=-1.0)
