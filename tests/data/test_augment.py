# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.augment: exact flips and rotations, landmarks aligned with the pixels, Cobb angles kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from monai.data import MetaTensor
from PIL import Image
from spine_shapes import sine_spine

from scripts.data.augment import RandSpineAffine, RandSpineAffined, spine_affine_matrix
from scripts.data.cobb import cobb_angles
from scripts.data.resize_pad import resize_pad_geometry, warp_affine
from scripts.data.spine_mask import render_spine_mask


def _spines(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        sine_spine(512, 256, rng.uniform(5, 40), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.6)) for _ in range(count)
    ]


def _sample(landmarks: np.ndarray, size: tuple[int, int] = (512, 256)) -> dict:
    return {
        "image": MetaTensor(torch.rand(1, *size)),
        "label": MetaTensor(torch.from_numpy(render_spine_mask(landmarks, size)).float()[None]),
        "landmarks": landmarks.copy(),
        "angles": cobb_angles(landmarks, size[0]).astype(np.float32),
    }


def test_flip_mirrors_pixels_and_relabels_corners() -> None:
    landmarks = sine_spine(64, 32, 6.0, 0.3)
    image = torch.rand(1, 64, 32)
    transform = RandSpineAffined(keys="image", prob_flip=1.0, rotate_deg=0.0, scale_range=(1.0, 1.0))
    out = transform({"image": image, "landmarks": landmarks})
    torch.testing.assert_close(out["image"].as_tensor(), torch.flip(image, dims=(2,)))
    mirrored = np.stack([32.0 - landmarks[:, 0], landmarks[:, 1]], axis=1)
    for v in range(17):  # new TL = mirrored TR, new TR = mirrored TL, new BL = mirrored BR, new BR = mirrored BL
        np.testing.assert_allclose(
            out["landmarks"][4 * v : 4 * v + 4], mirrored[[4 * v + 1, 4 * v, 4 * v + 3, 4 * v + 2]]
        )
    assert np.all(out["landmarks"][0::2, 0] < out["landmarks"][1::2, 0])  # left corners still left of right ones


def test_quarter_turn_is_an_exact_pixel_rotation() -> None:
    size = 6
    image = torch.arange(size * size, dtype=torch.float32).reshape(1, size, size)
    matrix = spine_affine_matrix((size, size), flip=False, angle_deg=90.0, scale=1.0)
    out = warp_affine(image, matrix, (size, size), mode="nearest")
    # clockwise on screen: the pixel at row r, column c moves to row c, column size - 1 - r
    expected = torch.empty_like(image)
    for r in range(size):
        for c in range(size):
            expected[0, c, size - 1 - r] = image[0, r, c]
    torch.testing.assert_close(out, expected)
    # the same matrix moves the centre of pixel (r=1, c=4) to the centre of pixel (4, 4)
    np.testing.assert_allclose(matrix @ [4.5, 1.5, 1.0], [4.5, 4.5, 1.0], atol=1e-12)


def test_scale_is_about_the_image_centre() -> None:
    transform = RandSpineAffine(prob_flip=0.0, rotate_deg=0.0, scale_range=(1.25, 1.25))
    transform.randomize()
    points = np.array([[50.0, 100.0], [0.0, 0.0], [100.0, 200.0]])
    np.testing.assert_allclose(
        transform.map_landmarks(np.tile(points, (23, 1))[:68], (200, 100))[:3],
        [[50.0, 100.0], [-12.5, -25.0], [112.5, 225.0]],
    )


def test_same_seed_same_draw() -> None:
    data = _sample(_spines(1, 0)[0])
    first = RandSpineAffined(keys=("image", "label")).set_random_state(seed=5)(data)
    second = RandSpineAffined(keys=("image", "label")).set_random_state(seed=5)(data)
    other = RandSpineAffined(keys=("image", "label")).set_random_state(seed=6)(data)
    torch.testing.assert_close(first["image"], second["image"])
    np.testing.assert_array_equal(first["landmarks"], second["landmarks"])
    assert not np.allclose(first["landmarks"], other["landmarks"])


def test_rendered_and_transformed_masks_agree() -> None:
    transform = RandSpineAffined(keys=("image", "label")).set_random_state(seed=1)
    for landmarks in _spines(4, 1):
        out = transform(_sample(landmarks))
        assert out["label"].shape == (1, 512, 256)
        assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
        warped = out["label"][0].numpy().astype(bool)
        rendered = render_spine_mask(out["landmarks"], (512, 256)).astype(bool)
        assert (warped & rendered).sum() / (warped | rendered).sum() > 0.95


