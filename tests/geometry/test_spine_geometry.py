# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import numpy as np
import pytest
from spine_shapes import sine_spine

from scripts.data.cobb import cobb_details
from scripts.data.resize_pad import resize_pad_geometry
from scripts.data.spine_mask import render_spine_mask, render_vertebra_labels
from scripts.geometry.spine import curve_region, spine_geometry
from scripts.geometry.vertebrae import VERTEBRA_NAMES, vertebra_shape

HEIGHT, WIDTH = 1600, 800


def quadrilateral(
    tilt_deg: float, size: tuple[int, int] = (60, 80), half: tuple[float, float] = (24.0, 9.0)
) -> np.ndarray:
    """(4, 2) corners TL, TR, BL, BR of a rectangle centred in ``size`` (H, W), tilted clockwise by ``tilt_deg``."""
    theta = np.radians(tilt_deg)
    along, down = np.array([np.cos(theta), np.sin(theta)]), np.array([-np.sin(theta), np.cos(theta)])
    centre = np.array([size[1] / 2, size[0] / 2])
    return np.array(
        [centre + sx * half[0] * along + sy * half[1] * down for sy, sx in ((-1, -1), (-1, 1), (1, -1), (1, 1))]
    )


def one_vertebra_labels(corners: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    points = np.zeros((68, 2))
    points[:] = -1000.0  # the other 16 vertebrae lie outside the map
    points[:4] = corners
    return render_vertebra_labels(points, size) == 1


@pytest.mark.parametrize("tilt", [-20.0, -7.5, 0.0, 4.0, 15.0])
def test_tilt_of_a_rendered_quadrilateral(tilt: float) -> None:
    corners = quadrilateral(tilt)
    shape = vertebra_shape(one_vertebra_labels(corners, (60, 80)))
    assert shape is not None
    assert shape.tilt_deg == pytest.approx(tilt, abs=1.0)
    assert shape.components == 1
    # corners within about a pixel of the drawn ones, in the landmark order
    assert np.abs(shape.corners - corners).max() < 1.5


def test_ragged_corners_do_not_tilt_the_endplates() -> None:
    region = one_vertebra_labels(quadrilateral(0.0), (60, 80))
    rows, cols = np.nonzero(region)
    region[rows.min() : rows.min() + 4, cols.min() : cols.min() + 3] = False  # a bitten-off top-left corner
    region[rows.max() - 2 : rows.max() + 1, cols.max() - 2 : cols.max() + 1] = False
    shape = vertebra_shape(region)
    assert shape is not None and abs(shape.tilt_deg) < 1.0


def test_tiny_or_empty_region_gives_nothing() -> None:
    assert vertebra_shape(np.zeros((10, 10), dtype=bool)) is None
    with pytest.raises(ValueError, match="2D"):
        vertebra_shape(np.zeros((2, 10, 10), dtype=bool))


def test_labels_are_one_per_vertebra_and_their_union_is_the_spine_mask() -> None:
    landmarks = sine_spine(HEIGHT, WIDTH, amplitude=60.0, phase=0.3)
    labels = render_vertebra_labels(landmarks, (HEIGHT, WIDTH))
    assert set(np.unique(labels).tolist()) == set(range(18))
    np.testing.assert_array_equal(labels > 0, render_spine_mask(landmarks, (HEIGHT, WIDTH)) > 0)
    centroids_y = [np.nonzero(labels == v)[0].mean() for v in range(1, 18)]
    assert np.all(np.diff(centroids_y) > 0)  # label 1 (T1) on top


@pytest.mark.parametrize("amplitude, phase, cycles", [(80.0, 0.0, 0.5), (60.0, 0.4, 1.0), (40.0, 1.2, 1.5)])
def test_geometric_angles_and_end_vertebrae_from_a_network_sized_label_map(amplitude, phase, cycles) -> None:
    landmarks = sine_spine(HEIGHT, WIDTH, amplitude=amplitude, phase=phase, cycles=cycles)
    truth = cobb_details(landmarks, HEIGHT)
    geometry = resize_pad_geometry((HEIGHT, WIDTH), (512, 256))
    labels = render_vertebra_labels(geometry.to_output(landmarks), (512, 256))
    result = spine_geometry(labels, HEIGHT, geometry.to_original)
    assert result["problems"] == []
    np.testing.assert_allclose(result["angles_deg"], truth.angles, atol=2.5)
    ends = [(curve["upper_end"], curve["lower_end"]) for curve in result["curves"]]
    levels = {name: index for index, name in enumerate(VERTEBRA_NAMES)}
    for (upper, lower), (true_upper, true_lower) in zip(ends, truth.end_vertebrae, strict=True):
        assert abs(levels[upper] - true_upper) <= 1 and abs(levels[lower] - true_lower) <= 1
    # the landmarks come back in original pixels, near the true corners
    error = np.linalg.norm(np.asarray(result["landmarks"]) - landmarks, axis=1)
    assert error.mean() < 6.0  # original pixels; one network pixel is 3.125 of them
    assert len(result["vertebrae"]) == 17
    for curve in result["curves"]:
        assert curve["region"] == curve_region(levels[curve["apex"]])


def test_missing_merged_and_out_of_order_vertebrae_stop_the_rule() -> None:
    landmarks = sine_spine(HEIGHT, WIDTH, amplitude=60.0, phase=0.3)
    labels = render_vertebra_labels(landmarks, (HEIGHT, WIDTH))
    missing = labels.copy()
    missing[missing == 7] = 0
    merged = labels.copy()
    merged[merged == 10] = 9  # T9 and T10 under one label: T10 missing, T9 twice as tall
    swapped = labels.copy()
    swapped[labels == 3], swapped[labels == 4] = 4, 3
    for label_map, expected in (
        (missing, {"missing:T7"}),
        (merged, {"missing:T10", "merged:T9"}),
        (swapped, {"out_of_order:T4"}),
    ):
        result = spine_geometry(label_map, HEIGHT)
        assert expected <= set(result["problems"]), result["problems"]
        assert result["angles_deg"] is None and result["curves"] is None
    assert spine_geometry(np.zeros((50, 20), dtype=np.uint8), 50)["problems"][0] == "missing:T1"


def test_a_fragmented_vertebra_is_reported_but_measured() -> None:
    landmarks = sine_spine(HEIGHT, WIDTH, amplitude=60.0, phase=0.3)
    labels = render_vertebra_labels(landmarks, (HEIGHT, WIDTH))
    rows, cols = np.nonzero(labels == 12)
    labels[rows.min() + 5 : rows.max() - 5, cols.max() + 100 : cols.max() + 130] = 12  # a sizeable piece beside it
    result = spine_geometry(labels, HEIGHT)
    assert result["problems"] == ["fragmented:T12"]
    assert result["angles_deg"] is not None


def test_end_vertebrae_of_the_rule() -> None:
    landmarks = sine_spine(HEIGHT, WIDTH, amplitude=60.0, phase=0.0, cycles=1.0)
    details = cobb_details(landmarks, HEIGHT)
    tilts = np.degrees(np.arctan2(*np.flip(np.diff(landmarks.reshape(17, 4, 2)[:, :2], axis=1)[:, 0], axis=1).T))
    for angle, (top, bottom) in zip(details.angles, details.end_vertebrae, strict=True):
        assert top <= bottom
        assert angle == pytest.approx(abs(tilts[top] - tilts[bottom]), abs=1e-6)


def test_curve_regions() -> None:
    assert [curve_region(i) for i in (0, 4, 5, 10, 11, 16)] == [
        "proximal thoracic",
        "proximal thoracic",
        "main thoracic",
        "main thoracic",
        "thoracolumbar/lumbar",
        "thoracolumbar/lumbar",
    ]
    with pytest.raises(ValueError, match="apex"):
        curve_region(17)
