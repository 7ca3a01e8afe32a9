# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.visualize.overlay: the mask tint, the CAM heat, the true outline and the readable caption."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.visualize.overlay import render_overlay


def _radiograph(height: int = 400, width: int = 200) -> np.ndarray:
    return np.tile(np.linspace(0.2, 0.8, width), (height, 1))


def test_mask_cam_and_outline_are_blended_where_they_are():
    image = _radiograph()
    mask = np.zeros_like(image, dtype=bool)
    mask[200:300, 80:120] = True
    cam = np.zeros_like(image)
    cam[320:380, 20:60] = 1.0
    truth = np.zeros_like(image, dtype=bool)
    truth[100:150, 130:180] = True
    picture = render_overlay(image, mask=mask, cam=cam, true_mask=truth)
    plain = render_overlay(image)
    assert picture.shape == (400, 200, 3) and picture.dtype == np.uint8
    red, _, blue = (picture[250, 100, c].astype(int) - plain[250, 100, c] for c in range(3))
    assert red > 0 and blue < 0  # spine: red tint
    assert picture[350, 40, 2] < plain[350, 40, 2] and picture[350, 40, 0] >= plain[350, 40, 0]  # CAM: yellow heat
    assert tuple(picture[100, 150]) == (64, 255, 64) and np.array_equal(picture[125, 155], plain[125, 155])
    assert np.array_equal(picture[10:60, 150:190], plain[10:60, 150:190])  # untouched elsewhere


@pytest.mark.parametrize("width", [200, 1000])
def test_caption_grows_with_the_image(width):
    image = _radiograph(height=2 * width, width=width)
    picture = render_overlay(image, angles=[49.3, 23.0, 27.9], true_angles=[50.1, 22.0, 28.4])
    changed = np.any(picture != render_overlay(image), axis=2)
    rows, cols = np.nonzero(changed)
    assert rows.min() < width / 20 and cols.min() < width / 20  # top left
    # two lines of text whose height follows the width (a 28th of it per line, at least 10 px)
    assert rows.max() - rows.min() >= 2 * max(10, width / 28)
    assert cols.max() < width


def test_a_non_2d_image_is_refused():
    with pytest.raises(ValueError, match="image must be"):
        render_overlay(np.zeros((3, 10, 10)))
