# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Each ablation overlay of Table 1 sets the stages and switches it claims, and its networks and losses build."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from scripts.losses.ar_loss import ARLoss
from scripts.losses.smape_loss import SMAPELoss

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"

ROWS = {
    # overlay: (stages, regressor_input, AR, ROIE)
    "ablation_image_only": (["a", "b"], "image", False, False),
    "ablation_segmentation_only": (["a", "b"], "segmentation", False, False),
    "ablation_seg4reg": (["a", "b"], "both", False, False),
    "ablation_ar": (["a", "b"], "both", True, False),
    "ablation_ar_roie": (["a", "b", "c"], "both", True, True),
}


def _parser(*names: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / f"{name}.yaml") for name in names])
    return parser


@pytest.mark.parametrize("row", sorted(ROWS))
def test_ablation_row(row):
    stages, regressor_input, ar, roie = ROWS[row]
    pipeline = _parser("train", row)
    assert pipeline.get_parsed_content("stages") == stages
    assert pipeline.get_parsed_content("ckpt_dir").endswith(f"models/{row}")

    stage_b = _parser("train", "stage_b", row)
    stage_b["previous_ckpt"] = ""
    stage_b["device"] = "$torch.device('cpu')"
    objective = stage_b.get_parsed_content("train#objective")
    model = objective.model
    assert model.regressor_input == regressor_input
    assert model.regressor.in_channels == (2 if regressor_input == "both" else 1)
    assert model.use_roie is roie
    assert isinstance(objective.loss, ARLoss if ar else SMAPELoss)
    assert list(objective.frozen) == ["segmenter"]


def test_full_recipe_runs_all_five_stages_with_every_switch_on():
    assert _parser("train").get_parsed_content("stages") == ["a", "b", "c", "d", "e"]
    common = _parser("train")
    assert common.get_parsed_content("ar") is True and common.get_parsed_content("roie") is True
    assert common.get_parsed_content("regressor_input") == "both"
