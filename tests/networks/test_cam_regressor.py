# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the CAM regressor (N_R): shapes, the head's start, the CAM as an explicit weighted sum, checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scripts.networks.cam_regressor import CAMRegressor


@pytest.mark.parametrize(("backbone", "in_channels"), [("resnet18", 1), ("efficientnet-b1", 2)])
def test_output_shapes(backbone: str, in_channels: int) -> None:
    net = CAMRegressor(backbone, in_channels=in_channels).eval()
    for size in [(64, 32), (65, 33)]:
        with torch.no_grad():
            out = net(torch.rand(2, in_channels, *size))
        assert tuple(out.scaled_angles.shape) == (2, 3)
        assert out.cam.shape[:2] == (2, 3)
        # ResNet pads so that sizes round up; MONAI's EfficientNet pads for its nominal 240x240 input, so that odd
        # sizes may round down
        for got, length in zip(out.cam.shape[2:], size, strict=True):
            assert got in (length // 32, math.ceil(length / 32))


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet-b1"])
def test_head_starts_at_init_mean(backbone: str) -> None:
    net = CAMRegressor(backbone, in_channels=2, init_mean=(0.3, 0.2, 0.1)).eval()
    with torch.no_grad():
        out = net(torch.rand(3, 2, 64, 32))
    np.testing.assert_allclose(out.scaled_angles.numpy(), np.tile([0.3, 0.2, 0.1], (3, 1)), atol=0.02)
    # the bias is logit(init_mean): sigmoid(bias) is the mean
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-net.fc.bias.detach().numpy())), [0.3, 0.2, 0.1], rtol=1e-6)


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet-b1"])
def test_cam_is_the_weighted_sum_of_features(backbone: str) -> None:
    torch.manual_seed(0)
    net = CAMRegressor(backbone, in_channels=2).eval()
    with torch.no_grad():
        net.fc.weight.normal_()  # weights large enough for the maps to have positive and negative parts
        x = torch.rand(2, 2, 128, 64)
        out = net(x)
        features = net.forward_features(x).numpy().astype(np.float64)
    weights = net.fc.weight.detach().numpy().astype(np.float64)
    bias = net.fc.bias.detach().numpy().astype(np.float64)
    batch, _, height, width = features.shape
    expected = np.zeros((batch, 3, height, width))
    for b in range(batch):
        for k in range(3):
            weighted = np.tensordot(weights[k], features[b], axes=1)  # sum over c of w_kc * F_c
            relu = np.maximum(weighted, 0.0)
            expected[b, k] = relu / (relu.max() + 1e-6)
    np.testing.assert_allclose(out.cam.numpy(), expected, rtol=1e-4, atol=1e-5)
    # and the outputs are the sigmoid of the linear layer on the averaged features
    logits = features.mean(axis=(2, 3)) @ weights.T + bias
    np.testing.assert_allclose(out.scaled_angles.numpy(), 1.0 / (1.0 + np.exp(-logits)), rtol=1e-4, atol=1e-6)
    assert out.cam.min() >= 0.0 and out.cam.amax(dim=(2, 3)).max() <= 1.0


def test_cam_is_differentiable() -> None:
    torch.manual_seed(0)
    net = CAMRegressor("resnet18", in_channels=1).train()
    net(torch.rand(2, 1, 64, 32)).cam.sum().backward()
    assert net.fc.weight.grad is not None and net.fc.weight.grad.abs().sum() > 0
    assert net.fc.bias.grad is None or net.fc.bias.grad.abs().sum() == 0  # the CAM does not use the bias
    assert net.encoder.conv1.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"backbone": "vgg16"}, "backbone"),
        ({"in_channels": 0}, "in_channels"),
        ({"init_mean": (0.2, 0.1)}, "init_mean"),
        ({"init_mean": (0.2, 0.1, 1.0)}, "init_mean"),
        ({"init_weight_scale": 0.0}, "init_weight_scale"),
        ({"cam_eps": 0.0}, "cam_eps"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        CAMRegressor(**kwargs)


def test_bad_inputs() -> None:
    net = CAMRegressor("resnet18", in_channels=2)
    with pytest.raises(ValueError, match="4D"):
        net(torch.rand(2, 64, 32))
    with pytest.raises(ValueError, match="2 input channels"):
        net(torch.rand(1, 1, 64, 32))
