# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The ``geometry`` and ``agreement`` of one image's record, from a vertebra label map (numpy only).

:func:`geometry_record` measures the predicted vertebra label map (:func:`scripts.geometry.spine.spine_geometry`:
corners per vertebra, problems, the official AASCE rule on the estimated 68 landmarks) and maps every point back to
the original radiograph's pixels; :func:`angle_agreement` compares it with the regressed angles. The fields are
described in :mod:`scripts.inference.geometry`, the MONAI postprocessing step that adds them; the fast single-image
path (:mod:`scripts.inference.fast`) calls these functions directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from scripts.data.cobb import ANGLE_NAMES
from scripts.data.resize_geometry import resize_pad_geometry
from scripts.geometry.spine import spine_geometry

__all__ = ["angle_agreement", "geometry_record"]


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
