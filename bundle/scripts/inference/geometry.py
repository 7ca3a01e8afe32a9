# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference step of a vertebra-level N_S: the geometric Cobb angles beside the regressed ones, and their agreement.

:class:`SpineGeometryd` measures the predicted vertebra label map (:func:`scripts.geometry.spine.spine_geometry`:
corners per vertebra, problems, the official AASCE rule on the estimated 68 landmarks) and maps every point back to
the original radiograph's pixels. It adds to the image's record:

- ``geometry``: ``angles_deg`` (``angle1`` .. ``angle3`` or None where the rule could not run), ``curves`` (per angle:
  the end vertebrae, the apex and its region), ``s_curve``, ``vertebrae`` (per vertebra found: name, tilt, four corners),
  ``landmarks`` ((68, 2) original pixels, or None), ``problems`` (missing / merged / fragmented / out-of-order
  vertebrae) and ``status``: ``measured``, or ``not_measured`` with the problems that stopped the rule.
- ``agreement``: the regressed minus the geometric angle per angle, in degrees, and ``max_abs_deg``; None where the
  geometry has no angles.

Nothing is guessed: where a vertebra is missing, merged or out of order, the geometric angles are None and the
quality verdict (:mod:`scripts.inference.verdict`) says why. A spine-mask N_S (K = 2) has no ``labels_network``; the
step then leaves the record alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

from scripts.geometry.record import angle_agreement, geometry_record

__all__ = ["SpineGeometryd"]


class SpineGeometryd(MapTransform):
    """Postprocessing step: ``geometry`` and ``agreement`` of one image (module docstring).

    Args:
        keys: the vertebra label map at the network's input size (``labels_network``, ``(h, w)``), which
            :class:`~scripts.inference.predictor.SplitPredictiond` writes for an 18-class N_S. Absent: nothing is done.
        image_key: the radiograph at its own size ``(1, H, W)`` (for the original size).
        angles_key: the regressed angles ``(3,)`` in degrees.
        geometry_key: where the geometry goes.
        agreement_key: where the agreement goes.
        tilt: ``"centerline"`` (default) or ``"shape"``, where the endplate directions come from
            (:func:`scripts.geometry.spine.spine_geometry`; docs/results.md compares them).
    """

    def __init__(
        self,
        keys: KeysCollection = "labels_network",
        image_key: str = "image_original",
        angles_key: str = "angles",
        geometry_key: str = "geometry",
        agreement_key: str = "agreement",
        tilt: str = "centerline",
    ) -> None:
        super().__init__(keys, allow_missing_keys=True)
        self.image_key = image_key
        self.angles_key = angles_key
        self.geometry_key = geometry_key
        self.agreement_key = agreement_key
        self.tilt = tilt

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            size = (int(d[self.image_key].shape[-2]), int(d[self.image_key].shape[-1]))
            geometry = geometry_record(np.asarray(d[key]), size, self.tilt)
            d[self.geometry_key] = geometry
            d[self.agreement_key] = angle_agreement(d[self.angles_key], geometry)
        return d
