# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The metric registry is the one list of metrics: train.yaml's validation, the key metric's direction, the pipeline's
table and the evaluation's metrics.json, per_image.csv and tables all read it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser

from scripts.engines.pipeline import format_results
from scripts.handlers import metric_handlers
from scripts.inference.evaluation import format_tables
from scripts.metrics.registry import (
    ANGLES,
    METRICS,
    SEGMENTATION,
    VERTEBRAE,
    by_id,
    lower_is_better,
    metric_comparator,
    metric_values,
    metrics_json,
    per_image_values,
    table_columns,
    validation_handlers,
    validation_metrics,
)

CONFIGS = Path(__file__).resolve().parents[2] / "bundle" / "configs"
VAL_IDS = [spec.val_id for spec in METRICS]


def _parser(*files: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in files])
    return parser


def test_names_ids_and_columns_are_unique_and_keep_the_recorded_ids():
    assert len(set(VAL_IDS)) == len(VAL_IDS) == len({spec.name for spec in METRICS}) == 11
    columns = [spec.csv_column for spec in METRICS if spec.csv_column]
    assert len(set(columns)) == len(columns)
    # the ids done.json, results.json and MLflow have always recorded
    assert VAL_IDS == [
        "val_smape", "val_mae", "val_mae_angle1", "val_mae_angle2", "val_mae_angle3",
        "val_jaccard", "val_dice", "val_accuracy", "val_sensitivity", "val_specificity", "val_vertebra_dice",
    ]  # fmt: skip
    assert by_id("val_accuracy").name == "pixel_accuracy"
    with pytest.raises(ValueError, match="unknown metric 'val_ja'"):
        by_id("val_ja")


def test_directions_and_the_key_metric_comparator():
    assert all(spec.lower_is_better == (spec.kind == ANGLES) for spec in METRICS)
    assert lower_is_better("val_smape") and lower_is_better("val_mae_angle2") and not lower_is_better("val_dice")
    smape_better = metric_comparator("val_smape")
    assert smape_better(10.0, -1) and smape_better(9.0, 10.0) and not smape_better(11.0, 10.0)
    assert metric_comparator("val_dice")(0.8, 0.7) and not metric_comparator("val_dice")(0.6, 0.7)


def test_handlers_read_the_output_keys_of_their_kind():
    handlers = validation_handlers()
    assert list(handlers) == [spec.val_id for spec in METRICS if spec.kind != VERTEBRAE]  # the spine-mask N_S's
    assert isinstance(handlers["val_mae_angle3"], metric_handlers.MAE)
    assert handlers["val_mae_angle3"].metric_fn.angle == "angle3" and handlers["val_mae"].metric_fn.angle is None
    assert isinstance(handlers["val_accuracy"], metric_handlers.PixelAccuracy)
    assert all(spec.output_keys == ("pred_angles", "angles") for spec in METRICS if spec.kind == ANGLES)
    assert all(spec.output_keys == ("pred_seg", "label") for spec in METRICS if spec.kind == SEGMENTATION)
    # without N_R only the segmentation handlers; the key metric is split off as a MONAI evaluator takes it
    assert list(validation_handlers(regress=False)) == [s.val_id for s in METRICS if s.kind == SEGMENTATION]
    key, others = validation_metrics("val_dice", regress=True)
    assert list(key) == ["val_dice"] and set(others) == set(VAL_IDS) - {"val_dice", "val_vertebra_dice"}
    with pytest.raises(ValueError, match="key metric 'val_smape' is not available"):
        validation_metrics("val_smape", regress=False)


def test_every_validation_metric_of_train_yaml_comes_from_the_registry():
    text = (CONFIGS / "train.yaml").read_text()
    assert "scripts.handlers.metric_handlers" not in text  # no literal handler list beside the registry
    for stage in "abcde":
        parser = _parser("train.yaml", f"stage_{stage}.yaml")
        key, regress = parser["key_metric_name"], parser.get_parsed_content("validate#regress")
        key_metric, others = parser.get_parsed_content("validate#metrics")
        assert list(key_metric) == [key] and key in VAL_IDS
        expected = {s.val_id for s in METRICS if (regress or s.kind != ANGLES) and s.kind != VERTEBRAE}
        assert set(key_metric) | set(others) == expected
        vertebrae = _parser("train.yaml", f"stage_{stage}.yaml", "vertebrae.yaml").get_parsed_content(
            "validate#metrics"
        )
        assert set(vertebrae[0]) | set(vertebrae[1]) == expected | {"val_vertebra_dice"}
    assert _parser("inference.yaml", "evaluate.yaml")["key_metric_name"] in VAL_IDS


