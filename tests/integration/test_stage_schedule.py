# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The stage configs' schedule: which stages score their starting model, which epochs run on phantoms and on data."""

from __future__ import annotations

import pytest
from monai.bundle import ConfigParser
from tiny_bundle import CONFIGS


def _parsed(stage: str, key: str, *overlays: str, **overrides: object):
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml"), str(CONFIGS / f"stage_{stage}.yaml"), *map(str, overlays)])
    parser.update(overrides)
    return parser.get_parsed_content(key)


@pytest.mark.parametrize(("stage", "at_start"), [("a", False), ("b", False), ("c", True), ("d", True), ("e", True)])
def test_fine_tuning_stages_validate_their_starting_model(stage: str, at_start: bool):
    assert _parsed(stage, "validate#at_start") is _parsed(stage, "score_starting_model")[stage] is at_start
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml"), str(CONFIGS / f"stage_{stage}.yaml")])
    handler = next(h for h in parser["train"]["handlers"] if h["_target_"] == "ValidationHandler")
    assert handler["exec_at_start"] == "@validate#at_start"  # MONAI's ValidationHandler(exec_at_start=...)


def test_the_cpu_recipe_runs_its_phantom_schedule_without_a_dataset(tmp_path):
    cpu = CONFIGS / "cpu.yaml"
    phantom = _parsed("b", "phantom_epochs", cpu)
    assert _parsed("b", "train#max_epochs", cpu) == phantom["b"]
    assert _parsed("b", "train#max_epochs", cpu, dataset_dir=str(tmp_path)) == _parsed("b", "aasce_epochs", cpu)["b"]
    # epochs given after the recipe (the command line's --epochs "{a: 1, ...}") are what runs, phantoms or not
    one = {"epochs": {stage: 1 for stage in "abcde"}}
    assert _parsed("b", "train#max_epochs", cpu, **one) == _parsed("b", "train#max_epochs", cpu, **one, dataset_dir="x")
    assert _parsed("b", "train#max_epochs", cpu, **one) == 1
    # the paper recipe runs its own epochs on both
    assert _parsed("a", "train#max_epochs") == _parsed("a", "train#max_epochs", dataset_dir="x") == 90


def test_stage_overlays_set_only_what_identifies_their_stage():
    """What a user may tune lives in train.yaml (per stage where it varies, as epochs): a stage overlay that set it would
    hide a recipe's value equal to train.yaml's, which the pipeline cannot tell from no value at all."""
    allowed = {"stage", "previous_ckpt", "key_metric_name", "train#lr", "train#objective", "validate#regress",
               "validate#use_gate"}  # fmt: skip
    for stage in "abcde":
        keys = set(ConfigParser.load_config_file(CONFIGS / f"stage_{stage}.yaml"))
        assert keys <= allowed, f"stage_{stage}.yaml sets {sorted(keys - allowed)}"
