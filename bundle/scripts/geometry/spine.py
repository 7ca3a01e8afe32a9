# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The spine's geometric Cobb angles: from a vertebra label map to the three angles, their end vertebrae and regions.

:func:`spine_geometry` measures each vertebra (:mod:`scripts.geometry.vertebrae`), checks the set before anything is
computed from it, and only then applies the official AASCE rule (:mod:`scripts.data.cobb`) to the estimated 68
landmarks. The checks, each a stable problem code:

- ``missing:<name>``: a vertebra with no region, or one smaller than ``min_area_fraction`` of the median vertebra area.
- ``merged:<name>``: a region taller than ``merged_height_ratio`` times the median vertebra height (two vertebrae under
  one label).
- ``fragmented:<name>``: a region in two or more sizeable pieces (part of another vertebra under this label).
- ``out_of_order:<name>``: a vertebra whose centroid is not below the one above it.

Missing, merged and out-of-order vertebrae stop the rule (the angles are then None: nothing is guessed); a fragmented
one is reported but measured. The rule needs all 17 vertebrae, as the AASCE landmarks have.

Two ways to the endplate directions (``tilt``): ``"shape"`` takes each vertebra's corners from its own region
(:func:`scripts.geometry.vertebrae.vertebra_shape`); ``"centerline"`` lays each vertebra's endplates perpendicular to
the spine's centre line at its centroid (a quadratic fitted to the centroids of it and its two neighbours on each side),
keeping the region's own width and height: a vertebra region a few pixels tall says little about its own tilt, while
the centroids of its neighbours still trace the curve.

