# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of PSPNet (N_S): shapes, the ROIE gate on the middle feature map, gradients, argument checks."""

from __future__ import annotations

import math

import pytest
import torch

from scripts.losses.seg_loss import SegmentationLoss
from scripts.networks.backbones import ResNetEncoder
from scripts.networks.pspnet import PSPNet


def small_pspnet(**kwargs) -> PSPNet:
    options = {"depth": 18, "pyramid_channels": 8, "fuse_channels": 8}
    options.update(kwargs)
    return PSPNet(**options)


@pytest.mark.parametrize(
    ("size", "in_channels", "out_channels"), [((64, 32), 1, 2), ((65, 33), 3, 4), ((500, 260), 1, 2)]
)
def test_output_shapes(size: tuple[int, int], in_channels: int, out_channels: int) -> None:
    net = small_pspnet(in_channels=in_channels, out_channels=out_channels).eval()
    x = torch.rand(1, in_channels, *size)
    with torch.no_grad():
        logits = net(x)
        _, features = net.forward_features(x)
    assert tuple(logits.shape) == (1, out_channels, *size)
    assert tuple(features.shape) == (1, 512, math.ceil(size[0] / 8), math.ceil(size[1] / 8))


def test_depth50_feature_map() -> None:
    net = PSPNet(depth=50).eval()
    with torch.no_grad():
        _, features = net.forward_features(torch.rand(1, 1, 65, 33))
        logits = net(torch.rand(1, 1, 65, 33))
    assert tuple(features.shape) == (1, 2048, 9, 5)
    assert tuple(logits.shape) == (1, 2, 65, 33)


def test_gate_acts_on_middle_feature_map() -> None:
    torch.manual_seed(0)
    net = small_pspnet().eval()
    x = torch.rand(1, 1, 64, 32)
    cam = torch.rand(1, 3, 2, 1)
    with torch.no_grad():
        assert torch.equal(net(x, cam), net(x))  # alpha starts at 0
        net.gate.alpha.fill_(0.7)
        low, features = net.forward_features(x)
        attention = torch.nn.functional.interpolate(cam.mean(1, keepdim=True), size=(8, 4), mode="bilinear")
        expected = net.forward_head(features + 0.7 * attention * features, [64, 32], low)
        torch.testing.assert_close(net(x, cam), expected)
        assert not torch.allclose(net(x, cam), net(x))


def test_every_parameter_gets_gradient_from_eq1() -> None:
    torch.manual_seed(0)
    net = small_pspnet(dropout=0.0).train()  # no dropout, so no weight misses its gradient by chance
    x = torch.rand(2, 1, 64, 32)
    label = (torch.rand(2, 1, 64, 32) > 0.5).long()
    SegmentationLoss(lambda_ce=1.0)(net(x), label).backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == ["gate.alpha"]  # the gate is idle without an attention map (stage (a))


def test_every_parameter_gets_gradient_with_gate() -> None:
    torch.manual_seed(0)
    net = small_pspnet(dropout=0.0).train()  # no dropout, so no weight misses its gradient by chance
    x = torch.rand(2, 1, 64, 32)
    label = (torch.rand(2, 1, 64, 32) > 0.5).long()
    SegmentationLoss(lambda_ce=1.0)(net(x, torch.rand(2, 3, 2, 1)), label).backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []
    assert net.gate.alpha.item() == 0.0 and net.gate.alpha.grad.item() != 0.0


def test_no_gate() -> None:
    net = small_pspnet(roie=False)
    assert net.gate is None and not net.roie
    assert not any("gate" in name for name, _ in net.named_parameters())
    with pytest.raises(ValueError, match="roie=False"):
        net(torch.rand(1, 1, 64, 32), torch.rand(1, 3, 2, 1))


def test_bad_inputs() -> None:
    net = small_pspnet()
    with pytest.raises(ValueError, match="4D"):
        net(torch.rand(1, 64, 32))
    with pytest.raises(ValueError, match="1 input channels"):
        net(torch.rand(1, 2, 64, 32))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"in_channels": 0}, "in_channels"),
        ({"out_channels": 1}, "out_channels"),
        ({"depth": 101}, "depth"),
        ({"pyramid_rates": []}, "pyramid_rates"),
        ({"pyramid_rates": [1, 0]}, "pyramid_rates"),
        ({"pyramid_channels": 0}, "pyramid_channels"),
        ({"fuse_channels": -1}, "fuse_channels"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        small_pspnet(**kwargs)


def test_pretrained_path(tmp_path) -> None:
    source = ResNetEncoder(depth=18, in_channels=1, output_stride=32)
    path = tmp_path / "backbone.pt"
    torch.save(source.state_dict(), path)
    net = small_pspnet(pretrained_path=path)
    for name, value in source.state_dict().items():
        assert torch.equal(net.encoder.state_dict()[name], value), name
    with pytest.raises(FileNotFoundError):
        small_pspnet(pretrained_path=tmp_path / "absent.pt")
