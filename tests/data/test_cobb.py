# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.io
from PIL import Image

from scripts.data.cobb import cobb_angles, cobb_details, tilt_vectors

HEIGHT = 1000.0


def spine(
    tilts_deg: np.ndarray, centres_x: np.ndarray | None = None, width: float = 40.0, gap: float = 50.0
) -> np.ndarray:
    """(68, 2) landmarks of 17 rectangles stacked down the image, vertebra v tilted by tilts_deg[v] (clockwise, y down)."""
    tilts = np.radians(np.asarray(tilts_deg, dtype=np.float64))
    xs = np.full(17, 200.0) if centres_x is None else np.asarray(centres_x, dtype=np.float64)
    points = []
    for v in range(17):
        centre = np.array([xs[v], 80.0 + gap * v])
        along = np.array([np.cos(tilts[v]), np.sin(tilts[v])])  # endplate direction
        down = np.array([-np.sin(tilts[v]), np.cos(tilts[v])])
        half_w, half_h = width / 2, 15.0
        points += [
            centre - half_w * along - half_h * down,  # TL
            centre + half_w * along - half_h * down,  # TR
            centre - half_w * along + half_h * down,  # BL
            centre + half_w * along + half_h * down,  # BR
        ]
    return np.array(points)


def rotate(points: np.ndarray, degrees: float, centre: tuple[float, float] = (200.0, 500.0)) -> np.ndarray:
    theta = np.radians(degrees)
    matrix = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return (points - centre) @ matrix.T + centre


C_TILTS = np.array([0, 3, 6, 10, 14, 18, 20, 18, 12, 5, -2, -8, -12, -14, -12, -8, -4], dtype=float)
S_TILTS = 20 * np.sin(np.linspace(0, 2 * np.pi, 17))


def test_straight_spine_gives_zero():
    np.testing.assert_allclose(cobb_angles(spine(np.zeros(17)), HEIGHT), [0, 0, 0], atol=1e-6)


def test_one_tilted_vertebra_gives_its_tilt():
    tilts = np.zeros(17)
    tilts[8] = 23.0
    angles = cobb_angles(spine(tilts), HEIGHT)
    assert angles[0] == pytest.approx(23.0, abs=1e-5)


def test_largest_angle_is_between_extreme_tilts():
    result = cobb_details(spine(C_TILTS), HEIGHT)
    assert result.angles[0] == pytest.approx(20 - (-14), abs=1e-5)
    assert (result.upper, result.lower) == (6, 13)


def test_s_curve_is_detected_and_c_curve_is_not():
    centre_s = 200 + 60 * np.sin(np.linspace(0, 2 * np.pi, 17))
    assert cobb_details(spine(S_TILTS, centre_s), HEIGHT).s_curve
    # the ends drift left while the curve bulges right: every midpoint lies on one side of the chord
    centre_c = 200 + 60 * np.sin(np.linspace(0, np.pi, 17)) + np.linspace(0, -40, 17)
    result = cobb_details(spine(C_TILTS, centre_c), HEIGHT)
    assert not result.s_curve
    # not S: angle 2 pairs the first vertebra with the upper end vertebra, angle 3 the last with the lower one
    assert result.angles[1] == pytest.approx(20.0, abs=1e-5)
    assert result.angles[2] == pytest.approx(14 - 4, abs=1e-5)


def test_angles_above_90_are_not_clipped():
    tilts = np.zeros(17)
    tilts[4] = 120.0
    assert cobb_angles(spine(tilts), HEIGHT)[0] == pytest.approx(120.0, abs=1e-5)


@pytest.mark.parametrize("tilts", [C_TILTS, S_TILTS])
def test_invariant_to_flip_scale_and_translation(tilts):
    centres = 200 + 50 * np.sin(np.linspace(0, 2 * np.pi, 17))
    points = spine(tilts, centres)
    reference = cobb_angles(points, HEIGHT)
    flipped = points.copy()
    flipped[:, 0] = 400 - flipped[:, 0]
    np.testing.assert_allclose(cobb_angles(flipped, HEIGHT), reference, atol=1e-4)
    for scale in (0.5, 1.7):
        np.testing.assert_allclose(cobb_angles(points * scale, HEIGHT * scale), reference, atol=1e-4)
    np.testing.assert_allclose(cobb_angles(points + np.array([35.0, 0.0]), HEIGHT), reference, atol=1e-4)


@pytest.mark.parametrize("degrees", [-45, -10, 7, 30])
def test_largest_angle_invariant_to_rotation(degrees):
    points = spine(S_TILTS, 200 + 50 * np.sin(np.linspace(0, 2 * np.pi, 17)))
    assert cobb_angles(rotate(points, degrees), HEIGHT)[0] == pytest.approx(cobb_angles(points, HEIGHT)[0], abs=1e-4)


def test_small_rotation_keeps_c_curve_angles():
    points = spine(C_TILTS, 200 + 60 * np.sin(np.linspace(0, np.pi, 17)) + np.linspace(0, -40, 17))
    assert not cobb_details(points, HEIGHT).s_curve
    np.testing.assert_allclose(cobb_angles(rotate(points, 5), HEIGHT), cobb_angles(points, HEIGHT), atol=1e-4)


def test_batched_matches_single():
    batch = np.stack([spine(C_TILTS), spine(S_TILTS), spine(np.zeros(17))])
    out = cobb_angles(batch, [HEIGHT, HEIGHT, HEIGHT])
    assert out.shape == (3, 3)
    for item, row in zip(batch, out, strict=True):
        np.testing.assert_allclose(row, cobb_angles(item, HEIGHT))


def test_tilt_vectors_point_right():
    vectors = tilt_vectors(spine(np.zeros(17)))
    assert vectors.shape == (17, 2)
    np.testing.assert_allclose(vectors, np.tile([40.0, 0.0], (17, 1)), atol=1e-9)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        cobb_angles(np.zeros((60, 2)), HEIGHT)
    points = spine(np.zeros(17))
    points[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cobb_angles(points, HEIGHT)
    degenerate = spine(np.zeros(17))
    degenerate[8:12] = degenerate[8]
    with pytest.raises(ValueError, match=r"item 1 .*vertebrae \[2\]"):
        cobb_angles(np.stack([spine(np.zeros(17)), degenerate]), HEIGHT)


def test_reproduces_released_angles_on_every_training_image(aasce_root):
    labels = aasce_root / "labels" / "training"
    with (labels / "filenames.csv").open(newline="") as handle:
        names = [row[0] for row in csv.reader(handle) if row]
    released = np.loadtxt(labels / "angles.csv", delimiter=",")
    assert len(names) == len(released) == 481
    worst = 0.0
    for name, expected in zip(names, released, strict=True):
        points = scipy.io.loadmat(labels / f"{name}.mat")["p2"]
        with Image.open(aasce_root / "data" / "training" / name) as image:
            height = image.size[1]
        difference = np.abs(cobb_angles(points, height) - expected).max()
        assert difference < 0.01, f"{name}: rule differs from angles.csv by {difference:.4f} deg"
        worst = max(worst, difference)
    assert worst < 0.01
