# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Total loss of the attention regularisation (AR) module of Seg4Reg+: two SMAPE terms and the attention term."""

from __future__ import annotations

import torch
from torch import nn

from scripts.losses.attention_loss import AttentionLoss
from scripts.losses.smape_loss import SMAPELoss

__all__ = ["ARLoss"]


class ARLoss(nn.Module):
    """Loss of the AR module (training stage (b)): ``SMAPE(r_A, y) + SMAPE(r_B, y) + lambda_ar * L1(CAM_A, CAM_B)``.

    Branch A saw image and segmentation, branch B the segmentation alone (:class:`~scripts.networks.siamese.SiameseAR`).

    Args:
        lambda_ar: weight of the CAM term, >= 0.
        eps: ``eps`` of the SMAPE terms.

    Shapes:
        ``pred_a``, ``pred_b``, ``target`` ``(B, 3)`` (angles / scale), ``cam_a``, ``cam_b`` ``(B, 3, h, w)`` -> scalar.

    Raises:
        ValueError: on a bad ``lambda_ar`` or ``eps``; in ``forward``, on mismatched shapes.
    """

    def __init__(self, lambda_ar: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        if isinstance(lambda_ar, bool) or not isinstance(lambda_ar, int | float) or not lambda_ar >= 0:
            raise ValueError(f"lambda_ar must be a number >= 0, got {lambda_ar!r}.")
        self.lambda_ar = float(lambda_ar)
        self.smape = SMAPELoss(eps=eps)
        self.attention = AttentionLoss()

    def terms(
        self,
        pred_a: torch.Tensor,
        pred_b: torch.Tensor,
        cam_a: torch.Tensor,
        cam_b: torch.Tensor,
        target: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The three unweighted terms, for logging: ``smape_a``, ``smape_b`` and ``attention``."""
        return {
            "smape_a": self.smape(pred_a, target),
            "smape_b": self.smape(pred_b, target),
            "attention": self.attention(cam_a, cam_b),
        }

    def forward(
        self,
        pred_a: torch.Tensor,
        pred_b: torch.Tensor,
        cam_a: torch.Tensor,
        cam_b: torch.Tensor,
        target: torch.Tensor,
    ) -> torch.Tensor:
        """The weighted total of :meth:`terms`."""
        return self.total(self.terms(pred_a, pred_b, cam_a, cam_b, target))

    def total(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """``smape_a + smape_b + lambda_ar * attention`` of the terms :meth:`terms` returned."""
        return terms["smape_a"] + terms["smape_b"] + self.lambda_ar * terms["attention"]
