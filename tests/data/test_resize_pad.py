# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.resize_pad: geometry, resampling, round trips, and Cobb angles unchanged by the transform."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd
from PIL import Image
from spine_shapes import sine_spine

from scripts.data.cobb import cobb_angles, cobb_details
from scripts.data.resize_pad import (
    ResizePad,
    ResizePadd,
    resize_pad_geometry,
    restore_original_size,
    warp_affine,
)
from scripts.data.spine_mask import render_spine_mask


def test_geometry_of_tall_and_wide_images() -> None:
    tall = resize_pad_geometry((1000, 200), (512, 256))  # height binds: scale 0.512, width 102.4 centred in 256
    assert (tall.scale, tall.pad_top, tall.pad_left) == pytest.approx((0.512, 0.0, 76.8))
    wide = resize_pad_geometry((100, 400), (512, 256))  # width binds: scale 0.64, height 64 centred in 512
    assert (wide.scale, wide.pad_top, wide.pad_left) == pytest.approx((0.64, 224.0, 0.0))
    odd = resize_pad_geometry((100, 300), (512, 256))  # height 85.33 centred: a fractional shift, not a rounded one
    assert (odd.scale, odd.pad_top, odd.pad_left) == pytest.approx((256 / 300, (512 - 256 / 3) / 2, 0.0))
    np.testing.assert_allclose(tall.to_output(np.array([[0.0, 0.0], [200.0, 1000.0]])), [[76.8, 0.0], [179.2, 512.0]])


def test_constant_image_fills_exactly_the_scaled_rectangle() -> None:
    out = ResizePad((512, 256))(torch.ones(1, 1000, 200))
    # content covers x in [76.8, 179.2]: columns whose centre j + 0.5 lies inside, 77 .. 178
    expected = torch.zeros(1, 512, 256)
    expected[..., 77:179] = 1
    torch.testing.assert_close(out.as_tensor(), expected)


def test_linear_ramp_lands_where_the_point_map_says() -> None:
    # I(x) = x at pixel centres; box averaging and bilinear interpolation both reproduce a linear function exactly,
    # so any half-pixel slip in the coordinate convention shows up as an offset of 0.5 / scale
    height, width = 900, 600
    ramp = (torch.arange(width, dtype=torch.float64) + 0.5).expand(1, height, width).clone()
    geometry = resize_pad_geometry((height, width), (128, 64))  # scale 0.1067: block-averaged by 9 first
    out = ResizePad((128, 64))(ramp).as_tensor()
    columns = torch.arange(64, dtype=torch.float64) + 0.5
    expected = (columns - geometry.pad_left) / geometry.scale
    interior = slice(20, 44)  # away from the padded border, where clamping changes the ramp
    torch.testing.assert_close(out[0, 60, interior], expected[interior], atol=1e-6, rtol=0)


def test_landmarks_and_mask_round_trip() -> None:
    height, width = 700, 300
    landmarks = sine_spine(height, width, amplitude=30.0, phase=0.4)
    mask = torch.from_numpy(render_spine_mask(landmarks, (height, width))).float()[None]
    data = {"image": MetaTensor(torch.rand(1, height, width)), "label": MetaTensor(mask), "landmarks": landmarks}
    transform = ResizePadd(keys=("image", "label"), spatial_size=(512, 256))
    out = transform(data)
    assert out["image"].shape == (1, 512, 256) and out["label"].shape == (1, 512, 256)
    assert set(torch.unique(out["label"]).tolist()) == {0.0, 1.0}
    back = transform.inverse(out)
    assert back["image"].shape == (1, height, width) and back["label"].shape == (1, height, width)
    np.testing.assert_allclose(back["landmarks"], landmarks, atol=1e-4, rtol=0)
    restored, original = back["label"][0].bool(), mask[0].bool()
    assert (restored & original).sum() / (restored | original).sum() > 0.9
    assert back["image"].applied_operations == []


