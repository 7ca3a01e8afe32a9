# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Geometric sanity checks of one labelled spine: they report, they never fix.

About 30 AASCE training images carry label errors (swapped corners, vertebrae out of order, angles above 90 degrees);
``scripts/check_dataset.py`` lists them by file name with these checks.
"""

from __future__ import annotations

import numpy as np

from scripts.data.cobb import NUM_VERTEBRAE, cobb_angles

__all__ = ["ANGLE_TOLERANCE_DEG", "PLAUSIBLE_MAX_DEG", "check_labels"]

ANGLE_TOLERANCE_DEG = 0.5  # angles.csv may differ from the rule by this much before it is reported
PLAUSIBLE_MAX_DEG = 90.0  # a Cobb angle above this is almost certainly a labelling error


def check_labels(landmarks: np.ndarray, angles: np.ndarray, height: float) -> list[str]:
    """Every problem of one image's labels, as short sentences.

    Args:
        landmarks: (68, 2) corner points (x, y) in pixels, four per vertebra: TL, TR, BL, BR.
        angles: (3,) released angles in degrees.
        height: the image height in pixels.

    Returns:
        The problems found (empty when the labels look sound).
    """
    problems = []
    corners = np.asarray(landmarks, dtype=np.float64).reshape(NUM_VERTEBRAE, 4, 2)
    tl, tr, bl, br = corners[:, 0], corners[:, 1], corners[:, 2], corners[:, 3]
    for vertebra in range(NUM_VERTEBRAE):
        wrong = []
        if tl[vertebra, 0] >= tr[vertebra, 0] or bl[vertebra, 0] >= br[vertebra, 0]:
            wrong.append("left corners not left of right corners")
        if tl[vertebra, 1] >= bl[vertebra, 1] or tr[vertebra, 1] >= br[vertebra, 1]:
            wrong.append("top corners not above bottom corners")
        if wrong:
            problems.append(f"vertebra {vertebra + 1}: corners out of order ({'; '.join(wrong)})")

    centres = corners.mean(axis=1)[:, 1]
    for vertebra in np.flatnonzero(np.diff(centres) <= 0):
        problems.append(f"vertebrae {vertebra + 1} and {vertebra + 2} are out of top-to-bottom order")

    try:
        rule = cobb_angles(landmarks, height)
    except ValueError as error:
        problems.append(f"the Cobb rule cannot be applied: {error}")
        return problems
    released = np.asarray(angles, dtype=np.float64)
    difference = np.abs(rule - released)
    if difference.max() > ANGLE_TOLERANCE_DEG:
        problems.append(
            f"angles.csv {np.round(released, 2).tolist()} disagrees with the rule {np.round(rule, 2).tolist()} "
            f"(largest difference {difference.max():.2f} deg)"
        )
    if released.max() > PLAUSIBLE_MAX_DEG:
        problems.append(f"implausible angle {released.max():.1f} deg (above {PLAUSIBLE_MAX_DEG:.0f})")
    if released[0] < released[1:].max():
        problems.append("angle 1 is not the largest of the three")
    return problems
