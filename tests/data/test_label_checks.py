# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import numpy as np

from scripts.data.aasce import load_datalist
from scripts.data.label_checks import check_labels


def _sound(phantom_root):
    record = load_datalist(phantom_root)[0]
    return record["landmarks"].astype(np.float64), record["angles"].astype(np.float64), record["size"][0]


def test_sound_labels_have_no_problem(phantom_root):
    assert check_labels(*_sound(phantom_root)) == []


def test_swapped_corners_are_reported(phantom_root):
    points, angles, height = _sound(phantom_root)
    points[[20, 21]] = points[[21, 20]]  # vertebra 6: TL and TR swapped
    problems = check_labels(points, angles, height)
    assert any(p.startswith("vertebra 6: corners out of order (left corners not left of right") for p in problems)


def test_vertebrae_out_of_order_are_reported(phantom_root):
    points, angles, height = _sound(phantom_root)
    points[60:64], points[64:68] = points[64:68].copy(), points[60:64].copy()
    assert "vertebrae 16 and 17 are out of top-to-bottom order" in check_labels(points, angles, height)


def test_disagreeing_and_implausible_angles_are_reported(phantom_root):
    points, angles, height = _sound(phantom_root)
    problems = check_labels(points, angles + np.array([0.0, 0.7, 0.0]), height)
    assert any("disagrees with the rule" in p for p in problems)
    assert check_labels(points, angles + np.array([0.0, 0.3, 0.0]), height) == []
    assert any("implausible angle 120.0" in p for p in check_labels(points, np.array([120.0, 1, 1]), height))
