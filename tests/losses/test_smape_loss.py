# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of Eq. 3, the SMAPE loss, against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from scripts.losses.smape_loss import SMAPELoss, smape_fraction


def test_hand_computed_values() -> None:
    pred = torch.tensor([[30.0, 20.0, 10.0], [10.0, 0.0, 0.0]])
    target = torch.tensor([[40.0, 10.0, 10.0], [10.0, 5.0, 5.0]])
    # image 1: (10 + 10 + 0) / (70 + 30 + 20) = 1/6; image 2: (0 + 5 + 5) / (20 + 5 + 5) = 1/3
    expected = torch.tensor([1.0 / 6.0, 1.0 / 3.0])
    torch.testing.assert_close(SMAPELoss(eps=1e-12, reduction="none")(pred, target), expected)
    torch.testing.assert_close(SMAPELoss(eps=1e-12)(pred, target), torch.tensor(0.25))
    torch.testing.assert_close(SMAPELoss(eps=1e-12, reduction="sum")(pred, target), torch.tensor(0.5))


def test_eps_is_added_to_each_term() -> None:
    zeros = torch.zeros(1, 3)
    # |0 - 0| / (3 * eps) = 0, finite; and a prediction of 0.1 against 0 gives 0.1 / (0.1 + 3 * 0.01)
    assert smape_fraction(zeros, zeros, eps=0.01).item() == 0.0
    pred = torch.tensor([[0.1, 0.0, 0.0]])
    torch.testing.assert_close(smape_fraction(pred, zeros, eps=0.01), torch.tensor([0.1 / 0.13]))


def test_gradient_flows_to_prediction() -> None:
    pred = torch.tensor([[0.2, 0.1, 0.05]], requires_grad=True)
    SMAPELoss()(pred, torch.tensor([[0.3, 0.1, 0.1]])).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_bad_arguments_and_shapes() -> None:
    with pytest.raises(ValueError, match="eps"):
        SMAPELoss(eps=0.0)
    with pytest.raises(ValueError, match="reduction"):
        SMAPELoss(reduction="max")
    with pytest.raises(ValueError, match="pred and target"):
        SMAPELoss()(torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="pred and target"):
        SMAPELoss()(torch.zeros(3), torch.zeros(3))