def test_mask_of_mapped_landmarks_matches_mapped_mask() -> None:
    height, width = 1000, 330
    landmarks = sine_spine(height, width, amplitude=40.0, phase=1.0)
    mask = torch.from_numpy(render_spine_mask(landmarks, (height, width)))[None]
    geometry = resize_pad_geometry((height, width), (512, 256))
    warped = ResizePad((512, 256), mode="nearest")(mask)[0].numpy().astype(bool)
    rendered = render_spine_mask(geometry.to_output(landmarks), (512, 256)).astype(bool)
    assert (warped & rendered).sum() / (warped | rendered).sum() > 0.95


def test_prediction_back_to_the_original_resolution() -> None:
    height, width = 600, 200
    geometry = resize_pad_geometry((height, width), (256, 128))
    prediction = torch.zeros(1, 256, 128)
    prediction[:, 100:140, 50:80] = 1  # covers x in [50, 80], y in [100, 140] of the output
    restored = restore_original_size(prediction, (height, width), (256, 128), mode="nearest")
    assert restored.shape == (1, height, width)
    x0, y0 = geometry.to_original(np.array([50.0, 100.0]))
    x1, y1 = geometry.to_original(np.array([80.0, 140.0]))
    assert restored.sum().item() == pytest.approx((x1 - x0) * (y1 - y0), rel=0.02)
    assert restored[0, int((y0 + y1) / 2), int((x0 + x1) / 2)] == 1


def test_invertd_brings_a_prediction_back(tmp_path: Path) -> None:
    preprocessing = Compose([ResizePadd(keys="image", spatial_size=(64, 32), landmarks_key=None)])
    data = preprocessing({"image": MetaTensor(torch.rand(1, 150, 40))})
    data["pred"] = (data["image"] > 2).float()  # a prediction in the network's geometry
    data["pred"][:, 20:40, 10:20] = 1
    out = Invertd(keys="pred", transform=preprocessing, orig_keys="image", nearest_interp=True)(data)
    assert out["pred"].shape == (1, 150, 40)
    assert set(torch.unique(out["pred"]).tolist()) == {0.0, 1.0}


def _assert_angles_survive(landmarks: np.ndarray, height: int, width: int) -> str:
    geometry = resize_pad_geometry((height, width), (512, 256))
    original = cobb_angles(landmarks, height)
    np.testing.assert_allclose(cobb_angles(geometry.to_output(landmarks), 512), original, atol=1e-3, rtol=0)
    return cobb_details(landmarks, height).branch


def test_cobb_angles_unchanged_on_synthetic_spines() -> None:
    rng = np.random.default_rng(7)
    branches = set()
    for _ in range(60):
        height, width = int(rng.integers(900, 3000)), int(rng.integers(300, 1500))  # tall and wide: both paddings
        amplitude = rng.uniform(0.02, 0.15) * width
        landmarks = sine_spine(height, width, amplitude, rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.6))
        branches.add(_assert_angles_survive(landmarks, height, width))
    assert len(branches) >= 2  # the branches that read the image height are exercised


def test_cobb_angles_unchanged_on_real_labels(aasce_root: Path) -> None:
    mats = sorted((aasce_root / "labels" / "training").glob("*.jpg.mat"))[:20]
    assert len(mats) == 20
    for mat in mats:
        width, height = Image.open(aasce_root / "data" / "training" / mat.name[: -len(".mat")]).size
        _assert_angles_survive(scipy.io.loadmat(mat)["p2"].astype(np.float64), height, width)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="spatial_size"):
        ResizePad((512, 0))
    with pytest.raises(ValueError, match="mode"):
        ResizePad(mode="cubic")
    with pytest.raises(ValueError, match="shape"):
        ResizePad()(torch.zeros(10, 10))
    with pytest.raises(ValueError, match="share one spatial size"):
        ResizePadd(keys=("image", "label"))({"image": torch.zeros(1, 10, 10), "label": torch.zeros(1, 10, 11)})
    with pytest.raises(ValueError, match="matrix"):
        warp_affine(torch.zeros(1, 4, 4), np.zeros((3, 3)), (4, 4))
