# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the ROIE gate, f' = alpha * (CAM * f) + f."""

from __future__ import annotations

import pytest
import torch

from scripts.networks.roie_gate import ROIEGate


def test_starts_as_identity() -> None:
    gate = ROIEGate()
    features = torch.randn(2, 4, 5, 3)
    assert gate.alpha.item() == 0.0
    assert torch.equal(gate(features, torch.rand(2, 3, 5, 3)), features)


def test_mean_of_maps_same_size() -> None:
    gate = ROIEGate()
    with torch.no_grad():
        gate.alpha.fill_(0.5)
    features = torch.randn(1, 2, 2, 2)
    cam = torch.tensor([[[[0.0, 1.0], [0.5, 1.0]], [[1.0, 1.0], [0.5, 0.0]], [[0.5, 0.0], [0.5, 0.5]]]])
    attention = torch.tensor([[0.5, 2.0 / 3.0], [0.5, 0.5]])  # the mean of the three maps, worked out by hand
    expected = features * (1.0 + 0.5 * attention)
    torch.testing.assert_close(gate(features, cam), expected)


def test_resizes_attention_to_features() -> None:
    gate = ROIEGate()
    with torch.no_grad():
        gate.alpha.fill_(2.0)
    features = torch.randn(2, 3, 9, 5)
    cam = torch.full((2, 1, 3, 2), 0.25)  # constant, so any bilinear resizing keeps 0.25
    torch.testing.assert_close(gate(features, cam), features * 1.5)


def test_alpha_gets_gradient_at_zero() -> None:
    gate = ROIEGate()
    features = torch.rand(1, 2, 2, 2)
    cam = torch.rand(1, 1, 2, 2)
    gate(features, cam).sum().backward()
    # d/dalpha sum(alpha * A * f + f) = sum(A * f), whatever alpha is
    torch.testing.assert_close(gate.alpha.grad, (cam * features).sum())
    assert gate.alpha.grad.item() != 0.0


def test_bad_inputs() -> None:
    gate = ROIEGate()
    with pytest.raises(ValueError, match="4D"):
        gate(torch.rand(2, 3, 4), torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match="batch size"):
        gate(torch.rand(2, 3, 4, 4), torch.rand(1, 1, 4, 4))
