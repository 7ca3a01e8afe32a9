# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Seg4Reg+ inference network: segmentation, CAM-gated segmentation, and Cobb angle regression in one forward pass.

Output contract of :class:`Seg4RegPlus` (one tensor, so that ``verify_net_in_out``, TorchScript export and MONAI
Deploy, which post-processes only the first output, all see everything), for ``K`` segmentation classes (K = 2, or
18 when N_S labels each vertebra):

=============  ====================================================================================
channels       content
=============  ====================================================================================
0 .. K-1       segmentation probabilities (softmax): background, spine (or background, T1 .. L5)
K              CAM: mean of the three angle maps of the final regressor pass, in [0, 1], upsampled
K+1 .. K+3     the three Cobb angles in degrees (columns of angles.csv), each a constant plane
=============  ====================================================================================

:func:`split_output` turns that tensor back into ``seg``, ``cam`` and ``angles``. The angle planes are constant, so
resizing the output (back to the original image size, say) keeps the angles: ``split_output`` reads their mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from scripts.networks.cam_regressor import CAMRegressor, RegressorOutput
from scripts.networks.pspnet import PSPNet

__all__ = ["REGRESSOR_INPUTS", "Seg4RegPlus", "spine_probability", "split_output"]

REGRESSOR_INPUTS = ("image", "segmentation", "both")


def spine_probability(seg_prob: torch.Tensor) -> torch.Tensor:
    """The spine's probability: the sum of every class but background, ``(B, K, H, W) -> (B, 1, H, W)``.

    With K = 2 this is the spine channel itself; with the 17 vertebra classes it is their union, so N_R and the ROIE
    path see the same one-channel spine map whichever N_S produced it.
    """
    return seg_prob[:, 1:].sum(dim=1, keepdim=True)


def split_output(output: torch.Tensor, num_seg_channels: int = 2) -> dict[str, torch.Tensor]:
    """Split the output of :class:`Seg4RegPlus` into its parts.

    Args:
        output: ``(B, num_seg_channels + 4, H, W)`` (or without the batch dimension, ``(num_seg_channels + 4, H, W)``,
            as after MONAI's decollation; the parts then have no batch dimension either).
        num_seg_channels: number of segmentation classes K.

    Returns:
        ``seg`` probabilities ``(B, K, H, W)``, ``cam`` ``(B, 1, H, W)``, ``angles`` in degrees ``(B, 3)``.

    Raises:
        ValueError: if ``output`` is not 3D or 4D or does not have ``num_seg_channels + 4`` channels.
    """
    if output.dim() not in (3, 4):
        raise ValueError(f"output must be (B, C, H, W) or (C, H, W), got shape {list(output.shape)}.")
    channel_dim = output.dim() - 3
    if output.shape[channel_dim] != num_seg_channels + 4:
        raise ValueError(
            f"output has {output.shape[channel_dim]} channels, expected num_seg_channels + 4 = {num_seg_channels + 4}."
        )
    seg, cam, angle_planes = torch.split(output, [num_seg_channels, 1, 3], dim=channel_dim)
    return {"seg": seg, "cam": cam, "angles": angle_planes.mean(dim=[-2, -1])}


