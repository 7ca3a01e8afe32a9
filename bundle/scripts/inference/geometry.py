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
quality verdict (:mod:`scripts.inference.quality`) says why. A spine-mask N_S (K = 2) has no ``labels_network``; the
step then leaves the record alone.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection
from monai.transforms import MapTransform

from scripts.data.resize_pad import resize_pad_geometry
from scripts.geometry.spine import spine_geometry
from scripts.metrics.angles import ANGLE_NAMES

__all__ = ["SpineGeometryd", "angle_agreement", "geometry_record"]


def geometry_record(labels: np.ndarray, original_size: tuple[int, int], tilt: str = "centerline") -> dict[str, Any]:
    """The ``geometry`` of one image from its vertebra label map at the network's input size.

    Args:
        labels: ``(h, w)`` labels 0..17 (the argmax of N_S), at the network input after resize-and-pad.
        original_size: ``(H, W)`` of the radiograph the labels were predicted for.
        tilt: where the endplate directions come from (:func:`scripts.geometry.spine.spine_geometry`).

    Returns:
        The JSON-ready ``geometry`` (module docstring), points in original pixels rounded to 0.01.
    """
    label_map = np.asarray(labels)
    mapping = resize_pad_geometry(original_size, label_map.shape[-2:])
    result = spine_geometry(label_map, float(original_size[0]), to_original=mapping.to_original, tilt=tilt)
    angles = result["angles_deg"]
    blocking = [code for code in result["problems"] if not code.startswith("fragmented:")]
    return {
        "status": "measured" if angles is not None else "not_measured",
        "angles_deg": None if angles is None else {n: round(a, 4) for n, a in zip(ANGLE_NAMES, angles, strict=True)},
        "curves": result["curves"],
        "s_curve": result["s_curve"],
        "problems": result["problems"],
        "blocking_problems": blocking if angles is None else [],
        "vertebrae": [
            {
                "name": vertebra["name"],
                "tilt_deg": round(vertebra["tilt_deg"], 3),
                "corners": np.round(vertebra["corners"], 2).tolist(),
            }
            for vertebra in result["vertebrae"]
        ],
        "landmarks": None if result["landmarks"] is None else np.round(result["landmarks"], 2).tolist(),
    }


def angle_agreement(regressed: Any, geometry: Mapping[str, Any]) -> dict[str, Any] | None:
    """Regressed minus geometric angle per angle (degrees) and the largest absolute difference; None without
    geometric angles."""
    geometric = geometry.get("angles_deg")
    if geometric is None:
        return None
    values = np.asarray(regressed, dtype=np.float64).reshape(-1)
    differences = {name: round(float(values[i] - geometric[name]), 4) for i, name in enumerate(ANGLE_NAMES)}
    return {**differences, "max_abs_deg": round(max(abs(v) for v in differences.values()), 4)}


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
