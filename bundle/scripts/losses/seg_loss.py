# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Segmentation loss of Seg4Reg+ (paper Eq. 1): soft Dice + lambda * cross-entropy, which is MONAI's ``DiceCELoss``."""

from __future__ import annotations

from monai.losses import DiceCELoss

__all__ = ["SegmentationLoss"]


class SegmentationLoss(DiceCELoss):
    """Eq. 1 of Seg4Reg+: ``L_seg = L_Dice + lambda_ce * L_CE`` on segmentation logits and an integer label map.

    A thin :class:`monai.losses.DiceCELoss` with the paper's settings fixed: softmax on the logits for the Dice term,
    labels one-hot encoded from a ``(B, 1, H, W)`` class map, Dice weight 1. The soft Dice term is computed per image
    (``batch=False``) and averaged over images and over the foreground classes only (``include_background=False``,
    our reading for the binary spine mask, where a background Dice near 1 carries little signal); the cross-entropy
    term is the mean over all pixels.

    Args:
        lambda_ce: weight of the cross-entropy term, >= 0.
        include_background: whether the Dice term also averages over class 0.
        smooth_nr: added to the Dice numerator.
        smooth_dr: added to the Dice denominator.

    Shapes:
        ``logits (B, K, H, W)``, ``target (B, 1, H, W)`` with values in 0..K-1 -> scalar.

    Raises:
        ValueError: if ``lambda_ce`` is not a number >= 0.
    """

    def __init__(
        self,
        lambda_ce: float = 1.0,
        include_background: bool = False,
        smooth_nr: float = 1e-5,
        smooth_dr: float = 1e-5,
    ) -> None:
        if isinstance(lambda_ce, bool) or not isinstance(lambda_ce, int | float) or not lambda_ce >= 0:
            raise ValueError(f"lambda_ce must be a number >= 0, got {lambda_ce!r}.")
        super().__init__(
            include_background=include_background,
            to_onehot_y=True,
            softmax=True,
            reduction="mean",
            smooth_nr=smooth_nr,
            smooth_dr=smooth_dr,
            lambda_dice=1.0,
            lambda_ce=float(lambda_ce),
        )
