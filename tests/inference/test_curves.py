# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The curve type and severity written into each image's JSON follow their documented definition."""

from __future__ import annotations

import pytest

from scripts.inference.curves import ANGLE_MEANINGS, describe_curve
from scripts.metrics.angles import ANGLE_NAMES


@pytest.mark.parametrize(
    ("angles", "curve_type", "count", "severity"),
    [
        ((4.0, 2.0, 1.0), "none", 0, "none"),
        ((9.99, 12.0, 11.0), "none", 0, "none"),  # secondary angles do not count without a main curve
        ((10.0, 3.0, 9.9), "single", 1, "mild"),
        ((24.9, 10.0, 2.0), "double", 2, "mild"),
        ((25.0, 1.0, 14.0), "double", 2, "moderate"),
        ((40.0, 20.0, 30.0), "triple", 3, "severe"),
        ((156.4, 80.0, 90.0), "triple", 3, "severe"),
    ],
)
def test_curve_type_counts_angles_from_the_threshold(angles, curve_type, count, severity):
    assert describe_curve(angles) == {"curve_type": curve_type, "num_curves": count, "severity": severity}


def test_thresholds_are_configurable():
    assert (
        describe_curve((12.0, 6.0, 6.0), curve_threshold=5.0, severity_thresholds=(5, 10, 20))["curve_type"] == "triple"
    )
    assert describe_curve((12.0, 6.0, 6.0), severity_thresholds=(5, 10, 20))["severity"] == "moderate"


@pytest.mark.parametrize("angles", [(1.0, 2.0), (float("nan"), 1.0, 2.0)])
def test_bad_angles_are_refused(angles):
    with pytest.raises(ValueError, match="three finite numbers"):
        describe_curve(angles)


def test_bad_severity_bounds_are_refused():
    with pytest.raises(ValueError, match="three increasing"):
        describe_curve((10.0, 1.0, 1.0), severity_thresholds=(10, 5, 20))


def test_every_angle_has_a_meaning_and_angle1_is_the_largest_curve():
    assert tuple(ANGLE_MEANINGS) == ANGLE_NAMES
    assert "largest" in ANGLE_MEANINGS["angle1"]
