# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One network definition: training and inference build the same network, and inference builds it from the record."""

from __future__ import annotations

import json

import pytest
import torch
from monai.bundle import ConfigParser
from tiny_bundle import CONFIGS, TINY

from scripts import BUNDLE_ROOT
from scripts.networks.definition import (
    NETWORK_SETTINGS,
    RECORD_NAME,
    build_seg4reg,
    default_settings,
    num_classes,
    read_settings,
    serving_settings,
    write_settings,
)


def _shapes(network: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in network.state_dict().items()}


def _parsed(files: list, **ids: object) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(path) for path in files])
    parser.update(ids)
    return parser


def test_train_yaml_records_every_network_setting():
    parser = _parsed([CONFIGS / "train.yaml"])
    assert tuple(parser["network_settings"]) == NETWORK_SETTINGS
    assert parser.get_parsed_content("network_settings") == default_settings(BUNDLE_ROOT)


@pytest.mark.parametrize("overlays", [[], ["cpu.yaml"]], ids=["paper", "cpu"])
def test_inference_serves_what_training_built(overlays, tmp_path):
    train = _parsed([CONFIGS / "train.yaml", *(CONFIGS / name for name in overlays)], segmenter_imagenet=False)
    train["regressor_imagenet"] = False  # the same layers without reading the ImageNet wheels
    trained = train.get_parsed_content("network_def")
    write_settings(tmp_path, train.get_parsed_content("network_settings"))
    served = _parsed([CONFIGS / "inference.yaml"], ckpt_dir=str(tmp_path))
    assert _shapes(served.get_parsed_content("network_def")) == _shapes(trained)
    assert served.get_parsed_content("input_size") == train.get_parsed_content("spatial_size")


def test_without_a_record_inference_builds_the_papers_network(tmp_path):
    served = _parsed([CONFIGS / "inference.yaml"], ckpt_dir=str(tmp_path))
    assert served.get_parsed_content("network_settings") == default_settings(BUNDLE_ROOT)
    assert served.get_parsed_content("input_size") == [512, 256]


def test_a_training_recipe_listed_after_inference_yaml_cannot_change_the_network(tmp_path):
    write_settings(tmp_path, default_settings(BUNDLE_ROOT))  # a model of the paper's recipe
    served = _parsed([CONFIGS / "inference.yaml", CONFIGS / "cpu.yaml"], ckpt_dir=str(tmp_path))
    assert served.get_parsed_content("input_size") == [512, 256]
    assert served.get_parsed_content("network_settings")["segmenter_backbone"] == "resnet"


def test_a_record_round_trips_and_overrides_must_agree_with_it(tmp_path):
    settings = {**default_settings(BUNDLE_ROOT), **TINY}
    write_settings(tmp_path, settings)
    assert read_settings(tmp_path) == settings
    checkpoint = tmp_path / "model.pt"
    assert serving_settings(checkpoint, BUNDLE_ROOT, {"segmenter_depth": 18}) == settings
    with pytest.raises(ValueError, match=r"network\.json .*segmenter_depth: trained 18, config 50"):
        serving_settings(checkpoint, BUNDLE_ROOT, {"segmenter_depth": 50})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) pyramid_chanels"):
        serving_settings(checkpoint, BUNDLE_ROOT, {"pyramid_chanels": 8})


def test_a_damaged_or_incomplete_record_is_named(tmp_path):
    (tmp_path / RECORD_NAME).write_text("{not json")
    with pytest.raises(ValueError, match=r"network\.json is damaged"):
        read_settings(tmp_path)
    (tmp_path / RECORD_NAME).write_text(json.dumps({"spatial_size": [64, 32]}))
    with pytest.raises(ValueError, match=r"network\.json: network settings are wrong \(missing angle_scale"):
        read_settings(tmp_path)


def test_build_refuses_an_unknown_setting():
    with pytest.raises(ValueError, match="unknown dropout"):
        build_seg4reg({**default_settings(BUNDLE_ROOT), "dropout": 0.5})


def test_run_record_and_mlflow_parameters_come_from_one_list():
    parser = _parsed([CONFIGS / "train.yaml", CONFIGS / "stage_b.yaml"], dataset_dir="", num_phantoms=4)
    parser["dataset_root"] = "/data"  # nothing generated: the record only names it
    record = parser.get_parsed_content("run_record")
    for name in (*NETWORK_SETTINGS, "lambda_ce", "lambda_ar", "lambda_seg_consistency", "seed", "fold", "ar"):
        assert name in record, name
    params = parser.get_parsed_content("tracked_params")
    assert {key: params[key] for key in record} == record
    assert params["stage"] == "b" and "lr" in params and "max_epochs" in params


def test_the_vertebra_setting_builds_18_classes_and_an_older_record_reads_as_spine(tmp_path):
    settings = {**default_settings(BUNDLE_ROOT), **TINY, "segment_vertebrae": True}
    assert num_classes(settings) == 18 and build_seg4reg(settings).out_channels == 22
    older = {name: value for name, value in default_settings(BUNDLE_ROOT).items() if name != "segment_vertebrae"}
    (tmp_path / RECORD_NAME).write_text(json.dumps(older))  # written before the setting existed
    assert read_settings(tmp_path)["segment_vertebrae"] is False
