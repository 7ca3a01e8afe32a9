# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""What the three predicted Cobb angles mean, and a descriptive curve type derived from them alone.

The angles follow the columns of the AASCE ``angles.csv`` and the official rule that produced them
(``scripts.data.cobb``):

- ``angle1``: the largest Cobb angle of the spine (the main curve), whichever region it lies in.
- ``angle2``: the Cobb angle the rule measures above the main curve (between the upper end vertebra of the main curve
  and the vertebra above it that is most tilted against it, or T1).
- ``angle3``: the Cobb angle the rule measures below the main curve (towards L5). For an S-shaped spine whose two end
  vertebrae lie low in the image, the rule takes angle3 above angle2 instead, so "below" is the usual, not the only,
  case.

The curve type is **not** a King or Lenke classification (those need end vertebrae, lateral and bending views, which
angles alone do not give). It counts the curves the three angles report at or above ``curve_threshold`` degrees (10
degrees is the usual threshold for scoliosis) and grades the main curve:

- ``curve_type``: ``"none"`` when angle1 < threshold, else ``"single"`` (only angle1 reaches it), ``"double"`` (angle1
  and one of angle2/angle3) or ``"triple"`` (all three).
- ``severity``: of angle1 against ``severity_thresholds`` (default 10, 25, 40 degrees): ``"none"``, ``"mild"``,
  ``"moderate"``, ``"severe"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ANGLE_MEANINGS", "CURVE_TYPE_DEFINITION", "SEVERITY_NAMES", "describe_curve"]

ANGLE_MEANINGS: dict[str, str] = {
    "angle1": "largest Cobb angle of the spine (main curve), as column 1 of the AASCE angles.csv",
    "angle2": "Cobb angle the AASCE rule measures above the main curve (towards T1)",
    "angle3": "Cobb angle the AASCE rule measures below the main curve (towards L5; above it for some S-curves)",
}

CURVE_TYPE_DEFINITION = (
    "number of the three angles at or above curve_threshold degrees: none (angle1 below it), single, double or "
    "triple; descriptive only, not a King or Lenke class"
)

SEVERITY_NAMES: tuple[str, str, str, str] = ("none", "mild", "moderate", "severe")


def describe_curve(
    angles: Sequence[float], curve_threshold: float = 10.0, severity_thresholds: Sequence[float] = (10.0, 25.0, 40.0)
) -> dict[str, str | int]:
    """The curve type and the severity of the main curve, from the three angles.

    Args:
        angles: angle1, angle2, angle3 in degrees.
        curve_threshold: a curve counts from this many degrees.
        severity_thresholds: three increasing bounds (mild, moderate, severe) for angle1.

    Returns:
        ``{"curve_type": ..., "num_curves": ..., "severity": ...}``.

    Raises:
        ValueError: on anything but three finite angles, or bounds that are not three increasing numbers.
    """
    values = np.asarray(angles, dtype=np.float64).reshape(-1)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise ValueError(f"angles must be three finite numbers (angle1..3), got {list(angles)!r}.")
    bounds = [float(v) for v in severity_thresholds]
    if len(bounds) != 3 or not bounds[0] < bounds[1] < bounds[2]:
        raise ValueError(f"severity_thresholds must be three increasing numbers, got {list(severity_thresholds)!r}.")
    if values[0] < curve_threshold:
        curve_type, count = "none", 0
    else:
        count = 1 + int(np.sum(values[1:] >= curve_threshold))
        curve_type = {1: "single", 2: "double", 3: "triple"}[count]
    severity = SEVERITY_NAMES[int(np.searchsorted(bounds, values[0], side="right"))]
    return {"curve_type": curve_type, "num_curves": count, "severity": severity}