def test_flips_and_scales_keep_the_angles_exactly() -> None:
    transform = RandSpineAffine(rotate_deg=0.0).set_random_state(seed=2)
    flips = 0
    for landmarks in _spines(30, 2):
        transform.randomize()
        flips += transform.flip
        after = cobb_angles(transform.map_landmarks(landmarks, (512, 256)), 512)
        np.testing.assert_allclose(after, cobb_angles(landmarks, 512), atol=1e-3, rtol=0)
    assert 5 <= flips <= 25


def test_rotations_keep_the_largest_angle_and_usually_the_others() -> None:
    transform = RandSpineAffine().set_random_state(seed=3)
    unchanged, total = 0, 0
    for landmarks in _spines(15, 3):
        before = cobb_angles(landmarks, 512)
        for _ in range(4):
            transform.randomize()
            after = cobb_angles(transform.map_landmarks(landmarks, (512, 256)), 512)
            assert after[0] == pytest.approx(before[0], abs=1e-3)
            unchanged += bool(np.allclose(after, before, atol=1e-3))
            total += 1
    assert unchanged >= 0.9 * total


def test_real_labels_keep_their_angles(aasce_root: Path) -> None:
    mats = sorted((aasce_root / "labels" / "training").glob("*.jpg.mat"))[:20]
    assert len(mats) == 20
    exact = RandSpineAffine(rotate_deg=0.0).set_random_state(seed=4)
    rotating = RandSpineAffine().set_random_state(seed=4)
    unchanged = 0
    for mat in mats:
        width, height = Image.open(aasce_root / "data" / "training" / mat.name[: -len(".mat")]).size
        landmarks = resize_pad_geometry((height, width), (512, 256)).to_output(scipy.io.loadmat(mat)["p2"] * 1.0)
        before = cobb_angles(landmarks, 512)
        for transform in (exact, rotating):
            transform.randomize()
            after = cobb_angles(transform.map_landmarks(landmarks, (512, 256)), 512)
            assert after[0] == pytest.approx(before[0], abs=1e-3)
            if transform is exact:
                np.testing.assert_allclose(after, before, atol=1e-3, rtol=0)
            else:
                unchanged += bool(np.allclose(after, before, atol=1e-3))
    assert unchanged >= 16


def test_recompute_angles_follows_the_transformed_landmarks() -> None:
    landmarks = _spines(1, 5)[0]
    data = _sample(landmarks)
    data["angles"] = np.array([1.0, 2.0, 3.0], dtype=np.float32)  # deliberately wrong: must be replaced
    out = RandSpineAffined(keys="image", recompute_angles=True).set_random_state(seed=0)(data)
    assert out["angles"].dtype == np.float32
    np.testing.assert_allclose(out["angles"], cobb_angles(out["landmarks"], 512), atol=1e-4)
    np.testing.assert_allclose(out["angles"], cobb_angles(landmarks, 512), atol=1e-3)
    kept = RandSpineAffined(keys="image").set_random_state(seed=0)(data)
    np.testing.assert_array_equal(kept["angles"], [1.0, 2.0, 3.0])


def test_inverse_undoes_the_draw() -> None:
    landmarks = _spines(1, 6)[0]
    transform = RandSpineAffined(keys=("image", "label"), scale_range=(1.0, 1.1)).set_random_state(seed=9)
    data = _sample(landmarks)
    data["image"] = MetaTensor(torch.ones(1, 512, 256))
    back = transform.inverse(transform(data))
    np.testing.assert_allclose(back["landmarks"], landmarks, atol=1e-6)
    assert back["image"].applied_operations == []
    # the centre of the image survives the round trip (the corners were rotated out and come back as zeros)
    torch.testing.assert_close(back["image"][0, 200:312, 100:156], torch.ones(112, 56))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="prob_flip"):
        RandSpineAffined(keys="image", prob_flip=1.5)
    with pytest.raises(ValueError, match="scale_range"):
        RandSpineAffined(keys="image", scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="share one spatial size"):
        RandSpineAffined(keys=("image", "label"))({"image": torch.zeros(1, 8, 8), "label": torch.zeros(1, 8, 9)})
