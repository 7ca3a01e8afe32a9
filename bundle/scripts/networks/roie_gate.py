# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The ROI enhancement (ROIE) gate of Seg4Reg+ (Lin et al., paper Eq. 2): f' = alpha * (CAM * f) + f."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ROIEGate"]


class ROIEGate(nn.Module):
    """Attention gate that enhances a feature map where the regressor's class activation maps are high.

    ``f' = alpha * (A ⊙ f) + f``, with ``alpha`` a learnable scalar initialised to 0 (so the gate starts as the
    identity and the segmentation network is unchanged until fine-tuning moves alpha) and ``A`` the attention map:
    the mean over the given CAMs (one per Cobb angle), resized bilinearly to the feature map's size (our reading of
    the paper; bundle/docs/README.md).

    Shapes:
        ``features (B, C, h, w)``, ``cam (B, K, h', w')`` with any K >= 1 (3 CAMs or their mean) ``-> (B, C, h, w)``.

    Raises:
        ValueError: in ``forward``, if the inputs are not 4D or their batch sizes differ.
    """

    def __init__(self) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """Gate ``features`` with ``cam``.

        Args:
            features: the feature map f, ``(B, C, h, w)``.
            cam: class activation maps in [0, 1], ``(B, K, h', w')``.

        Returns:
            ``(B, C, h, w)``.
        """
        if features.dim() != 4 or cam.dim() != 4:
            raise ValueError(
                f"features and cam must be 4D (B, C, H, W), got shapes {list(features.shape)} and {list(cam.shape)}."
            )
        if cam.shape[0] != features.shape[0]:
            raise ValueError(f"cam batch size {cam.shape[0]} differs from the features' {features.shape[0]}.")
        # unconditional (an identity at equal sizes) so that a traced graph stays right for other input sizes
        attention = F.interpolate(
            cam.mean(dim=1, keepdim=True), size=features.shape[2:], mode="bilinear", align_corners=False
        )
        return self.alpha * (attention * features) + features
