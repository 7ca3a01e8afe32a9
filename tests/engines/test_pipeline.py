# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

from copy import deepcopy
from pathlib import Path

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow

from scripts.engines.pipeline import changed_ids, format_results, run_stages
from scripts.engines.tracking import executed_config_file, requested_tracking


def test_results_table_has_a_row_per_stage_and_dashes_for_missing_metrics():
    table = format_results(
        {
            "a": {"metrics": {"val_dice": 0.81234, "val_jaccard": 0.7}, "best_epoch": 3, "seconds": 90},
            "b": {"metrics": {"val_smape": 12.5, "val_mae": 5.25, "val_dice": 0.81234}, "best_epoch": 9, "seconds": 30},
        }
    ).splitlines()
    assert len(table) == 4
    assert table[2].startswith("| a | - | - |") and "0.8123" in table[2] and table[2].endswith("| 3 | 1.5 |")
    assert table[3].startswith("| b | 12.5 | 5.25 |")


def test_results_table_ends_with_the_mean_predictor_when_recorded():
    floor = {"val_smape": 40.0, "val_mae": 20.0}
    table = format_results(
        {
            "a": {"metrics": {"val_dice": 0.9}, "best_epoch": 3, "seconds": 60},
            "b": {"metrics": {"val_smape": 12.5}, "best_epoch": 2, "seconds": 60, "mean_predictor": floor},
        }
    ).splitlines()
    assert len(table) == 5
    assert table[4].startswith("| mean predictor | 40 | 20 |") and table[4].endswith("| - | - |")
    assert "mean predictor" not in format_results({"a": {"metrics": {}, "best_epoch": 1, "seconds": 1}})


def test_unknown_stage_is_refused(tmp_path):
    with pytest.raises(ValueError, match="stages must be taken from"):
        run_stages(tmp_path, tmp_path, stages=["a", "f"])


def test_tracking_is_forwarded_only_when_asked_for():
    assert requested_tracking(False, "mlflow.yaml") is None
    assert requested_tracking(None, "mlflow.yaml") == "mlflow.yaml"  # what MONAI's --tracking patch leaves


def test_executed_config_is_found_whatever_form_monai_left_its_path_in(tmp_path):
    saved = tmp_path / "config_20261121_120000.json"
    saved.write_text("{}")
    assert executed_config_file(str(saved)) == [str(saved)]  # default output_dir: a resolved path
    assert executed_config_file(f"{tmp_path} + '/{saved.name}'") == [str(saved)]  # --output_dir <plain path>
    assert executed_config_file(f"{tmp_path} + '/config_other.json'") == []
    assert executed_config_file(None) == [] and executed_config_file(False) == []


CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"


def _pipeline(*overlays: Path, **command_line: object) -> ConfigParser:
    """The pipeline's config as ``run training`` builds it: train.yaml, the overlays, then the command line."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml"), *map(str, overlays)])
    parser.update(command_line)
    parser["training"] = "$scripts.engines.pipeline.stage_overrides(@bundle_root + '/configs/train.yaml')"
    return parser


def test_changed_ids_go_key_by_key_into_kept_dicts_and_whole_otherwise():
    base = {"a": 1, "d": {"x": 1, "y": {"z": 2}}, "l": [1, 2], "e": {"p": 1, "q": 2}}
    merged = {"a": 1, "d": {"x": 5, "y": {"z": 2}, "w": 0}, "l": [1], "e": {"p": 3}, "n": "$@a"}
    assert changed_ids(base, merged) == {"d#x": 5, "d#w": 0, "l": [1], "e": {"p": 3}, "n": "$@a"}


def test_overlay_and_command_line_ids_reach_the_stages_raw(tmp_path):
    overlay = tmp_path / "recipe.yaml"
    overlay.write_text("batch_size: 3\ntrain#lr: 0.5\nnew_rate: 0.25\nlr_regressor: '$@new_rate * 2'\n")
    epochs = {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    parser = _pipeline(overlay, epochs=epochs, fold=2, **{"validate#dataloader#batch_size": 1}, stages=["a"])
    overrides = parser.get_parsed_content("training")
    assert overrides == {
        "batch_size": 3,
        "train#lr": 0.5,
        "new_rate": 0.25,  # new, but another setting refers to it
        "lr_regressor": "$@new_rate * 2",  # raw: evaluated in the stage
        "epochs": epochs,  # replaces train.yaml's choice between the AASCE and the phantom schedule: whole
        "fold": 2,
        "validate#dataloader#batch_size": 1,
    }  # "stages" is the pipeline's own: not handed on


def test_an_id_no_stage_uses_is_named_before_anything_runs():
    parser = _pipeline(batch_szie=4, batch_size=2)
    with pytest.raises(RuntimeError) as raised:
        parser.get_parsed_content("training")
    cause = raised.value.__cause__
    assert isinstance(cause, ValueError) and str(cause).startswith("batch_szie: given to the training pipeline")


def test_the_tracking_patch_of_the_pipeline_is_not_handed_on():
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.yaml"))
    parser.update({"batch_size": 2})
    ConfigWorkflow.patch_bundle_tracking(parser, ConfigParser.load_config_files(str(CONFIGS / "mlflow.yaml")))
    parser["training"] = (
        "$scripts.engines.pipeline.stage_overrides(@bundle_root + '/configs/train.yaml', @tracking_settings)"
    )
    assert parser.get_parsed_content("training") == {"batch_size": 2}


def test_monai_s_own_mlflow_patch_is_not_handed_on_either():
    from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "train.yaml"))
    ConfigWorkflow.patch_bundle_tracking(parser, deepcopy(DEFAULT_EXP_MGMT_SETTINGS["mlflow"]))  # --tracking mlflow
    parser["training"] = (
        "$scripts.engines.pipeline.stage_overrides(@bundle_root + '/configs/train.yaml', @tracking_settings)"
    )
    assert parser.get_parsed_content("training") == {}
