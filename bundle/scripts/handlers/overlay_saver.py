# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Save one validation overlay picture per validation run, for people and for experiment tracking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from PIL import Image

from scripts.visualize.overlay import render_overlay

__all__ = ["ValidationOverlaySaver"]


def _numpy(value: torch.Tensor | None) -> np.ndarray | None:
    return None if value is None else value.detach().float().cpu().numpy()


class ValidationOverlaySaver:
    """Writes the first validation image of each run, with predicted and true mask, CAM and angles, to ``path``.

    Args:
        path: the PNG file (overwritten at each validation, so it always shows the latest model).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED(once=1), self)

    def __call__(self, engine: Engine) -> None:
        output = engine.state.output
        image = output["image"][0, 0]
        cam = output.get("cam")
        if cam is not None:
            cam = F.interpolate(cam[:1].mean(dim=1, keepdim=True).float(), size=image.shape, mode="bilinear")[0, 0]
        label = output.get("label")
        picture = render_overlay(
            _numpy(image),
            mask=_numpy(output["pred_seg"][0, 0]),
            cam=_numpy(cam),
            angles=_numpy(output["pred_angles"][0]) if "pred_angles" in output else None,
            true_mask=_numpy(label[0, 0]) if label is not None else None,
            true_angles=_numpy(output["angles"][0]) if "angles" in output else None,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture).save(self.path)