Each curve of the rule is reported with its end vertebrae, its apex (the vertebra between them whose centroid lies
farthest from the line through the end vertebrae's centroids) and the apex's region (:data:`CURVE_REGIONS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from scripts.data.cobb import NUM_VERTEBRAE, cobb_details
from scripts.geometry.vertebrae import VERTEBRA_NAMES, VertebraShape, vertebra_shape

__all__ = ["CURVE_REGIONS", "TILT_SOURCES", "centerline_corners", "curve_region", "spine_geometry"]

TILT_SOURCES = ("shape", "centerline")
_CENTERLINE_REACH = 2  # neighbours on each side in the centre-line fit

# apex ranges, inclusive, by vertebra index (0 = T1): proximal thoracic T1-T5, main thoracic T6-T11,
# thoracolumbar/lumbar T12-L5 (the apex of a thoracolumbar curve is T12 or L1, of a lumbar curve L1-L4)
CURVE_REGIONS: tuple[tuple[str, int, int], ...] = (
    ("proximal thoracic", 0, 4),
    ("main thoracic", 5, 10),
    ("thoracolumbar/lumbar", 11, 16),
)


def curve_region(apex: int) -> str:
    """The region of a curve from the index of its apex vertebra (0 = T1 .. 16 = L5), :data:`CURVE_REGIONS`."""
    for name, first, last in CURVE_REGIONS:
        if first <= apex <= last:
            return name
    raise ValueError(f"apex must be a vertebra index 0..{NUM_VERTEBRAE - 1}, got {apex!r}.")


def _apex(centroids: np.ndarray, top: int, bottom: int) -> int:
    """The vertebra between ``top`` and ``bottom`` farthest from the line through their centroids."""
    if bottom - top < 2:
        return top
    start, end = centroids[top], centroids[bottom]
    direction = (end - start) / np.linalg.norm(end - start)
    offsets = centroids[top : bottom + 1] - start
    distance = np.abs(offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0])
    return top + int(np.argmax(distance))


def centerline_corners(shapes: list[VertebraShape]) -> np.ndarray:
    """Corners (17, 4, 2) TL, TR, BL, BR with each vertebra's endplates perpendicular to the centre line.

    The centre line near vertebra i is ``x = a + b y + c y^2`` fitted to the centroids of vertebrae i-2 .. i+2 (fewer
    at the ends); its slope ``dx/dy`` at the centroid gives the spine's direction, the endplates run across it. Each
    rectangle is centred on the region's centroid with the region's own width and height.

    Args:
        shapes: the 17 measured vertebrae, top to bottom.
    """
    centroids = np.array([shape.centroid for shape in shapes])
    corners = []
    for index, shape in enumerate(shapes):
        window = centroids[max(0, index - _CENTERLINE_REACH) : index + _CENTERLINE_REACH + 1]
        degree = min(2, len(window) - 1)
        coefficients = np.polyfit(window[:, 1], window[:, 0], degree)
        slope = float(np.polyval(np.polyder(coefficients), shape.centroid[1]))
        along = np.array([1.0, -slope]) / np.hypot(1.0, slope)  # the endplate direction, pointing right
        down = np.array([slope, 1.0]) / np.hypot(1.0, slope)  # the spine's direction, pointing down
        half_width, half_height = 0.5 * shape.width, 0.5 * shape.height
        corners.append(
            [
                shape.centroid + sx * half_width * along + sy * half_height * down
                for sy, sx in ((-1, -1), (-1, 1), (1, -1), (1, 1))
            ]
        )
    return np.asarray(corners)


def _check(shapes: list[VertebraShape | None], min_area_fraction: float, merged_height_ratio: float) -> list[str]:
    present = [shape for shape in shapes if shape is not None]
    if not present:
        return [f"missing:{name}" for name in VERTEBRA_NAMES]
    median_area = float(np.median([shape.area for shape in present]))
    median_height = float(np.median([shape.height for shape in present]))
    problems, previous_y = [], -np.inf
    for name, shape in zip(VERTEBRA_NAMES, shapes, strict=True):
        if shape is None or shape.area < min_area_fraction * median_area:
            problems.append(f"missing:{name}")
            continue
        if shape.height > merged_height_ratio * median_height:
            problems.append(f"merged:{name}")
        if shape.components > 1:
            problems.append(f"fragmented:{name}")
        if shape.centroid[1] <= previous_y:
            problems.append(f"out_of_order:{name}")
        previous_y = shape.centroid[1]
    return problems


def spine_geometry(
    labels: np.ndarray,
    image_height: float,
    to_original: Callable[[np.ndarray], np.ndarray] | None = None,
    min_area_fraction: float = 0.3,
    merged_height_ratio: float = 1.8,
    edge_fraction: float = 0.6,
    tilt: str = "shape",
) -> dict[str, Any]:
    """The geometric Cobb angles of one spine from its vertebra label map.

    Args:
        labels: (H, W) integer label map, 0 background and 1..17 the vertebrae T1..L5 (the argmax of a vertebra
            segmentation, or :func:`scripts.data.spine_mask.render_vertebra_labels`).
        image_height: height of the original image in pixels (the rule's S-curve test compares against it).
        to_original: maps (N, 2) points (x, y) of the label map to the original image (e.g.
            ``ResizePadGeometry.to_original``); None when the label map is at the original size.
        min_area_fraction: a region below this fraction of the median vertebra area counts as missing.
        merged_height_ratio: a region taller than this many median heights counts as two merged vertebrae.
        edge_fraction: middle part of each vertebra's width its endplate lines are fitted on.
        tilt: ``"shape"`` (each region's own corners) or ``"centerline"`` (endplates across the centre line through
            the centroids; module docstring). With ``"centerline"`` the corners of every vertebra need all 17.

    Returns:
        A JSON-ready dict: ``vertebrae`` (per found vertebra: ``name``, ``tilt_deg``, ``corners`` (4, 2) TL, TR, BL,
        BR in original pixels), ``problems`` (codes, module docstring), ``angles_deg`` (3 floats or None),
        ``curves`` (per angle: ``angle_deg``, ``upper_end``, ``lower_end``, ``apex``, ``region``; None with the angles),
        ``s_curve`` and ``landmarks`` ((68, 2) in original pixels, TL, TR, BL, BR per vertebra; None when a vertebra
        is missing).

    Raises:
        ValueError: if ``labels`` is not a 2D array, or on an unknown ``tilt``.
    """
    if tilt not in TILT_SOURCES:
        raise ValueError(f"tilt must be one of {TILT_SOURCES}, got {tilt!r}.")
    label_map = np.asarray(labels)
    if label_map.ndim != 2:
        raise ValueError(f"labels must be a 2D label map (H, W), got shape {label_map.shape}.")
    mapped = to_original if to_original is not None else (lambda points: points)
    shapes = [vertebra_shape(label_map == index + 1, edge_fraction) for index in range(NUM_VERTEBRAE)]
    problems = _check(shapes, min_area_fraction, merged_height_ratio)
    found = [shape for name, shape in zip(VERTEBRA_NAMES, shapes, strict=True) if f"missing:{name}" not in problems]
    if tilt == "centerline" and len(found) == NUM_VERTEBRAE:
        shapes = [
            replace(shape, corners=corners) for shape, corners in zip(found, centerline_corners(found), strict=True)
        ]
    vertebrae = []
    for name, shape in zip(VERTEBRA_NAMES, shapes, strict=True):
        if shape is None or f"missing:{name}" in problems:
            continue
        corners = np.asarray(mapped(shape.corners), dtype=np.float64)
        tilt = 0.5 * (corners[1] + corners[3]) - 0.5 * (corners[0] + corners[2])
        vertebrae.append(
            {"name": name, "tilt_deg": float(np.degrees(np.arctan2(tilt[1], tilt[0]))), "corners": corners.tolist()}
        )
    result: dict[str, Any] = {
        "vertebrae": vertebrae,
        "problems": problems,
        "angles_deg": None,
        "curves": None,
        "s_curve": None,
        "landmarks": None,
    }
    if len(vertebrae) == NUM_VERTEBRAE:
        result["landmarks"] = [point for vertebra in vertebrae for point in vertebra["corners"]]
    blocking = [code for code in problems if not code.startswith("fragmented:")]
    if blocking or result["landmarks"] is None:
        return result
    landmarks = np.asarray(result["landmarks"])
    details = cobb_details(landmarks, image_height)
    centroids = landmarks.reshape(NUM_VERTEBRAE, 4, 2).mean(axis=1)
    curves = []
    for angle, (top, bottom) in zip(details.angles, details.end_vertebrae, strict=True):
        apex = _apex(centroids, top, bottom)
        curves.append(
            {
                "angle_deg": float(angle),
                "upper_end": VERTEBRA_NAMES[top],
                "lower_end": VERTEBRA_NAMES[bottom],
                "apex": VERTEBRA_NAMES[apex],
                "region": curve_region(apex),
            }
        )
    result.update(angles_deg=[float(a) for a in details.angles], curves=curves, s_curve=details.s_curve)
    return result
