# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The quality checks: a verdict on every prediction, ``ok``, or ``review`` with the reasons, so no answer is trusted
blindly. Numpy only, shared by the MONAI postprocessing step (:class:`scripts.inference.quality.QualityCheckd`) and the
fast single-image path (:mod:`scripts.inference.fast`).

The checks look at what the model was given and what it answered, against ranges measured on the AASCE training
radiographs and their true spine masks (``scripts/quality_thresholds.py``; the values live in ``configs/inference.yaml``
under ``quality``). Each failed check adds a reason ``{"check": <code>, "value": <measured>, "limit": <range or bound>}``:

- ``image_landscape``: height / width below ``min_aspect`` (AP spine radiographs are portrait: a turned image).
- ``image_blank``: intensity standard deviation below ``min_image_std`` (an empty, black or white image).
- ``image_saturated``: fraction of pixels at full white above ``max_white_fraction``.
- ``image_texture``: :func:`image_roughness` above ``max_roughness``: noise, text or a photograph, not the smooth
  shading of a radiograph.
- ``mask_area``: spine mask area / image area outside ``mask_area``.
- ``mask_extent``: rows from the mask's first to its last row / image height outside ``mask_extent``.
- ``mask_width``: median width of the mask's rows / image width outside ``mask_width``.
- ``mask_gap``: the largest run of empty rows inside the mask / its extent above ``max_mask_gap`` (a spine in pieces).
- ``flip_disagreement``: the largest difference, in degrees, between the angles of the image and of its mirror image
  above ``max_flip_difference_deg`` (Cobb angles do not change under a horizontal flip; a model that answers
  differently is guessing). Measured when the evaluator runs the mirrored image (``quality_flip_check``).
- ``geometry_disagreement``: a vertebra-level N_S measured the geometric Cobb angles (:mod:`scripts.inference.geometry`)
  and the largest difference from the regressed angles is above ``max_geometry_difference_deg``: two independent
  answers that disagree.
- ``vertebra_problems``: a vertebra-level N_S could not measure the geometry: a vertebra missing, two merged or out of
  order (``value`` counts them, ``problems`` names them).
- ``regressor_training_unknown``: the checkpoint has no training record beside it, so nothing says its regressor N_R
  was trained. A checkpoint whose record says it was not (only stage a ran) is refused outright
  (:func:`regressor_status`).

An empty mask fails ``mask_area`` and skips the other mask checks (they would measure nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_LIMITS",
    "UntrainedRegressorError",
    "image_reasons",
    "image_roughness",
    "mask_reasons",
    "mask_statistics",
    "merged_limits",
    "quality_verdict",
    "regressor_status",
]

DEFAULT_LIMITS: dict[str, Any] = {
    "min_aspect": 1.297,
    "min_image_std": 0.064,
    "max_white_fraction": 0.05,
    "max_roughness": 0.3851,
    "mask_area": [0.0467, 0.3654],
    "mask_extent": [0.502, 1.0],
    "mask_width": [0.0704, 0.4436],
    "max_mask_gap": 0.0764,
    "max_flip_difference_deg": 15.6,
    "max_geometry_difference_deg": 42.2,
}
"""The measured limits (docs/quality.md), for a caller without a config; ``configs/inference.yaml`` repeats them."""

REGRESSOR_STAGES = frozenset("bcde")  # stage b trains N_R; c, d and e start from its model


class UntrainedRegressorError(ValueError):
    """The checkpoint's own record says its regressor N_R never trained: its angles would mean nothing."""


def regressor_status(checkpoint: str | Path) -> str:
    """Whether the checkpoint's regressor N_R was trained, from the records training leaves beside ``model.pt``.

    The pipeline's ``results.json`` lists the stages that ran (the final ``models/`` folder); a stage folder's
    ``done.json`` names its stage. N_R trains in stage b, and stages c-e start from b's model.

    Args:
        checkpoint: the ``model.pt`` to be served.

    Returns:
        ``"trained"``, or ``"unknown"`` when there is no record (a checkpoint from elsewhere).

    Raises:
        UntrainedRegressorError: naming the checkpoint and the record, when the record shows only stage a.
    """
    folder = Path(checkpoint).expanduser().parent
    for name in ("results.json", "done.json"):
        record_path = folder / name
        if not record_path.is_file():
            continue
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        stages = set(record) if name == "results.json" else {record.get("stage")}
        if stages & REGRESSOR_STAGES:
            return "trained"
        raise UntrainedRegressorError(
            f"{checkpoint}: its regressor N_R was never trained (stages {sorted(map(str, stages))} in {record_path}): "
            "its angles would mean nothing; serve a model of stage b or later (the pipeline's models/model.pt)."
        )
    return "unknown"


def _reason(check: str, value: float, limit: Any) -> dict[str, Any]:
    return {"check": check, "value": round(float(value), 4), "limit": limit}


def _outside(check: str, value: float, bounds: Sequence[float]) -> list[dict[str, Any]]:
    low, high = (float(b) for b in bounds)
    return [] if low <= value <= high else [_reason(check, value, [low, high])]