class Seg4RegPlus(nn.Module):
    """The combined Seg4Reg+ network for inference (Lin et al.; our two-pass reading, bundle/docs/README.md).

    With the ROIE gate (``segmenter.roie``)::

        s0 = softmax(N_S(x))                     gate off
        cam0 = N_R(input(x, s0)).cam             attention for the gate
        s = softmax(N_S(x, cam0))                gate on
        angles, cam = N_R(input(x, s)) * angle_scale

    Without the gate (ablation) the second segmentation pass is skipped. ``input(x, s)`` is ``x``, the spine
    probability (:func:`spine_probability`: the union of the foreground classes), or their concatenation, following
    ``regressor_input`` (Table 1's rows).

    Args:
        segmenter: the segmentation network N_S.
        regressor: the regressor N_R; its ``in_channels`` must fit ``regressor_input``.
        regressor_input: ``"image"``, ``"segmentation"`` or ``"both"``.
        angle_scale: the regressor predicts angle / angle_scale (180 by default: labels exceed 90 degrees).
        flip_tta: in eval mode, also run the horizontally mirrored image and average the two answers (angles are
            flip-invariant; maps are mirrored back). Twice the inference cost; training is unchanged.

    Shapes:
        ``(B, C, H, W) -> (B, K + 4, H, W)``, see the module docstring; :meth:`forward_parts` gives the parts.

    Raises:
        TypeError: if ``segmenter`` or ``regressor`` has the wrong type.
        ValueError: on a bad ``regressor_input`` or ``angle_scale``, or a regressor whose ``in_channels`` does not fit;
            in ``forward``, on an input that is not 4D or has the wrong number of channels.
    """

    def __init__(
        self,
        segmenter: PSPNet,
        regressor: CAMRegressor,
        regressor_input: str = "both",
        angle_scale: float = 180.0,
        flip_tta: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(segmenter, PSPNet):
            raise TypeError(f"segmenter must be a PSPNet, got {type(segmenter).__name__}.")
        if not isinstance(regressor, CAMRegressor):
            raise TypeError(f"regressor must be a CAMRegressor, got {type(regressor).__name__}.")
        if regressor_input not in REGRESSOR_INPUTS:
            raise ValueError(f"regressor_input must be one of {REGRESSOR_INPUTS}, got {regressor_input!r}.")
        if isinstance(angle_scale, bool) or not isinstance(angle_scale, int | float) or not angle_scale > 0:
            raise ValueError(f"angle_scale must be a number > 0, got {angle_scale!r}.")
        expected = {
            "image": segmenter.in_channels,
            "segmentation": 1,
            "both": segmenter.in_channels + 1,
        }[regressor_input]
        if regressor.in_channels != expected:
            raise ValueError(
                f"regressor.in_channels is {regressor.in_channels}, regressor_input={regressor_input!r} needs {expected}."
            )
        self.segmenter = segmenter
        self.regressor = regressor
        self.regressor_input = regressor_input
        self.angle_scale = float(angle_scale)
        self.flip_tta = bool(flip_tta)
        self.use_roie: bool = segmenter.gate is not None
        self.num_seg_channels: int = segmenter.out_channels
        self.in_channels: int = segmenter.in_channels
        self.out_channels: int = segmenter.out_channels + 4

    def regression_input(self, x: torch.Tensor, seg_prob: torch.Tensor) -> torch.Tensor:
        """What N_R sees: ``x``, the spine probability (the foreground classes' sum), or both (``regressor_input``)."""
        spine = spine_probability(seg_prob)
        if self.regressor_input == "image":
            return x
        if self.regressor_input == "segmentation":
            return spine
        return torch.cat([x, spine], dim=1)

    def segment(self, x: torch.Tensor, attention: torch.Tensor | None = None) -> torch.Tensor:
        """N_S's logits ``(B, K, H, W)``; with ``attention`` (CAMs ``(B, 3, h, w)``) through the ROIE gate."""
        return self.segmenter(x, attention)

    def regress(self, x: torch.Tensor, seg_prob: torch.Tensor) -> RegressorOutput:
        """N_R on the image and/or the segmentation probabilities ``(B, K, H, W)``: scaled angles and CAMs."""
        return self.regressor(self.regression_input(x, seg_prob))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The CAMs ``(B, 3, h, w)`` fed to the ROIE gate: N_R on the first, ungated segmentation."""
        return self.regress(x, torch.softmax(self.segment(x), dim=1)).cam

    def gated_segment(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The gated logits ``(B, K, H, W)`` and the CAMs ``(B, 3, h, w)`` that gated them, N_S's backbone run once.

        The gate acts on the backbone output, which the ungated and the gated pass share, so only N_S's head runs
        twice. The first head pass and N_R's CAM are computed without gradient (the attention is an input of the
        gated pass, as in training stages c-e); the gated pass keeps its graph, so N_S and the gate train through it.
        """
        size = [x.shape[2], x.shape[3]]
        low, features = self.segmenter.forward_features(x)
        with torch.no_grad():
            initial = self.segmenter.forward_head(features, size, low)
            attention = self.regress(x, torch.softmax(initial, dim=1)).cam
        return self.segmenter.forward_head(self._gate(features, attention), size, low), attention

    def _gate(self, features: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        gate = self.segmenter.gate
        if gate is None:
            raise ValueError("the gated pass needs a segmenter built with roie=True (no ROIE gate).")
        return gate(features, attention)

    def segmentation(self, x: torch.Tensor, use_gate: bool) -> torch.Tensor:
        """Segmentation probabilities ``(B, K, H, W)``: one pass, or with the gate (``use_gate``, backbone once)."""
        logits = self.gated_segment(x)[0] if use_gate else self.segment(x)
        return torch.softmax(logits, dim=1)

    def forward_parts(
        self, x: torch.Tensor, use_gate: bool | None = None, regress: bool = True
    ) -> dict[str, torch.Tensor]:
        """Run the two passes and return every intermediate result, for training and evaluation code.

        Args:
            x: image, ``(B, C, H, W)``.
            use_gate: run the gated second pass; None: whenever the segmenter has a gate. Validation of the stages
                before (c) turns it off (the gate's alpha is still 0 there, so it would change nothing).
            regress: run N_R on the final segmentation (off in stage (a), where N_R is untrained).

        Returns:
            ``seg_logits`` ``(B, K, H, W)`` of the final segmentation and ``seg`` its softmax; with ``regress`` also
            ``cam`` ``(B, 3, h, w)`` and ``scaled_angles`` ``(B, 3)`` of the final regressor pass and ``angles``
            ``(B, 3)`` in degrees; with the gate also ``seg_logits_initial`` (gate off) and ``attention``
            ``(B, 3, h, w)`` (the CAMs fed to the gate).
        """
        if x.dim() != 4:
            raise ValueError(f"Seg4RegPlus input must be 4D (B, C, H, W), got shape {list(x.shape)}.")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Seg4RegPlus expects {self.in_channels} input channels, got shape {list(x.shape)}.")
        gated = self.use_roie if use_gate is None else use_gate and self.use_roie
        if self.flip_tta and not self.training:
            return self._flip_averaged_parts(x, gated, regress)
        return self._parts(x, gated, regress)

    def _flip_averaged_parts(self, x: torch.Tensor, gated: bool, regress: bool) -> dict[str, torch.Tensor]:
        """:meth:`_parts` of ``x`` and of its mirror image in one batch, averaged (maps mirrored back first).

        Cobb angles do not change under a horizontal flip, so the two answers estimate the same angles; the spine
        probabilities are the softmax of the averaged logits.
        """
        batch = x.shape[0]
        both = self._parts(torch.cat([x, torch.flip(x, dims=[3])], dim=0), gated, regress)
        averaged: dict[str, torch.Tensor] = {}
        for key, value in both.items():
            mirrored = value[batch:]
            if value.dim() == 4:
                mirrored = torch.flip(mirrored, dims=[3])
            averaged[key] = 0.5 * (value[:batch] + mirrored)
        averaged["seg"] = torch.softmax(averaged["seg_logits"], dim=1)
        return averaged

    def _parts(self, x: torch.Tensor, gated: bool, regress: bool) -> dict[str, torch.Tensor]:
        parts: dict[str, torch.Tensor] = {}
        size = [x.shape[2], x.shape[3]]
        low, features = self.segmenter.forward_features(x)  # shared by both passes: the gate acts on its output
        seg_logits = self.segmenter.forward_head(features, size, low)
        if gated:
            attention = self.regress(x, torch.softmax(seg_logits, dim=1)).cam
            parts["seg_logits_initial"] = seg_logits
            parts["attention"] = attention
            seg_logits = self.segmenter.forward_head(self._gate(features, attention), size, low)
        seg = torch.softmax(seg_logits, dim=1)
        parts["seg_logits"] = seg_logits
        parts["seg"] = seg
        if regress:
            regression = self.regress(x, seg)
            parts["cam"] = regression.cam
            parts["scaled_angles"] = regression.scaled_angles
            parts["angles"] = regression.scaled_angles * self.angle_scale
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Segment ``x`` and measure its Cobb angles: ``(B, C, H, W) -> (B, K + 4, H, W)`` (module docstring)."""
        parts = self.forward_parts(x)
        height, width = x.shape[2], x.shape[3]
        cam = F.interpolate(
            parts["cam"].mean(dim=1, keepdim=True), size=[height, width], mode="bilinear", align_corners=False
        )
        angles = parts["angles"][:, :, None, None].expand(-1, -1, height, width)
        return torch.cat([parts["seg"], cam, angles], dim=1)
