# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The attention regularisation (AR) module of Seg4Reg+: one regressor with shared weights seen twice."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from scripts.networks.cam_regressor import CAMRegressor

__all__ = ["SiameseAR", "SiameseOutput"]


class SiameseOutput(NamedTuple):
    """What :class:`SiameseAR` returns: branch A saw image and segmentation, branch B the segmentation alone.

    Attributes:
        scaled_angles_a: ``(B, 3)``, angles / angle scale predicted from ``concat(x, s)``.
        cam_a: ``(B, 3, h, w)``, the CAMs of branch A.
        scaled_angles_b: ``(B, 3)``, predicted from ``concat(0, s)``.
        cam_b: ``(B, 3, h, w)``, the CAMs of branch B.
    """

    scaled_angles_a: torch.Tensor
    cam_a: torch.Tensor
    scaled_angles_b: torch.Tensor
    cam_b: torch.Tensor


class SiameseAR(nn.Module):
    """Shared-weight Siamese regressor of the AR module (paper Eq. 4).

    Branch A runs the regressor on ``concat(x, s)``; branch B on ``concat(zeros_like(x), s)``: the segmentation alone,
    in the same input layout so that the weights can be shared (our reading, bundle/docs/README.md "Our readings of the paper"). The two branches
    run as one batch of 2B, so that batch normalisation sees, in training, the same mixture of both kinds of input
    that its running statistics (used at inference, where only branch A's kind of input occurs) accumulate.

    Args:
        regressor: the regressor N_R, built with ``in_channels`` = image channels + segmentation channels.

    Shapes:
        ``x (B, C_x, H, W)``, ``s (B, C_s, H, W)`` -> :class:`SiameseOutput`.

    Raises:
        TypeError: if ``regressor`` is not a :class:`CAMRegressor`.
        ValueError: in ``forward``, if ``x`` and ``s`` are not 4D with equal batch and spatial sizes, or if
            ``C_x + C_s`` is not the regressor's ``in_channels``.
    """

    def __init__(self, regressor: CAMRegressor) -> None:
        super().__init__()
        if not isinstance(regressor, CAMRegressor):
            raise TypeError(f"regressor must be a CAMRegressor, got {type(regressor).__name__}.")
        self.regressor = regressor

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> SiameseOutput:
        """Run both branches.

        Args:
            x: image, ``(B, C_x, H, W)``.
            s: segmentation (spine probability), ``(B, C_s, H, W)``.

        Returns:
            :class:`SiameseOutput`.
        """
        if x.dim() != 4 or s.dim() != 4 or x.shape[0] != s.shape[0] or x.shape[2:] != s.shape[2:]:
            raise ValueError(
                f"x and s must be 4D with equal batch and spatial sizes, got {list(x.shape)} and {list(s.shape)}."
            )
        if x.shape[1] + s.shape[1] != self.regressor.in_channels:
            raise ValueError(
                f"x and s have {x.shape[1]} + {s.shape[1]} channels, the regressor expects {self.regressor.in_channels}."
            )
        both = torch.cat([torch.cat([x, s], dim=1), torch.cat([torch.zeros_like(x), s], dim=1)], dim=0)
        out = self.regressor(both)
        batch = x.shape[0]
        return SiameseOutput(out.scaled_angles[:batch], out.cam[:batch], out.scaled_angles[batch:], out.cam[batch:])
