# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.spine_mask: filled quadrilaterals against masks drawn by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from scripts.data.resize_pad import ResizePad
from scripts.data.spine_mask import RenderSpineMask, RenderSpineMaskd, render_spine_mask


def _rectangles(boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """(68, 2) landmarks of 17 axis-aligned boxes (x0, y0, x1, y1), corners in the order TL, TR, BL, BR."""
    return np.array([corner for x0, y0, x1, y1 in boxes for corner in ((x0, y0), (x1, y0), (x0, y1), (x1, y1))])


def test_rectangles_match_a_hand_drawn_mask() -> None:
    # vertebra v spans rows 6v+1 .. 6v+4 and columns 3 .. 12: pixel centres (j + 0.5, i + 0.5) inside the box
    boxes = [(3.0, 6.0 * v + 1.0, 13.0, 6.0 * v + 5.0) for v in range(17)]
    boxes[5] = (2.3, 31.2, 9.7, 34.6)  # fractional corners: centres 2.5 .. 9.5 and 31.5 .. 34.5 are inside
    expected = np.zeros((104, 20), dtype=np.uint8)
    for v in range(17):
        expected[6 * v + 1 : 6 * v + 5, 3:13] = 1
    expected[31:35] = 0
    expected[31:35, 2:10] = 1
    mask = render_spine_mask(_rectangles(boxes), (104, 20))
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, expected)


def test_polygon_joins_corners_tl_tr_br_bl() -> None:
    # one vertebra as a tilted parallelogram; joining TL, TR, BL, BR instead would draw a bow tie of half the area
    boxes = [(0.0, 0.0, 0.0, 0.0)] * 17
    landmarks = _rectangles(boxes)
    landmarks[0:4] = [(10.0, 10.0), (50.0, 20.0), (10.0, 40.0), (50.0, 50.0)]  # TL, TR, BL, BR
    mask = render_spine_mask(landmarks, (64, 64))
    assert mask.sum() == pytest.approx(40 * 30, abs=40)  # area 1200; at most a boundary row of pixels off
    assert mask[25, 30] == 1 and mask[12, 45] == 0  # centre in, a point above the slanted top edge out


def test_parts_outside_the_image_are_cut_off() -> None:
    boxes = [(-5.0, -5.0, 4.0, 3.0)] + [(0.0, 0.0, 0.0, 0.0)] * 16
    mask = render_spine_mask(_rectangles(boxes), (10, 10))
    expected = np.zeros((10, 10), dtype=np.uint8)
    expected[:3, :4] = 1
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("shape", [(67, 2), (68, 3), (136,)])
def test_wrong_landmark_shape_is_named(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        render_spine_mask(np.zeros(shape), (8, 8))


def test_nan_landmarks_and_missing_size_are_rejected() -> None:
    landmarks = _rectangles([(0.0, 0.0, 1.0, 1.0)] * 17)
    landmarks[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render_spine_mask(landmarks, (8, 8))
    with pytest.raises(ValueError, match="spatial_size"):
        RenderSpineMask()(_rectangles([(0.0, 0.0, 1.0, 1.0)] * 17))


def test_array_transform_is_channel_first() -> None:
    landmarks = torch.as_tensor(_rectangles([(1.0, 1.0, 3.0, 2.0)] * 17))
    mask = RenderSpineMask((4, 5), dtype=torch.uint8)(landmarks)
    assert mask.shape == (1, 4, 5) and mask.dtype == torch.uint8
    assert mask.sum().item() == 2 and mask[0, 1, 1] == 1 and mask[0, 1, 2] == 1


def test_dictionary_version_takes_size_and_metadata_from_the_image() -> None:
    image = MetaTensor(torch.zeros(1, 12, 7), meta={"filename_or_obj": "a.jpg"})
    data = {"image": image, "landmarks": _rectangles([(1.0, 2.0, 6.0, 5.0)] * 17)}
    out = RenderSpineMaskd(keys="landmarks", mask_keys="label", ref_key="image")(data)
    assert isinstance(out["label"], MetaTensor)
    assert out["label"].shape == (1, 12, 7) and out["label"].dtype == torch.float32
    assert out["label"].meta["filename_or_obj"] == "a.jpg"
    assert out["label"].sum().item() == 15  # rows 2..4, columns 1..5
    out = RenderSpineMaskd(ref_key=None, spatial_size=(6, 6))({"landmarks": data["landmarks"]})
    assert out["label"].shape == (1, 6, 6)


def test_mask_rendered_on_a_resized_image_inverts_as_a_mask() -> None:
    resizer = ResizePad((40, 20))
    image = resizer(MetaTensor(torch.rand(1, 100, 30)))  # records a bilinear resample of the image
    landmarks = _rectangles([(5.0, 2.0 * v + 2.0, 15.0, 2.0 * v + 3.0) for v in range(17)])
    mask = RenderSpineMaskd()({"image": image, "landmarks": landmarks})["label"]
    assert mask.applied_operations[-1]["extra_info"]["mode"] == "nearest"
    restored = resizer.inverse(mask)
    assert restored.shape == (1, 100, 30)
    assert set(torch.unique(restored).tolist()) == {0.0, 1.0}


def test_per_vertebra_labels_through_the_dictionary_transform() -> None:
    landmarks = _rectangles([(5.0, 2.0 * v + 2.0, 15.0, 2.0 * v + 3.0) for v in range(17)])
    out = RenderSpineMaskd(ref_key=None, spatial_size=(40, 20), per_vertebra=True)({"landmarks": landmarks})
    labels = out["label"][0]
    for vertebra in range(17):  # one row of pixel centres per rectangle, labelled T1 = 1 .. L5 = 17 from the top
        assert set(torch.unique(labels[2 * vertebra + 2]).tolist()) == {0.0, vertebra + 1.0}
    np.testing.assert_array_equal(labels.numpy() > 0, render_spine_mask(landmarks, (40, 20)) > 0)
