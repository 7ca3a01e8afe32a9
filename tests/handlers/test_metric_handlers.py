# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The metric handlers attached to a tiny Ignite engine give the hand-worked values of tests/metrics.

Angles (gt -> pred): A (40, 20, 10) -> (35, 25, 10), SMAPE 50/7, errors (5, 5, 0); Z all zero -> all zero, SMAPE 0;
W all zero -> (1, 2, 0), SMAPE 100, errors (1, 2, 0). Over A, Z, W: SMAPE 250/7, MAE 13/9, per column 2, 7/3, 0.

Masks (4x4): image 1 TP 5, FP 1, FN 1, TN 9; image 2 empty prediction (FN 6, TN 10); image 3 empty gt with 2 predicted
pixels (FP 2, TN 14); image 4 both empty. Means with 0/0 scored 1: JA 3/7, Dice 11/24, AC 27/32, SE 17/24, SP 151/160;
with 0/0 left out: JA 5/21, Dice 5/18, SE 5/12 (the derivation is in tests/metrics/test_segmentation.py).
"""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine
from monai.bundle import ConfigParser
from monai.handlers import from_engine

from scripts.handlers.metric_handlers import (
    MAE,
    SMAPE,
    Dice,
    Jaccard,
    PixelAccuracy,
    Sensitivity,
    Specificity,
)

GT_ANGLES = [[[40.0, 20.0, 10.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]  # two iterations: images A, Z then W
PRED_ANGLES = [[[35.0, 25.0, 10.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0]]]

GT_1 = [[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
PRED_1 = [[0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
EMPTY = [[0] * 4 for _ in range(4)]
PRED_3 = [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
LABELS = [[GT_1, GT_1], [EMPTY, EMPTY]]  # two iterations: images 1, 2 then 3, 4
PREDS = [[PRED_1, EMPTY], [PRED_3, EMPTY]]


def _angle_batches() -> list[dict[str, torch.Tensor]]:
    """Two batched iteration outputs of angles, as a MONAI evaluator keeps them without decollation."""
    return [
        {"pred_angles": torch.tensor(pred), "angles": torch.tensor(gt)}
        for pred, gt in zip(PRED_ANGLES, GT_ANGLES, strict=True)
    ]


def _mask_batches() -> list[dict[str, torch.Tensor]]:
    """Two batched iteration outputs of (B, 1, 4, 4) masks."""
    return [
        {
            "pred": torch.tensor(pred, dtype=torch.float32).unsqueeze(1),
            "label": torch.tensor(label, dtype=torch.float32).unsqueeze(1),
        }
        for pred, label in zip(PREDS, LABELS, strict=True)
    ]


def _decollate(batches: list[dict[str, torch.Tensor]]) -> list[list[dict[str, torch.Tensor]]]:
    """The same outputs as lists of per-image dicts, as MONAI evaluators hand them to handlers after postprocessing."""
    return [[dict(zip(batch, items, strict=True)) for items in zip(*batch.values(), strict=True)] for batch in batches]


def _run(outputs: list, handlers: dict, max_epochs: int = 1) -> Engine:
    engine = Engine(lambda _engine, output: output)
    for name, handler in handlers.items():
        handler.attach(engine, name)
    engine.run(outputs, max_epochs=max_epochs)
    return engine


def _angle_handlers() -> dict:
    transform = from_engine(["pred_angles", "angles"])
    return {
        "smape": SMAPE(output_transform=transform),
        "mae": MAE(output_transform=transform),
        "mae_angle1": MAE(angle="angle1", output_transform=transform),
        "mae_angle2": MAE(angle="angle2", output_transform=transform),
        "mae_angle3": MAE(angle="angle3", output_transform=transform),
    }


def _segmentation_handlers(ignore_empty: bool) -> dict:
    transform = from_engine(["pred", "label"])
    return {
        name: handler(ignore_empty=ignore_empty, output_transform=transform)
        for name, handler in [
            ("jaccard", Jaccard),
            ("dice", Dice),
            ("accuracy", PixelAccuracy),
            ("sensitivity", Sensitivity),
            ("specificity", Specificity),
        ]
    }


@pytest.mark.parametrize("outputs", [_angle_batches(), _decollate(_angle_batches())], ids=["batched", "decollated"])
def test_angle_handlers(outputs):
    # two epochs: the handlers must reset between them rather than accumulate both
    engine = _run(outputs, _angle_handlers(), max_epochs=2)
    metrics = engine.state.metrics
    assert metrics["smape"] == pytest.approx(250 / 7, rel=1e-6)
    assert metrics["mae"] == pytest.approx(13 / 9, rel=1e-6)
    assert metrics["mae_angle1"] == pytest.approx(2.0, rel=1e-6)
    assert metrics["mae_angle2"] == pytest.approx(7 / 3, rel=1e-6)
    assert metrics["mae_angle3"] == pytest.approx(0.0, abs=1e-9)
    details = engine.state.metric_details
    torch.testing.assert_close(details["smape"], torch.tensor([[50 / 7], [0.0], [100.0]]))
    torch.testing.assert_close(details["mae"], torch.tensor([[5.0, 5.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 0.0]]))
    torch.testing.assert_close(details["mae_angle2"], torch.tensor([[5.0], [0.0], [2.0]]))


@pytest.mark.parametrize("outputs", [_mask_batches(), _decollate(_mask_batches())], ids=["batched", "decollated"])
def test_segmentation_handlers_score_empty_as_one(outputs):
    engine = _run(outputs, _segmentation_handlers(ignore_empty=False))
    expected = {
        "jaccard": 3 / 7,
        "dice": 11 / 24,
        "accuracy": 27 / 32,
        "sensitivity": 17 / 24,
        "specificity": 151 / 160,
    }
    for name, value in expected.items():
        assert engine.state.metrics[name] == pytest.approx(value, rel=1e-6), name
    torch.testing.assert_close(engine.state.metric_details["jaccard"], torch.tensor([[5 / 7], [0.0], [0.0], [1.0]]))


def test_segmentation_handlers_ignore_empty():
    engine = _run(_mask_batches(), _segmentation_handlers(ignore_empty=True))
    expected = {"jaccard": 5 / 21, "dice": 5 / 18, "accuracy": 27 / 32, "sensitivity": 5 / 12, "specificity": 151 / 160}
    for name, value in expected.items():
        assert engine.state.metrics[name] == pytest.approx(value, rel=1e-6), name
    sensitivity = engine.state.metric_details["sensitivity"]
    assert torch.isnan(sensitivity[2:]).all()
    assert sensitivity[0, 0].item() == pytest.approx(5 / 6)


def test_save_details_off_leaves_no_details():
    engine = _run(
        _angle_batches(), {"smape": SMAPE(output_transform=from_engine(["pred_angles", "angles"]), save_details=False)}
    )
    assert engine.state.metrics["smape"] == pytest.approx(250 / 7, rel=1e-6)
    assert "smape" not in getattr(engine.state, "metric_details", {})


def test_handlers_build_from_a_bundle_config():
    parser = ConfigParser(
        {
            "smape": {
                "_target_": "scripts.handlers.metric_handlers.SMAPE",
                "output_transform": "$monai.handlers.from_engine(['pred_angles', 'angles'])",
            },
            "mae_angle2": {
                "_target_": "scripts.handlers.metric_handlers.MAE",
                "angle": "angle2",
                "output_transform": "$monai.handlers.from_engine(['pred_angles', 'angles'])",
            },
            "dice": {
                "_target_": "scripts.handlers.metric_handlers.Dice",
                "output_transform": "$monai.handlers.from_engine(['pred', 'label'])",
            },
        }
    )
    angle_handlers = {name: parser.get_parsed_content(name) for name in ("smape", "mae_angle2")}
    metrics = _run(_decollate(_angle_batches()), angle_handlers).state.metrics
    assert metrics["smape"] == pytest.approx(250 / 7, rel=1e-6)
    assert metrics["mae_angle2"] == pytest.approx(7 / 3, rel=1e-6)
    metrics = _run(_mask_batches(), {"dice": parser.get_parsed_content("dice")}).state.metrics
    assert metrics["dice"] == pytest.approx(11 / 24, rel=1e-6)


def test_mae_handler_rejects_unknown_angle():
    with pytest.raises(ValueError, match="angle must be None or one of"):
        MAE(angle="MT")
