# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Feature encoders built on MONAI's 2D ResNet and EfficientNet, and loading of local backbone weights.

Both encoders return the last feature map (no pooling, no classifier), which is what PSPNet's pyramid module and the
CAM regressor's head consume. Parameter names are those of the MONAI classes, which for the ResNet are the
torchvision names (``conv1``, ``bn1``, ``layer1.0.conv1`` ...; the shortcut convolution has no bias, as in torchvision),
so an ImageNet checkpoint saved from torchvision loads with :func:`load_backbone_weights`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from monai.networks.nets import EfficientNetBN, ResNet
from torch import nn

__all__ = ["RESNET_DEPTHS", "EfficientNetEncoder", "ResNetEncoder", "load_backbone_weights"]

logger = logging.getLogger(__name__)

# depth: (block type, blocks per stage); the four stages have 64, 128, 256 and 512 planes.
RESNET_DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
}

# output stride: dilation of (layer3, layer4); a dilation > 1 replaces that stage's stride 2.
_STAGE_DILATIONS: dict[int, tuple[int, int]] = {8: (2, 4), 16: (1, 2), 32: (1, 1)}

# keys of classification layers that a backbone checkpoint may carry and an encoder does not have.
_CLASSIFIER_PREFIXES = ("fc.", "_fc.", "classifier.")


def _check_in_channels(in_channels: int) -> None:
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive int, got {in_channels!r}.")


def _dilate_stage(stage: nn.Module, dilation: int) -> None:
    """Replace the stride-2 subsampling of a ResNet stage by dilation, in place (PSPNet's dilated ResNet).

    Every 3x3 convolution of the stage gets ``dilation`` (and matching padding, so sizes are kept), and every stride
    becomes 1, the 1x1 shortcut convolution's included. Parameter shapes do not change, so weights still load.
    """
    for module in stage.modules():
        if not isinstance(module, nn.Conv2d):
            continue
        module.stride = (1, 1)
        if module.kernel_size == (3, 3):
            module.dilation = (dilation, dilation)
            module.padding = (dilation, dilation)


