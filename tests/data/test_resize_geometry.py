# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.resize_geometry: the numpy resampler is the torch one (warp_affine), without torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scripts.data.resize_geometry import resize_pad_geometry, warp_array
from scripts.data.resize_pad import warp_affine


def _rotation(degrees: float, centre: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(degrees)
    c, s = np.cos(angle), np.sin(angle)
    x, y = centre
    return np.array([[c, -s, x - c * x + s * y], [s, c, y - s * x - c * y], [0.0, 0.0, 1.0]])


CASES = {
    "resize-and-pad, strong shrink (block averaging)": (
        (1, 701, 243),
        resize_pad_geometry((701, 243), (256, 128)).matrix,
        (256, 128),
    ),
    "restore, enlarging": ((2, 256, 128), resize_pad_geometry((701, 243), (256, 128)).inverse, (701, 243)),
    "rotation and scale (no axis alignment)": (
        (1, 90, 60),
        _rotation(17.0, (30.0, 45.0)) @ np.diag([0.8, 0.8, 1.0]),
        (80, 50),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_the_numpy_resampler_matches_the_torch_one(case: str, mode: str) -> None:
    shape, matrix, size = CASES[case]
    image = np.random.default_rng(3).random(shape, dtype=np.float32)
    expected = warp_affine(torch.from_numpy(image), matrix, size, mode=mode).numpy()
    got = warp_array(image, matrix, size, mode=mode)
    assert got.shape == expected.shape and got.dtype == np.float32
    if mode == "bilinear":
        np.testing.assert_allclose(got, expected, atol=2e-5)
    else:  # a sampling point within rounding of a half-pixel may pick the neighbour: allow a handful of pixels
        assert np.mean(got != expected) < 1e-3


def test_labels_and_booleans_keep_their_type_under_nearest() -> None:
    labels = np.random.default_rng(0).integers(0, 18, size=(1, 300, 100)).astype(np.uint8)
    matrix = resize_pad_geometry((300, 100), (128, 64)).matrix
    got = warp_array(labels, matrix, (128, 64), mode="nearest")
    expected = warp_affine(torch.from_numpy(labels), matrix, (128, 64), mode="nearest").numpy()
    assert got.dtype == np.uint8 and np.mean(got == expected) > 0.999
    assert warp_array(labels > 9, matrix, (128, 64), mode="nearest").dtype == np.bool_


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        warp_array(np.zeros((5, 5)), np.eye(3), (4, 4))
    with pytest.raises(ValueError, match="invertible"):
        warp_array(np.zeros((1, 5, 5)), np.zeros((3, 3)), (4, 4))
    with pytest.raises(ValueError, match="mode"):
        warp_array(np.zeros((1, 5, 5)), np.eye(3), (4, 4), mode="cubic")
