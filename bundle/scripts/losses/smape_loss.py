# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""SMAPE loss of Seg4Reg+ (paper Eq. 3) on the three Cobb angles."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SMAPELoss", "smape_fraction"]

_REDUCTIONS = ("mean", "sum", "none")


def smape_fraction(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """SMAPE of each image as a differentiable fraction: ``sum_k |y - r| / sum_k |y + r + eps|`` (the loss's term; the
    metric in percent, as the challenge scores it, is :func:`scripts.metrics.angles.smape_per_image`).

    Args:
        pred: predicted angles r (in any unit, typically angle / scale), ``(B, K)``.
        target: true angles y, same unit, ``(B, K)``.
        eps: keeps the ratio finite when all angles are 0.

    Returns:
        ``(B,)``, each in [0, 1] for non-negative angles (the challenge's SMAPE is the mean times 100).

    Raises:
        ValueError: if the shapes differ or are not ``(B, K)``.
    """
    if pred.shape != target.shape or pred.dim() != 2:
        raise ValueError(f"pred and target must both be (B, K), got {list(pred.shape)} and {list(target.shape)}.")
    return (target - pred).abs().sum(dim=1) / (target + pred + eps).abs().sum(dim=1)


class SMAPELoss(nn.Module):
    """Eq. 3 of Seg4Reg+: per image ``sum_k |y_k - r_k| / sum_k |y_k + r_k + eps|``, reduced over the batch.

    Args:
        eps: added to each term of the denominator, > 0.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the ``(B,)`` values) over images.

    Shapes:
        ``pred (B, 3)``, ``target (B, 3)`` -> scalar, or ``(B,)`` with ``reduction="none"``.

    Raises:
        ValueError: on a bad ``eps`` or ``reduction``; in ``forward``, if the shapes differ or are not 2D.
    """

    def __init__(self, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__()
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
            raise ValueError(f"eps must be a number > 0, got {eps!r}.")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
        self.eps = float(eps)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """SMAPE of ``pred`` against ``target``, both ``(B, 3)``."""
        per_image = smape_fraction(pred, target, self.eps)
        if self.reduction == "mean":
            return per_image.mean()
        if self.reduction == "sum":
            return per_image.sum()
        return per_image
