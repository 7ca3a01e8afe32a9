# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The quality verdict as a MONAI postprocessing step (``configs/inference.yaml``'s ``postprocessing``).

The checks, their limits and the verdict are :mod:`scripts.inference.verdict`'s.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

from scripts.inference.verdict import merged_limits, quality_verdict, regressor_status

__all__ = ["QualityCheckd"]


class QualityCheckd(MapTransform):
    """Postprocessing step: adds ``quality`` (:func:`quality_verdict`) to one image's record.

    Reads ``image_original`` ``(1, H, W)``, ``mask`` ``(H, W)``, ``angles`` ``(3,)``, when the evaluator ran the
    mirrored image ``angles_flipped`` ``(3,)``, and, from a vertebra-level N_S, ``geometry`` and ``agreement``.

    Args:
        keys: the original-resolution image key.
        mask_key: the spine mask at the original size.
        limits: the checks' limits (``configs/inference.yaml``'s ``quality``).
        checkpoint: the served ``model.pt``: :func:`regressor_status` is read once, here (a stage-a-only checkpoint
            is refused before any image is read).
        quality_key: where the verdict goes.
    """

    def __init__(
        self,
        keys: KeysCollection = "image_original",
        mask_key: str = "mask",
        limits: Mapping[str, Any] | None = None,
        checkpoint: str | Path | None = None,
        quality_key: str = "quality",
    ) -> None:
        super().__init__(keys)
        self.limits = merged_limits(limits)
        self.mask_key = mask_key
        self.quality_key = quality_key
        self.regressor = regressor_status(checkpoint) if checkpoint else "unknown"

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = np.asarray(d[key].detach().cpu() if hasattr(d[key], "detach") else d[key], dtype=np.float64)
            d[self.quality_key] = quality_verdict(
                image.reshape(image.shape[-2:]),
                np.asarray(d[self.mask_key]),
                self.limits,
                angles=d.get("angles"),
                flipped_angles=d.get("angles_flipped"),
                regressor=self.regressor,
                geometry=d.get("geometry"),
                agreement=d.get("agreement"),
            )
        return d
