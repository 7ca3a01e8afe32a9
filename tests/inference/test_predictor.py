# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One image through the network and back: checkpoint loading, the size check, and outputs at the original size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, CopyItemsd, Invertd
from tiny_bundle import CONFIGS, TINY, make_checkpoint

from scripts.data.resize_pad import ResizePadd, resize_pad_geometry, restore_original_size
from scripts.inference.predictor import (
    CheckImageSized,
    SpineMaskd,
    SplitPredictiond,
    load_checkpoint,
)


def _network(**overrides: object) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.yaml"))
    parser.update({"network_overrides": {**TINY, **overrides}, "ckpt_dir": "/nonexistent"})  # no record: defaults
    return parser.get_parsed_content("network_def")


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*nowhere/model\.pt does not exist.*--ckpt_dir"):
        load_checkpoint(_network(), missing)


def test_checkpoint_of_another_recipe_is_named(tmp_path):
    path = make_checkpoint(tmp_path, pyramid_channels=16)
    with pytest.raises(ValueError, match=r"model\.pt does not hold weights of this network.*network\.json"):
        load_checkpoint(_network(), path)


def test_truncated_checkpoint_is_named(tmp_path):
    path = make_checkpoint(tmp_path, seed=1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"^{path} is damaged \(truncated: [^)]*\): train the stage [^.]*\.$"):
        load_checkpoint(_network(), path)  # the damage alone: not the advice about network settings


def test_checkpoint_loads_into_eval_mode(tmp_path):
    path = make_checkpoint(tmp_path, seed=1)
    network = load_checkpoint(_network(), path)
    assert not network.training
    saved = torch.load(path, weights_only=True)
    assert all(torch.equal(saved[key], value) for key, value in network.state_dict().items())


def test_a_one_pixel_wide_image_is_refused_naming_the_file():
    image = MetaTensor(torch.zeros(1, 100, 1), meta={"filename_or_obj": "/data/thin.png"})
    with pytest.raises(ValueError, match=r"'/data/thin\.png' is 100 x 1 pixels .* at least 32"):
        CheckImageSized(keys="image")({"image": image})
    assert CheckImageSized(keys="image", min_side=1)({"image": image})["image"] is image


def _pipeline(spatial: tuple[int, int]) -> tuple[Compose, Compose]:
    """The preprocessing geometry and the postprocessing of configs/inference.yaml, built by hand (no network)."""
    preprocessing = Compose(
        [
            CopyItemsd(keys="image", names="image_original"),
            ResizePadd(keys="image", spatial_size=spatial, mode="bilinear", landmarks_key=None),
        ]
    )
    postprocessing = Compose(
        [
            SplitPredictiond(keys="pred", num_seg_channels=2),
            Invertd(keys=["spine", "cam"], transform=preprocessing, orig_keys="image", nearest_interp=False),
            SpineMaskd(keys="spine", cam_key="cam", threshold=0.5),
        ]
    )
    return preprocessing, postprocessing


def _image(height: int, width: int) -> MetaTensor:
    meta = {"original_size": np.array([height, width]), "filename_or_obj": "/data/x.png"}
    return MetaTensor(torch.rand(1, height, width), meta=meta)


def _prediction(spatial: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A (6, h, w) network output: smooth random spine probability and CAM, three angles."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, 1, spatial[0] // 8, spatial[1] // 8, generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=spatial, mode="bilinear", align_corners=False)[:, 0]
    pred = torch.empty(6, *spatial)
    pred[1], pred[0], pred[2] = smooth[0], 1.0 - smooth[0], smooth[1]
    pred[3:] = torch.tensor([30.0, 12.0, 5.0])[:, None, None]
    return pred


def test_split_prediction_maps_mask_and_cam_back_to_the_original_size():
    spatial = (64, 32)
    geometry = resize_pad_geometry((150, 40), spatial)
    preprocessing, postprocessing = _pipeline(spatial)
    data = preprocessing({"image": _image(150, 40)})
    pred = torch.zeros(6, *spatial)
    pred[0] = 1.0
    # spine probability 1 in a box of the network image: rows 10..50, columns 12..20 (inside the unpadded part)
    pred[0, 10:50, 12:20], pred[1, 10:50, 12:20] = 0.0, 1.0
    pred[2] = torch.linspace(0, 1, spatial[1])[None, :]
    pred[3:] = torch.tensor([30.0, 12.0, 5.0])[:, None, None]
    out = postprocessing({**data, "pred": pred})
    assert out["mask"].shape == (150, 40) and out["mask"].dtype == np.uint8
    assert out["cam"].shape == (150, 40) and out["cam"].dtype == np.float32
    assert out["cam"].min() >= 0.0 and out["cam"].max() <= 1.0
    assert out["angles"].shape == (3,) and out["angles"].dtype == np.float64
    np.testing.assert_allclose(out["angles"], [30.0, 12.0, 5.0], atol=1e-5)
    assert out["mask_network"].shape == (1, *spatial) and out["mask_network"].sum() == 40 * 8
    assert out["image"].shape == (1, *spatial) and out["image_original"].shape == (1, 150, 40)  # images untouched
    # the box, mapped back, covers the same part of the original image
    (x0, y0), (x1, y1) = geometry.to_original(np.array([[12.0, 10.0], [20.0, 50.0]]))
    rows, cols = np.nonzero(out["mask"])
    assert abs(rows.min() - y0) <= 2 and abs(rows.max() + 1 - y1) <= 2
    assert abs(cols.min() - x0) <= 2 and abs(cols.max() + 1 - x1) <= 2


@pytest.mark.parametrize("size", [(150, 40), (40, 150), (97, 61), (300, 300)])  # tall, wide, odd shift, square
def test_invertd_gives_what_restore_original_size_gave(size):
    spatial = (64, 32)
    preprocessing, postprocessing = _pipeline(spatial)
    pred = _prediction(spatial, seed=sum(size))
    out = postprocessing({**preprocessing({"image": _image(*size)}), "pred": pred})
    # the former path: the geometry recomputed from spatial_size and the original size
    spine = restore_original_size(pred[1:2], size, spatial, mode="bilinear")
    cam = restore_original_size(pred[2:3], size, spatial, mode="bilinear")
    np.testing.assert_allclose(torch.as_tensor(out["spine"])[0].numpy(), spine[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(out["cam"], cam[0].clamp(0.0, 1.0).numpy(), atol=1e-6)
    np.testing.assert_array_equal(out["mask"], (spine[0] > 0.5).numpy().astype(np.uint8))


def test_a_probability_left_at_the_network_size_is_refused_naming_the_file():
    spatial = (64, 32)
    data = {"image_original": _image(150, 40)}  # no image, so no trace: Invertd only warns
    out = SplitPredictiond()({**data, "pred": _prediction(spatial)})
    with pytest.warns(UserWarning, match="transform info"):
        out = Invertd(keys="spine", transform=_pipeline(spatial)[0], orig_keys="image")(out)
    with pytest.raises(ValueError, match=r"'/data/x\.png': the spine probability is \(64, 32\), not the original"):
        SpineMaskd()(out)
