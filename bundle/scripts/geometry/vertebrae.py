# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One vertebra's corners from its region in a label map.

A predicted vertebra is a ragged blob of pixels, not a quadrilateral. Its four corners are estimated in the frame of
the region's own axes, so that a tilted vertebra is measured along its endplates and not along the image rows:

1. ``u``: the principal axis of the pixel centres that lies closer to the horizontal (a vertebral body is wider than
   tall on an AP radiograph), pointing right; ``v`` perpendicular to it, pointing down.
2. The region's pixels in ``(a, b)`` coordinates along ``u`` and ``v``. The left and right sides are the extremes of
   ``a`` (half a pixel outwards: pixel centres lie half a pixel inside the edge).
3. The upper endplate: a straight line ``b = slope * a + offset`` fitted by least squares to the top edge (the smallest
   ``b`` of each one-pixel-wide column of ``a``), over the middle of the width only (``edge_fraction``), where ragged
   corners do not pull it; the lower endplate likewise from the largest ``b``.
4. The corners: TL and TR where the upper endplate meets the left and right sides, BL and BR for the lower one.

The tilt vector of the AASCE rule (right-side midpoint minus left-side midpoint) then follows the mean slope of the two
endplates, which is what a reader's endplate lines measure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["VERTEBRA_NAMES", "VertebraShape", "vertebra_shape"]

VERTEBRA_NAMES: tuple[str, ...] = tuple(f"T{i}" for i in range(1, 13)) + tuple(f"L{i}" for i in range(1, 6))


@dataclass(frozen=True)
class VertebraShape:
    """The measured shape of one vertebra region.

    Attributes:
        corners: (4, 2) points (x, y) in the label map's pixels, in the landmark order TL, TR, BL, BR.
        centroid: (2,) mean of the pixel centres (x, y).
        area: number of pixels.
        width: extent along the endplates, pixels.
        height: mean distance between the two endplate lines, pixels.
        tilt_deg: angle of the tilt vector against the image's x axis, degrees; positive when the right side is lower
            (image y grows downwards).
        components: number of 8-connected pieces of the region holding at least ``piece_fraction`` of its pixels
            (1 for a clean prediction; specks below that size are not counted).
    """

    corners: np.ndarray
    centroid: np.ndarray
    area: int
    width: float
    height: float
    tilt_deg: float
    components: int


def _axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``u`` (the principal axis nearer the horizontal, pointing right) and ``v`` (perpendicular, pointing down)."""
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    u = max(vectors.T, key=lambda vector: abs(vector[0]))
    u = u if u[0] > 0 else -u
    v = np.array([-u[1], u[0]])
    return u, (v if v[1] > 0 else -v)


def _edge_line(a: np.ndarray, b: np.ndarray, top: bool, edge_fraction: float) -> tuple[float, float]:
    """Least-squares line ``b = slope * a + offset`` through the top (or bottom) edge, middle of the width only."""
    columns = np.floor(a - a.min()).astype(int)
    keys = np.unique(columns)
    edge_a = np.array([a[columns == key].mean() for key in keys])
    edge_b = np.array([(b[columns == key].min() if top else b[columns == key].max()) for key in keys])
    centre, half = 0.5 * (a.min() + a.max()), 0.5 * edge_fraction * (a.max() - a.min())
    middle = np.abs(edge_a - centre) <= half
    if middle.sum() >= 2:
        edge_a, edge_b = edge_a[middle], edge_b[middle]
    if len(edge_a) < 2 or np.ptp(edge_a) == 0:
        return 0.0, float(edge_b.mean())
    slope, offset = np.polyfit(edge_a, edge_b, 1)
    return float(slope), float(offset)


def _count_pieces(region: np.ndarray, piece_fraction: float) -> int:
    pieces, count = ndimage.label(region, structure=np.ones((3, 3), dtype=int))
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    return int(np.sum(sizes >= piece_fraction * sizes.sum()))


def vertebra_shape(region: np.ndarray, edge_fraction: float = 0.6, piece_fraction: float = 0.1) -> VertebraShape | None:
    """Estimate the corners of one vertebra from its pixels.

    Args:
        region: (H, W) boolean mask of the vertebra (one label of a vertebra label map).
        edge_fraction: the middle part of the width the endplate lines are fitted on, in (0, 1].
        piece_fraction: a connected piece counts in ``components`` from this fraction of the region's pixels.

    Returns:
        The shape, or None when the region has fewer than 3 pixels (nothing to measure).

    Raises:
        ValueError: if ``region`` is not 2D or ``edge_fraction`` is outside (0, 1].
    """
    mask = np.asarray(region, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"region must be a 2D mask (H, W), got shape {mask.shape}.")
    if not 0 < edge_fraction <= 1:
        raise ValueError(f"edge_fraction must be in (0, 1], got {edge_fraction!r}.")
    rows, cols = np.nonzero(mask)
    if len(rows) < 3:
        return None
    points = np.stack([cols + 0.5, rows + 0.5], axis=1).astype(np.float64)
    centroid = points.mean(axis=0)
    u, v = _axes(points)
    a, b = (points - centroid) @ u, (points - centroid) @ v
    top_slope, top_offset = _edge_line(a, b, top=True, edge_fraction=edge_fraction)
    bottom_slope, bottom_offset = _edge_line(a, b, top=False, edge_fraction=edge_fraction)
    left, right = a.min() - 0.5, a.max() + 0.5

    def corner(along: float, slope: float, offset: float, outward: float) -> np.ndarray:
        return centroid + along * u + (slope * along + offset + outward) * v

    corners = np.stack(
        [
            corner(left, top_slope, top_offset, -0.5),
            corner(right, top_slope, top_offset, -0.5),
            corner(left, bottom_slope, bottom_offset, 0.5),
            corner(right, bottom_slope, bottom_offset, 0.5),
        ]
    )
    tilt = 0.5 * (corners[1] + corners[3]) - 0.5 * (corners[0] + corners[2])
    height = float(np.mean(np.linalg.norm(corners[2:] - corners[:2], axis=1)))
    return VertebraShape(
        corners=corners,
        centroid=centroid,
        area=len(rows),
        width=float(right - left),
        height=height,
        tilt_deg=float(np.degrees(np.arctan2(tilt[1], tilt[0]))),
        components=_count_pieces(mask, piece_fraction),
    )
