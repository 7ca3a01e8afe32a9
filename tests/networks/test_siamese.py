# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the Siamese AR pair: the two branches, shared weights, gradients of the AR loss."""

from __future__ import annotations

import pytest
import torch

from scripts.losses.ar_loss import ARLoss
from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.siamese import SiameseAR


def test_branches_are_the_regressor_on_the_two_inputs() -> None:
    torch.manual_seed(0)
    regressor = CAMRegressor("resnet18", in_channels=2).eval()
    with torch.no_grad():
        regressor.fc.weight.normal_()
        x, s = torch.rand(2, 1, 64, 32), torch.rand(2, 1, 64, 32)
        out = SiameseAR(regressor)(x, s)
        a = regressor(torch.cat([x, s], dim=1))
        b = regressor(torch.cat([torch.zeros_like(x), s], dim=1))
    torch.testing.assert_close(out.scaled_angles_a, a.scaled_angles)
    torch.testing.assert_close(out.cam_a, a.cam)
    torch.testing.assert_close(out.scaled_angles_b, b.scaled_angles)
    torch.testing.assert_close(out.cam_b, b.cam)
    assert not torch.allclose(out.cam_a, out.cam_b)


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet-b1"])
def test_every_parameter_gets_gradient_from_ar_loss(backbone: str) -> None:
    torch.manual_seed(0)
    siamese = SiameseAR(CAMRegressor(backbone, in_channels=2)).train()
    x, s = torch.rand(2, 1, 64, 32), torch.rand(2, 1, 64, 32)
    out = siamese(x, s)
    target = torch.tensor([[0.3, 0.1, 0.05], [0.1, 0.05, 0.02]])
    ARLoss(lambda_ar=1.0)(out.scaled_angles_a, out.scaled_angles_b, out.cam_a, out.cam_b, target).backward()
    no_grad = [n for n, p in siamese.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_bad_arguments_and_inputs() -> None:
    with pytest.raises(TypeError, match="regressor"):
        SiameseAR(torch.nn.Linear(2, 3))
    siamese = SiameseAR(CAMRegressor("resnet18", in_channels=2))
    with pytest.raises(ValueError, match="channels"):
        siamese(torch.rand(1, 1, 64, 32), torch.rand(1, 2, 64, 32))
    with pytest.raises(ValueError, match="4D"):
        siamese(torch.rand(1, 1, 64, 32), torch.rand(1, 1, 32, 32))
