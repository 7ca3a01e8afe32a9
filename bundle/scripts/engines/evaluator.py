# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Validation of a Seg4Reg+ model as far as it is trained: spine mask, and the Cobb angles once N_R exists."""

from __future__ import annotations

from typing import Any

import torch
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.utils import CommonKeys as Keys
from torch.utils.data import DataLoader

from scripts.networks.seg4reg import Seg4RegPlus

__all__ = ["Seg4RegEvaluator"]


class Seg4RegEvaluator(SupervisedEvaluator):
    """A ``SupervisedEvaluator`` whose iteration runs the Seg4Reg+ inference path of the stage being validated.

    Each iteration's output holds ``image``, ``label`` (B, 1, H, W) and ``pred_seg`` (B, 1, H, W) (the spine masks:
    where the argmax is not background), ``angles`` (B, 3) and, with ``regress``, ``pred_angles`` (B, 3), both in
    degrees; when N_S labels each vertebra also ``labels`` and ``pred_labels`` (B, 1, H, W), the label maps 0..17.
    These are the output keys the metric handlers of :func:`scripts.metrics.registry.validation_metrics` read (the key
    metric's direction is there too).

    Args:
        device: where to run.
        val_data_loader: batches with ``image``, ``label`` and ``angles``.
        network: the Seg4Reg+ model (not wrapped in DistributedDataParallel: validation needs no gradients).
        use_gate: run the second, gated segmentation pass (from stage (c) on).
        regress: predict the angles (from stage (b) on; in stage (a) N_R is untrained).
        kwargs: passed to ``SupervisedEvaluator`` (handlers, key metric, AMP, ...).
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: DataLoader,
        network: Seg4RegPlus,
        use_gate: bool = False,
        regress: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(device=device, val_data_loader=val_data_loader, network=network, decollate=False, **kwargs)
        self.use_gate = use_gate
        self.regress = regress

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, torch.Tensor]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("the evaluator needs a batch for each iteration.")
        image = torch.as_tensor(batchdata[Keys.IMAGE]).to(engine.state.device, non_blocking=engine.non_blocking)
        engine.network.eval()
        with engine.mode(engine.network):
            if engine.amp:
                with torch.autocast("cuda", **engine.amp_kwargs):
                    parts = engine.network.forward_parts(image, use_gate=self.use_gate, regress=self.regress)
            else:
                parts = engine.network.forward_parts(image, use_gate=self.use_gate, regress=self.regress)
        pred_labels = parts["seg"].argmax(dim=1, keepdim=True).float()
        output: dict[str, Any] = {Keys.IMAGE: image, "pred_seg": (pred_labels > 0).float(), "cam": parts.get("cam")}
        vertebrae = parts["seg"].shape[1] > 2
        if vertebrae:
            output["pred_labels"] = pred_labels
        if Keys.LABEL in batchdata:
            label = torch.as_tensor(batchdata[Keys.LABEL]).to(engine.state.device)
            output[Keys.LABEL] = (label > 0).float()
            if vertebrae:
                output["labels"] = label
        if "angles" in batchdata:
            output["angles"] = torch.as_tensor(batchdata["angles"]).to(engine.state.device).float()
        if self.regress:
            output["pred_angles"] = parts["angles"].float()
        engine.state.output = output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return output
