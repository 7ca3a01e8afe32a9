# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One image through the network and back: checkpoint loading, the size check, and outputs at the original size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from tiny_bundle import CONFIGS, TINY, make_checkpoint

from scripts.data.resize_pad import resize_pad_geometry
from scripts.inference.predictor import CheckImageSized, Seg4RegPredictor, SplitPredictiond, load_checkpoint


def _network(**overrides: object) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.yaml"))
    parser.update({**TINY, **overrides})
    return parser.get_parsed_content("network_def")


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "model.pt"
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*nowhere/model\.pt does not exist.*--ckpt_dir"):
        load_checkpoint(_network(), missing)


def test_checkpoint_of_another_recipe_is_named(tmp_path):
    path = make_checkpoint(tmp_path, pyramid_channels=16)
    with pytest.raises(ValueError, match=r"model\.pt does not hold weights of this network.*recipe overlay"):
        load_checkpoint(_network(), path)


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


def test_split_prediction_maps_mask_and_cam_back_to_the_original_size():
    spatial = (64, 32)
    geometry = resize_pad_geometry((150, 40), spatial)
    pred = torch.zeros(6, *spatial)
    pred[0] = 1.0
    # spine probability 1 in a box of the network image: rows 10..50, columns 12..20 (inside the unpadded part)
    pred[0, 10:50, 12:20], pred[1, 10:50, 12:20] = 0.0, 1.0
    pred[2] = torch.linspace(0, 1, spatial[1])[None, :]
    pred[3:] = torch.tensor([30.0, 12.0, 5.0])[:, None, None]
    image = MetaTensor(torch.zeros(1, *spatial), meta={"original_size": np.array([150, 40])})
    out = SplitPredictiond(spatial_size=spatial)({"pred": pred, "image": image})
    assert out["mask"].shape == (150, 40) and out["mask"].dtype == np.uint8
    assert out["cam"].shape == (150, 40) and out["cam"].dtype == np.float32
    assert out["cam"].min() >= 0.0 and out["cam"].max() <= 1.0
    np.testing.assert_allclose(out["angles"], [30.0, 12.0, 5.0], atol=1e-5)
    assert out["mask_network"].shape == (1, *spatial) and out["mask_network"].sum() == 40 * 8
    # the box, mapped back, covers the same part of the original image
    (x0, y0), (x1, y1) = geometry.to_original(np.array([[12.0, 10.0], [20.0, 50.0]]))
    rows, cols = np.nonzero(out["mask"])
    assert abs(rows.min() - y0) <= 2 and abs(rows.max() + 1 - y1) <= 2
    assert abs(cols.min() - x0) <= 2 and abs(cols.max() + 1 - x1) <= 2


def test_predictor_loads_lazily_and_returns_original_size_outputs(tmp_path):
    path = make_checkpoint(tmp_path)
    predictor = Seg4RegPredictor(_network(), path, SplitPredictiond(spatial_size=TINY["spatial_size"]))
    assert not predictor._loaded
    image = MetaTensor(torch.rand(1, 64, 32), meta={"original_size": np.array([90, 30])})
    out = predictor({"image": image, "name": "x.png"})
    assert predictor._loaded and out["name"] == "x.png"
    assert out["pred"].shape == (6, 64, 32) and out["mask"].shape == (90, 30) and out["angles"].shape == (3,)


def test_predictor_reports_a_missing_checkpoint_when_loading(tmp_path):
    predictor = Seg4RegPredictor(_network(), tmp_path / "model.pt", SplitPredictiond(spatial_size=(64, 32)))
    with pytest.raises(FileNotFoundError, match=r"model\.pt does not exist"):
        predictor.load()
