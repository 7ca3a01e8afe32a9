# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The official AASCE 2019 Cobb angle rule, from 68 vertebra corner landmarks.

This is the rule that produced the challenge's ``angles.csv`` (bundle/docs/README.md, "Data"). It is implemented from its
description, step by step, and reproduces the released training angles within 0.01 degrees:

1. 34 endplate midpoints (mean of each left/right corner pair), top to bottom.
2. 17 tilt vectors: the midpoint of the right side (TR, BR) minus the midpoint of the left side (TL, BL).
3. ``A[i, j]``: arccos of the cosine between tilt vectors ``i`` and ``j``, the cosine rounded to 8 decimals and **not**
   clipped at 0, so angles above 90 degrees survive.
4. ``a1 = max A``; ``u`` the upper vertebra of that pair, ``l`` the vertebra that maximises ``A[u, :]``.
5. S-curve test on the midpoints (a sign change of ``d_i``, or a NaN, means S).
6. Not S: ``a2 = A[0, u]``, ``a3 = A[last, l]``.
7. S and the lower endplate midpoints of ``u`` and ``l`` lie, summed, above the image height:
   ``a2 = max A[u, :u+1]``, ``a3 = max A[l, l:]``.
8. Otherwise: ``k = argmax A[u, :u+1]``, ``a2 = A[u, k]``, ``a3 = max A[k, :k+1]``.

Ties resolve to the first index, as the reference implementation's ``max`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ANGLE_NAMES",
    "NUM_LANDMARKS",
    "NUM_VERTEBRAE",
    "CobbResult",
    "cobb_angles",
    "cobb_details",
    "tilt_vectors",
]

ANGLE_NAMES: tuple[str, str, str] = ("angle1", "angle2", "angle3")
"""Column names of a ``(B, 3)`` angle array; ``"angle1"`` is the largest angle of each spine."""

NUM_VERTEBRAE = 17
NUM_LANDMARKS = 4 * NUM_VERTEBRAE


@dataclass(frozen=True)
class CobbResult:
    """The three angles of one spine and how the rule reached them.

    Attributes:
        angles: (3,) degrees; column 0 is the largest angle of the spine.
        upper: index (0 = T1) of the upper vertebra of the largest angle.
        lower: index of its lower vertebra.
        s_curve: whether the S-curve test fired.
        branch: which step decided angles 2 and 3: ``"C"`` (step 6), ``"S-split"`` (step 7) or ``"S-upper"`` (step 8).
        end_vertebrae: for each of the three angles, the indices (top, bottom) of the two vertebrae whose tilt vectors
            make it: the end vertebrae of that curve (``(upper, lower)`` for the largest angle).
    """

    angles: np.ndarray
    upper: int
    lower: int
    s_curve: bool
    branch: str
    end_vertebrae: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]


def _as_landmarks(landmarks: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape ({NUM_LANDMARKS}, 2), got {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks contain NaN or infinite values.")
    return points


def tilt_vectors(landmarks: np.ndarray) -> np.ndarray:
    """Per-vertebra tilt vectors (right-side midpoint minus left-side midpoint).

    Args:
        landmarks: (68, 2) corner points (x, y), four per vertebra in the order TL, TR, BL, BR.

    Returns:
        (17, 2) vectors.
    """
    corners = _as_landmarks(landmarks).reshape(NUM_VERTEBRAE, 4, 2)
    left = (corners[:, 0] + corners[:, 2]) / 2
    right = (corners[:, 1] + corners[:, 3]) / 2
    return right - left


def _angle_matrix(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms == 0):
        bad = np.flatnonzero(norms == 0).tolist()
        raise ValueError(f"vertebrae {bad} have coincident left and right sides (zero-length tilt vector).")
    cosine = (vectors @ vectors.T) / np.outer(norms, norms)
    return np.degrees(np.arccos(np.round(cosine, 8)))


def _is_s_curve(midpoints: np.ndarray) -> bool:
    # The reference test compares sum(d d^T) with sum(|d d^T|): any product of opposite signs, or a NaN, makes them differ.
    x, y = midpoints[:, 0], midpoints[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (y[:-2] - y[-1]) / (y[0] - y[-1]) - (x[:-2] - x[-1]) / (x[0] - x[-1])
        products = np.outer(d, d)
        return bool(products.sum() != np.abs(products).sum())


def cobb_details(landmarks: np.ndarray, height: float) -> CobbResult:
    """Apply the official rule to one spine.

    Args:
        landmarks: (68, 2) corner points in original pixel coordinates.
        height: the image height in pixels (used by the S-curve split test).

    Returns:
        The angles in degrees with the vertebrae and branch that produced them.

    Raises:
        ValueError: when the landmarks have the wrong shape, are not finite, or a vertebra is degenerate.
    """
    points = _as_landmarks(landmarks)
    angle = _angle_matrix(tilt_vectors(points))
    midpoints = (points[0::2] + points[1::2]) / 2  # (34, 2): top and bottom endplate of each vertebra

    upper = int(np.argmax(angle.max(axis=0)))
    lower = int(np.argmax(angle[:, upper]))

    last = NUM_VERTEBRAE - 1
    if not _is_s_curve(midpoints):
        second, third, s_curve, branch = (0, upper), (lower, last), False, "C"
    elif midpoints[2 * upper + 1, 1] + midpoints[2 * lower + 1, 1] < height:
        second = (int(np.argmax(angle[upper, : upper + 1])), upper)
        third = (lower, lower + int(np.argmax(angle[lower, lower:])))
        s_curve, branch = True, "S-split"
    else:
        k = int(np.argmax(angle[upper, : upper + 1]))
        second, third, s_curve, branch = (k, upper), (int(np.argmax(angle[k, : k + 1])), k), True, "S-upper"
    pairs = tuple((min(pair), max(pair)) for pair in ((upper, lower), second, third))
    angles = np.array([angle[top, bottom] for top, bottom in pairs])
    return CobbResult(angles, upper, lower, s_curve, branch, pairs)


def cobb_angles(landmarks: np.ndarray, heights: float | np.ndarray) -> np.ndarray:
    """The three official Cobb angles of one spine or a batch.

    Args:
        landmarks: (68, 2) or (B, 68, 2) corner points (x, y) in original pixel coordinates.
        heights: the image height, a number or (B,) numbers.

    Returns:
        (3,) or (B, 3) angles in degrees, column 0 the largest.

    Raises:
        ValueError: on a wrong shape, a batch/height count mismatch, or degenerate landmarks (the message names the item).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim == 2:
        return cobb_details(points, float(np.asarray(heights).item())).angles
    if points.ndim != 3:
        raise ValueError(f"landmarks must have shape (68, 2) or (B, 68, 2), got {points.shape}.")
    sizes = np.broadcast_to(np.asarray(heights, dtype=np.float64), (points.shape[0],))
    out = np.empty((points.shape[0], 3))
    for index, (item, height) in enumerate(zip(points, sizes, strict=True)):
        try:
            out[index] = cobb_details(item, height).angles
        except ValueError as error:
            raise ValueError(f"item {index} of the batch: {error}") from error
    return out
