# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the AR module's total loss, SMAPE(A) + SMAPE(B) + lambda_AR * L1(CAM_A, CAM_B)."""

from __future__ import annotations

import pytest
import torch

from scripts.losses.ar_loss import ARLoss


def test_hand_computed_total() -> None:
    target = torch.tensor([[0.4, 0.1, 0.1]])
    pred_a = torch.tensor([[0.3, 0.2, 0.1]])  # (0.1 + 0.1 + 0) / (0.7 + 0.3 + 0.2) = 1/6
    pred_b = torch.tensor([[0.4, 0.1, 0.2]])  # (0 + 0 + 0.1) / (0.8 + 0.2 + 0.3) = 1/13
    cam_a = torch.zeros(1, 3, 2, 2)
    cam_b = torch.full((1, 3, 2, 2), 0.5)  # L1 = 0.5
    loss = ARLoss(lambda_ar=0.2, eps=1e-12)
    terms = loss.terms(pred_a, pred_b, cam_a, cam_b, target)
    torch.testing.assert_close(terms["smape_a"], torch.tensor(1.0 / 6.0))
    torch.testing.assert_close(terms["smape_b"], torch.tensor(1.0 / 13.0))
    torch.testing.assert_close(terms["attention"], torch.tensor(0.5))
    torch.testing.assert_close(loss(pred_a, pred_b, cam_a, cam_b, target), torch.tensor(1.0 / 6 + 1.0 / 13 + 0.1))


def test_bad_lambda() -> None:
    with pytest.raises(ValueError, match="lambda_ar"):
        ARLoss(lambda_ar=-0.1)
    with pytest.raises(ValueError, match="eps"):
        ARLoss(eps=0)
