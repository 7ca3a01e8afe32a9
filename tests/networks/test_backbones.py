# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the MONAI-based feature encoders and of loading local backbone weights."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scripts.networks.backbones import EfficientNetEncoder, ResNetEncoder, load_backbone_weights


@pytest.mark.parametrize(("output_stride", "size"), [(8, (65, 33)), (16, (65, 33)), (32, (64, 32))])
def test_resnet_encoder_output_stride(output_stride: int, size: tuple[int, int]) -> None:
    encoder = ResNetEncoder(depth=18, in_channels=1, output_stride=output_stride).eval()
    with torch.no_grad():
        features = encoder(torch.rand(1, 1, *size))
    expected = (1, 512, math.ceil(size[0] / output_stride), math.ceil(size[1] / output_stride))
    assert tuple(features.shape) == expected


def test_resnet50_encoder_channels_and_dilation() -> None:
    encoder = ResNetEncoder(depth=50, in_channels=2, output_stride=8).eval()
    with torch.no_grad():
        features = encoder(torch.rand(1, 2, 33, 17))
    assert tuple(features.shape) == (1, 2048, 5, 3)
    # PSPNet's dilated ResNet: the 3x3 convolutions of the last two stages use dilation 2 and 4, no stride.
    assert encoder.layer3[0].conv2.dilation == (2, 2) and encoder.layer3[0].conv2.stride == (1, 1)
    assert encoder.layer4[2].conv2.dilation == (4, 4) and encoder.layer4[0].downsample[0].stride == (1, 1)
    assert encoder.layer2[0].conv2.stride == (2, 2)


def test_efficientnet_encoder_shape() -> None:
    encoder = EfficientNetEncoder("efficientnet-b1", in_channels=2).eval()
    with torch.no_grad():
        features = encoder(torch.rand(1, 2, 64, 32))
    assert tuple(features.shape) == (1, 1280, 2, 1)
    assert isinstance(encoder._fc, nn.Identity)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"depth": 20}, "depth"), ({"in_channels": 0}, "in_channels"), ({"output_stride": 4}, "output_stride")],
)
def test_resnet_encoder_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        ResNetEncoder(**kwargs)


def test_efficientnet_encoder_bad_name() -> None:
    with pytest.raises(ValueError, match="model_name"):
        EfficientNetEncoder("efficientnet-b99")


def test_load_rgb_checkpoint_into_grayscale_encoder(tmp_path) -> None:
    torch.manual_seed(0)
    rgb = ResNetEncoder(depth=18, in_channels=3, output_stride=8).eval()
    state = {f"module.{k}": v for k, v in rgb.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(10, 512), torch.zeros(10)  # a classifier the encoder lacks
    path = tmp_path / "resnet18.pt"
    torch.save({"state_dict": state}, path)

    gray = ResNetEncoder(depth=18, in_channels=1, output_stride=8)
    load_backbone_weights(gray, path)
    gray.eval()
    assert torch.equal(gray.layer4[1].conv2.weight, rgb.layer4[1].conv2.weight)
    x = torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        # a grayscale image must give what the RGB network gives for the same image in three channels
        torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-4)


def test_load_backbone_weights_errors(tmp_path) -> None:
    encoder = ResNetEncoder(depth=18, in_channels=1)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        load_backbone_weights(encoder, tmp_path / "missing.pt")
    wrong = tmp_path / "resnet34.pt"
    torch.save(ResNetEncoder(depth=34, in_channels=1).state_dict(), wrong)
    with pytest.raises(ValueError, match=r"resnet34\.pt"):
        load_backbone_weights(encoder, wrong)
    not_weights = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ValueError, match=r"list\.pt"):
        load_backbone_weights(encoder, not_weights)
