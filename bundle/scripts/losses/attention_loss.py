# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Attention loss of Seg4Reg+ (paper Eq. 4): the L1 distance between the CAMs of the two Siamese branches."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AttentionLoss"]


class AttentionLoss(nn.Module):
    """Eq. 4 of Seg4Reg+: L1 distance between the CAMs of the two Siamese branches, ``mean |cam_a - cam_b|``.

    The mean over all elements (batch, maps, pixels) keeps the value independent of the CAM size (our reading).
    Both branches receive the gradient: the weights are shared, and the point is to make them agree.

    Shapes:
        ``cam_a (B, 3, h, w)``, ``cam_b`` the same -> scalar.

    Raises:
        ValueError: in ``forward``, if the shapes differ.
    """

    def forward(self, cam_a: torch.Tensor, cam_b: torch.Tensor) -> torch.Tensor:
        """L1 distance of ``cam_a`` and ``cam_b``."""
        if cam_a.shape != cam_b.shape:
            raise ValueError(
                f"cam_a and cam_b must have the same shape, got {list(cam_a.shape)} and {list(cam_b.shape)}."
            )
        return (cam_a - cam_b).abs().mean()
