# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of Eq. 4, the L1 distance between the Siamese CAMs."""

from __future__ import annotations

import pytest
import torch

from scripts.losses.attention_loss import AttentionLoss


def test_hand_computed_value() -> None:
    cam_a = torch.tensor([[[[1.0, 0.0], [0.5, 0.25]]]])
    cam_b = torch.tensor([[[[0.0, 0.0], [1.0, 0.25]]]])
    # (1 + 0 + 0.5 + 0) / 4
    torch.testing.assert_close(AttentionLoss()(cam_a, cam_b), torch.tensor(0.375))


def test_both_branches_get_gradient() -> None:
    cam_a = torch.rand(2, 3, 4, 2, requires_grad=True)
    cam_b = torch.rand(2, 3, 4, 2, requires_grad=True)
    AttentionLoss()(cam_a, cam_b).backward()
    assert cam_a.grad.abs().sum() > 0 and cam_b.grad.abs().sum() > 0


def test_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        AttentionLoss()(torch.rand(1, 3, 4, 2), torch.rand(1, 3, 2, 4))