class ResNetEncoder(ResNet):
    """2D ResNet-18/34/50 feature encoder (MONAI ``ResNet``), optionally dilated to output stride 8 or 16.

    The stem is the usual ImageNet layout (7x7 convolution with stride 2, then 3x3 max pooling with stride 2). At output
    stride 8 the last two stages keep the resolution of the second and use dilation 2 and 4 instead of stride, as in
    PSPNet (Zhao et al., CVPR 2017).

    Args:
        depth: 18, 34 or 50.
        in_channels: number of input channels.
        output_stride: 8, 16 or 32 (32 is the plain classification ResNet).
        skip_stride: which high-resolution map :meth:`forward_pyramid` returns: 2 (stem) or 4 (first stage).

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, ceil(H / output_stride), ceil(W / output_stride))``, with
        ``out_channels`` 512 for depths 18 and 34 and 2048 for depth 50.

    Raises:
        ValueError: on an unsupported ``depth``, ``in_channels`` or ``output_stride``.
    """

    def __init__(self, depth: int = 50, in_channels: int = 1, output_stride: int = 32, skip_stride: int = 4) -> None:
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}.")
        _check_in_channels(in_channels)
        if output_stride not in _STAGE_DILATIONS:
            raise ValueError(f"output_stride must be one of {sorted(_STAGE_DILATIONS)}, got {output_stride!r}.")
        if skip_stride not in (2, 4):
            raise ValueError(f"skip_stride must be 2 or 4, got {skip_stride!r}.")
        block, layers = RESNET_DEPTHS[depth]
        super().__init__(
            block=block,
            layers=layers,
            block_inplanes=[64, 128, 256, 512],
            spatial_dims=2,
            n_input_channels=in_channels,
            conv1_t_size=7,
            conv1_t_stride=2,
            feed_forward=False,
            bias_downsample=False,
        )
        for stage, dilation in zip((self.layer3, self.layer4), _STAGE_DILATIONS[output_stride], strict=True):
            if dilation > 1:
                _dilate_stage(stage, dilation)
        self.depth = depth
        self.in_channels = in_channels
        self.output_stride = output_stride
        self.out_channels = 512 * (4 if block == "bottleneck" else 1)
        self.skip_stride = skip_stride
        self.low_channels = 64 if skip_stride == 2 else 64 * (4 if block == "bottleneck" else 1)

    def forward_pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The map at ``skip_stride`` (the stem's output at 2, the first stage's at 4) and the last stage's output."""
        stem = self.act(self.bn1(self.conv1(x)))
        first = self.layer1(self.maxpool(stem))
        return (stem if self.skip_stride == 2 else first), self.layer4(self.layer3(self.layer2(first)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the output of the last stage, ``(B, out_channels, h, w)``."""
        return self.forward_pyramid(x)[1]


class EfficientNetEncoder(EfficientNetBN):
    """2D EfficientNet feature encoder (MONAI ``EfficientNetBN``, random initialisation).

    Returns the output of the 1x1 head convolution (after batch norm and swish), before pooling. The plain swish is
    used instead of MONAI's memory-efficient autograd function so that the encoder can be exported to TorchScript.
    The classification layer of ``EfficientNetBN`` is removed.

    Args:
        model_name: ``"efficientnet-b0"`` ... ``"efficientnet-b7"``.
        in_channels: number of input channels.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, ~H / 32, ~W / 32)``; ``out_channels`` is 1280 for B0 and B1.

    Raises:
        ValueError: on an unknown ``model_name`` or a bad ``in_channels``.
    """

    def __init__(self, model_name: str = "efficientnet-b1", in_channels: int = 1) -> None:
        _check_in_channels(in_channels)
        try:
            super().__init__(model_name, pretrained=False, spatial_dims=2, in_channels=in_channels, num_classes=1)
        except ValueError as error:
            raise ValueError(f"model_name {model_name!r} is not an EfficientNet known to MONAI: {error}") from error
        self.out_channels = self._fc.in_features
        self._fc = nn.Identity()
        self.set_swish(memory_efficient=False)
        self.model_name = model_name
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the head feature map, ``(B, out_channels, h, w)``."""
        x = self._swish(self._bn0(self._conv_stem(self._conv_stem_padding(x))))
        x = self._blocks(x)
        return self._swish(self._bn1(self._conv_head(self._conv_head_padding(x))))


def _unwrap_state_dict(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
    if not isinstance(checkpoint, Mapping) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise ValueError(f"pretrained weights file {str(path)!r} does not hold a state dict of tensors.")
    return {k.removeprefix("module."): v for k, v in checkpoint.items()}


def load_backbone_weights(encoder: nn.Module, path: str | Path) -> None:
    """Load backbone weights from a local checkpoint into an encoder, in place.

    Accepts a plain state dict or one stored under ``"state_dict"`` or ``"model"``; a ``"module."`` prefix
    (DistributedDataParallel) is removed and classification-layer keys (``fc.``, ``_fc.``, ``classifier.``) are
    ignored. When the checkpoint's first convolution has another number of input channels (an RGB ImageNet checkpoint
    for a grayscale encoder), its kernel is summed over the input channels and spread evenly over the encoder's,
    which makes a grayscale image give the response the checkpoint gave to that image copied into three channels.

    Args:
        encoder: a :class:`ResNetEncoder` or :class:`EfficientNetEncoder` (any module whose parameter names the
            checkpoint uses).
        path: the checkpoint file (``torch.save`` output; loaded with ``weights_only=True``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file does not hold a state dict, or its keys or shapes do not match the encoder's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist.")
    state = _unwrap_state_dict(torch.load(path, map_location="cpu", weights_only=True), path)
    state = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER_PREFIXES)}
    own = encoder.state_dict()
    for key, value in state.items():
        target = own.get(key)
        if target is None or target.shape == value.shape:
            continue
        if value.ndim == 4 and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            summed = value.sum(dim=1, keepdim=True)
            state[key] = (summed / target.shape[1]).expand_as(target).clone()
            logger.info("adapted %s from %d to %d input channels", key, value.shape[1], target.shape[1])
        else:
            raise ValueError(
                f"pretrained weights file {str(path)!r}: {key} has shape {tuple(value.shape)}, "
                f"the encoder expects {tuple(target.shape)}."
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"pretrained weights file {str(path)!r} does not match the encoder: "
            f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}."
        )
    encoder.load_state_dict(state)
    logger.info("loaded backbone weights from %s", path)