def test_the_handlers_values_become_metrics_json_and_per_image_columns():
    handlers = validation_handlers()
    engine = Engine(lambda e, batch: batch)
    for name, handler in handlers.items():
        handler.attach(engine, name)
    mask = torch.zeros(1, 4, 4)
    mask[0, 1:3, 1:3] = 1
    batch = {
        "pred_angles": torch.tensor([[30.0, 10.0, 5.0], [20.0, 0.0, 20.0]]),
        "angles": torch.tensor([[32.0, 12.0, 4.0], [18.0, 2.0, 18.0]]),
        "pred_seg": torch.stack([mask, mask]),
        "label": torch.stack([mask, torch.zeros(1, 4, 4)]),
    }
    engine.run([batch], max_epochs=1)
    content = metrics_json(engine.state.metrics)
    assert list(content) == ["smape", "mae", "mae_per_angle", "jaccard", "dice", "pixel_accuracy", "sensitivity",
                             "specificity"]  # fmt: skip
    assert content["mae"] == pytest.approx(11 / 6) and content["mae_per_angle"] == pytest.approx(
        {"angle1": 2.0, "angle2": 2.0, "angle3": 1.5}
    )
    assert content["dice"] == pytest.approx(0.5) and content["pixel_accuracy"] == pytest.approx((1 + 12 / 16) / 2)
    assert metric_values(content) == pytest.approx({k: float(v) for k, v in engine.state.metrics.items()})
    rows = per_image_values(engine.state.metric_details, 2)
    assert [row["abs_err_angle1"] for row in rows] == ["2.0000", "2.0000"]
    assert [row["dice"] for row in rows] == ["1.000000", "0.000000"]
    assert list(rows[0]) == [spec.csv_column for spec in METRICS if spec.csv_column]
    with pytest.raises(ValueError, match="val_smape: 2 per-image values for 3 images"):
        per_image_values(engine.state.metric_details, 3)


def test_tables_use_the_registry_titles_in_its_order():
    header = format_results({"a": {"metrics": {"val_dice": 0.9}, "best_epoch": 1, "seconds": 60}}).splitlines()[0]
    titles = [spec.title for spec in METRICS if spec.kind != VERTEBRAE]  # the vertebra Dice only when measured
    assert header == "| stage | " + " | ".join(titles) + " | best epoch | minutes |"
    content = {"smape": 10.0, "mae": 5.0, "mae_per_angle": {"angle1": 1.0, "angle2": 2.0, "angle3": 3.0}}
    content.update({spec.name: 0.5 for spec in METRICS if spec.kind == SEGMENTATION})
    tables = format_tables(content)
    for kind in (SEGMENTATION, ANGLES):
        assert "| Method | " + " | ".join(title for _, title in table_columns(kind)) + " |" in tables


def test_the_vertebra_dice_is_built_only_for_a_vertebra_segmenter_and_scores_label_maps():
    assert "val_vertebra_dice" not in validation_handlers()
    handler = validation_handlers(regress=False, vertebrae=True)["val_vertebra_dice"]
    engine = Engine(lambda engine, batch: batch)
    handler.attach(engine, "val_vertebra_dice")
    truth = torch.zeros(1, 1, 4, 4)
    truth[0, 0, :2], truth[0, 0, 2:] = 1, 2  # T1 above T2
    pred = truth.clone()
    pred[0, 0, 2:, :2] = 1  # half of T2 called T1
    engine.run([{"pred_labels": pred, "labels": truth}])
    # T1: 2 * 8 / (12 + 8) = 0.8, T2: 2 * 4 / (4 + 8) = 2/3; the other 15 levels are absent and left out
    assert engine.state.metrics["val_vertebra_dice"] == pytest.approx((0.8 + 2 / 3) / 2)