def image_roughness(image: np.ndarray) -> float:
    """Mean absolute difference of horizontally neighbouring pixels over the intensity spread, on the image reduced
    to about 256 rows by striding (so that the figure does not depend on the resolution); 0 for a flat image.

    A radiograph's shading is smooth (neighbours differ little against the spread); noise is not.
    """
    gray = np.asarray(image, dtype=np.float64)
    step = max(1, gray.shape[0] // 256)
    small = gray[::step, ::step]
    spread = float(small.std())
    if spread == 0 or small.shape[1] < 2:
        return 0.0
    return float(np.mean(np.abs(np.diff(small, axis=1))) / spread)


def image_reasons(image: np.ndarray, limits: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The image checks of one radiograph ``(H, W)`` in [0, 1] (module docstring)."""
    height, width = image.shape
    reasons = []
    if height / width < limits["min_aspect"]:
        reasons.append(_reason("image_landscape", height / width, limits["min_aspect"]))
    spread = float(image.std())
    if spread < limits["min_image_std"]:
        reasons.append(_reason("image_blank", spread, limits["min_image_std"]))
    roughness = image_roughness(image)
    if roughness > limits["max_roughness"]:
        reasons.append(_reason("image_texture", roughness, limits["max_roughness"]))
    white = float(np.mean(image >= 0.99))
    if white > limits["max_white_fraction"]:
        reasons.append(_reason("image_saturated", white, limits["max_white_fraction"]))
    return reasons


def mask_statistics(mask: np.ndarray) -> dict[str, float]:
    """Shape statistics of a spine mask ``(H, W)``: area, extent, width (fractions of the image) and largest gap.

    Returns:
        ``area`` (mask pixels / image pixels), ``extent`` (first to last mask row / H), ``width`` (median pixels per
        mask row / W) and ``gap`` (longest run of empty rows between the first and last mask row / the extent); all 0
        for an empty mask.
    """
    spine = np.asarray(mask) > 0
    height, width = spine.shape
    per_row = spine.sum(axis=1)
    rows = np.flatnonzero(per_row)
    if len(rows) == 0:
        return {"area": 0.0, "extent": 0.0, "width": 0.0, "gap": 0.0}
    extent = rows[-1] - rows[0] + 1
    gap = int(np.max(np.diff(rows)) - 1) if len(rows) > 1 else 0
    return {
        "area": float(spine.mean()),
        "extent": float(extent / height),
        "width": float(np.median(per_row[rows]) / width),
        "gap": float(gap / extent),
    }


def mask_reasons(mask: np.ndarray, limits: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The mask checks of one spine mask ``(H, W)`` (module docstring)."""
    stats = mask_statistics(mask)
    reasons = _outside("mask_area", stats["area"], limits["mask_area"])
    if stats["area"] == 0:
        return reasons
    reasons += _outside("mask_extent", stats["extent"], limits["mask_extent"])
    reasons += _outside("mask_width", stats["width"], limits["mask_width"])
    if stats["gap"] > limits["max_mask_gap"]:
        reasons.append(_reason("mask_gap", stats["gap"], limits["max_mask_gap"]))
    return reasons


def merged_limits(limits: Mapping[str, Any] | None) -> dict[str, Any]:
    """The limits of every check: ``limits`` over :data:`DEFAULT_LIMITS`.

    Raises:
        ValueError: naming the keys of ``limits`` that are not checks (a typo would otherwise be ignored silently).
    """
    unknown = sorted(set(limits or {}) - set(DEFAULT_LIMITS))
    if unknown:
        raise ValueError(f"quality limits {unknown} are not checks; known: {sorted(DEFAULT_LIMITS)}.")
    return {**DEFAULT_LIMITS, **(limits or {})}


def quality_verdict(
    image: np.ndarray,
    mask: np.ndarray,
    limits: Mapping[str, Any] | None = None,
    angles: Sequence[float] | None = None,
    flipped_angles: Sequence[float] | None = None,
    regressor: str = "trained",
    geometry: Mapping[str, Any] | None = None,
    agreement: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The verdict of one prediction.

    Args:
        image: the radiograph ``(H, W)`` in [0, 1], at its own size.
        mask: the predicted spine mask ``(H, W)`` at the same size.
        limits: the checks' limits (:data:`DEFAULT_LIMITS` fills any not given).
        angles: the predicted angles (degrees); with ``flipped_angles`` (the mirrored image's), the flip check runs.
        flipped_angles: the angles predicted for the mirrored image, or None when it was not run.
        regressor: :func:`regressor_status` of the checkpoint.
        geometry: the ``geometry`` of a vertebra-level N_S (:mod:`scripts.inference.geometry`), or None.
        agreement: its ``agreement`` with the regressed angles, or None.

    Returns:
        ``{"verdict": "ok" | "review", "reasons": [...], "flip_difference_deg": float | None}``.
    """
    merged = {**DEFAULT_LIMITS, **(limits or {})}
    gray = np.asarray(image, dtype=np.float64).reshape(np.shape(image)[-2:])
    reasons = image_reasons(gray, merged) + mask_reasons(np.asarray(mask).reshape(gray.shape), merged)
    difference = None
    if angles is not None and flipped_angles is not None:
        difference = float(np.max(np.abs(np.asarray(angles, float) - np.asarray(flipped_angles, float))))
        if difference > merged["max_flip_difference_deg"]:
            reasons.append(_reason("flip_disagreement", difference, merged["max_flip_difference_deg"]))
    if geometry is not None and geometry.get("status") != "measured":
        blocking = list(geometry.get("blocking_problems") or geometry.get("problems") or [])
        reasons.append({"check": "vertebra_problems", "value": len(blocking), "limit": 0, "problems": blocking})
    if agreement is not None and agreement["max_abs_deg"] > merged["max_geometry_difference_deg"]:
        reasons.append(
            _reason("geometry_disagreement", agreement["max_abs_deg"], merged["max_geometry_difference_deg"])
        )
    if regressor != "trained":
        reasons.append({"check": "regressor_training_unknown", "value": None, "limit": None})
    return {
        "verdict": "review" if reasons else "ok",
        "reasons": reasons,
        "flip_difference_deg": None if difference is None else round(difference, 4),
    }
