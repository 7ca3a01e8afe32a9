# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Scale Cobb angles to the range of a sigmoid head and back.

The regressor ends in a sigmoid, so its targets are ``angles / scale``. The scale is 180 by default rather than 90:
some labelled angles exceed 90 degrees (the AASCE training labels). The scaling is a fixed linear map, so :meth:`inverse` needs
no recorded state: it turns predictions back into degrees, and ``Compose.inverse`` of a pipeline that contains
:class:`ScaleAnglesd` brings the angles back too.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import InvertibleTransform, MapTransform

__all__ = ["ScaleAngles", "ScaleAnglesd"]


def _to_float(values: Any) -> Any:
    if isinstance(values, torch.Tensor):
        return values if values.dtype.is_floating_point else values.to(torch.float32)
    array = np.asarray(values)
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float32)


class ScaleAngles(InvertibleTransform):
    """Divide angles in degrees by ``scale``: ``(..., 3) -> (..., 3)``; :meth:`inverse` multiplies back.

    Args:
        scale: degrees that map to 1 (180 by default).

    Raises:
        ValueError: if ``scale`` is not a positive finite number.
    """

    def __init__(self, scale: float = 180.0) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}.")
        self.scale = float(scale)

    def __call__(self, angles: Any) -> Any:
        """Args:
            angles: degrees, numpy array or tensor of any shape (usually (3,) or (B, 3)).

        Returns:
            ``angles / scale`` in the same container (integers become float32).
        """
        return _to_float(angles) / self.scale

    def inverse(self, data: Any) -> Any:
        """Args:
            data: scaled angles (targets, or a sigmoid head's outputs).

        Returns:
            Degrees, ``data * scale``.
        """
        return _to_float(data) * self.scale


class ScaleAnglesd(MapTransform, InvertibleTransform):
    """Dictionary wrapper of :class:`ScaleAngles`.

    Args:
        keys: angle keys.
        scale: degrees that map to 1.
        allow_missing_keys: skip absent keys (inference data carry no angles).
    """

    def __init__(self, keys: KeysCollection = "angles", scale: float = 180.0, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.scaler = ScaleAngles(scale)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler(d[key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.scaler.inverse(d[key])
        return d
