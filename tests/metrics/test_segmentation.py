# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the spine-mask scores on 4x4 masks whose pixel counts are worked out by hand.

Image 1 (overlap)::

    gt          pred
    0 1 1 0     0 1 1 1
    0 1 1 0     0 1 0 0
    0 1 1 0     0 1 1 0
    0 0 0 0     0 0 0 0

  TP 5, FP 1 (row 0, col 3), FN 1 (row 1, col 2), TN 16 - 7 = 9.
  JA 5/7, Dice 10/12 = 5/6, AC 14/16 = 7/8, SE 5/6, SP 9/10.
Image 2 (empty prediction, gt of image 1): TP 0, FP 0, FN 6, TN 10.
  JA 0, Dice 0, AC 10/16 = 5/8, SE 0, SP 1.
Image 3 (empty gt, two predicted pixels): TP 0, FP 2, FN 0, TN 14.
  JA 0/2 = 0, Dice 0, AC 14/16 = 7/8, SE 0/0, SP 14/16 = 7/8.
Image 4 (both empty): JA 0/0, Dice 0/0, AC 1, SE 0/0, SP 1.

Means over images 1..4 with 0/0 scored 1: JA (5/7 + 1) / 4 = 3/7, Dice (5/6 + 1) / 4 = 11/24, AC 27/32,
SE (5/6 + 0 + 1 + 1) / 4 = 17/24, SP (9/10 + 1 + 7/8 + 1) / 4 = 151/160.
With 0/0 left out: JA (5/7) / 3 = 5/21, Dice (5/6) / 3 = 5/18, SE (5/6 + 0) / 2 = 5/12, AC and SP unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scripts.metrics.segmentation import (
    SEGMENTATION_METRICS,
    SpineSegmentationMetric,
    SpineSegmentationMetrics,
    segmentation_scores,
)

GT_1 = [[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
PRED_1 = [[0, 1, 1, 1], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
EMPTY = [[0] * 4 for _ in range(4)]
PRED_3 = [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
FULL = [[1] * 4 for _ in range(4)]

NAN = float("nan")
PER_IMAGE = {  # images 1..4, NaN where the ratio is 0/0
    "jaccard": [5 / 7, 0.0, 0.0, NAN],
    "dice": [5 / 6, 0.0, 0.0, NAN],
    "accuracy": [7 / 8, 5 / 8, 7 / 8, 1.0],
    "sensitivity": [5 / 6, 0.0, NAN, NAN],
    "specificity": [9 / 10, 1.0, 7 / 8, 1.0],
}
MEAN_EMPTY_IS_ONE = {
    "jaccard": 3 / 7,
    "dice": 11 / 24,
    "accuracy": 27 / 32,
    "sensitivity": 17 / 24,
    "specificity": 151 / 160,
}
MEAN_EMPTY_IGNORED = {
    "jaccard": 5 / 21,
    "dice": 5 / 18,
    "accuracy": 27 / 32,
    "sensitivity": 5 / 12,
    "specificity": 151 / 160,
}


def batch(*masks: list[list[int]]) -> torch.Tensor:
    """(B, 1, 4, 4) float mask from 4x4 lists."""
    return torch.tensor(masks, dtype=torch.float32).unsqueeze(1)


def one_hot(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 2, H, W), channel 1 the spine."""
    return torch.cat([1 - mask, mask], dim=1)


Y_PRED = batch(PRED_1, EMPTY, PRED_3, EMPTY)
Y = batch(GT_1, GT_1, EMPTY, EMPTY)


def assert_scores(actual: dict[str, torch.Tensor], expected: dict[str, list[float]]) -> None:
    assert list(actual) == list(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(actual[name].numpy(), values, rtol=1e-6, err_msg=name)


def test_names_follow_table_2():
    assert SEGMENTATION_METRICS == ("jaccard", "dice", "accuracy", "sensitivity", "specificity")


def test_per_image_scores_with_empty_masks_ignored():
    assert_scores(segmentation_scores(Y_PRED, Y, ignore_empty=True), PER_IMAGE)


def test_per_image_scores_with_zero_over_zero_as_one():
    expected = {name: [1.0 if math.isnan(v) else v for v in values] for name, values in PER_IMAGE.items()}
    assert_scores(segmentation_scores(Y_PRED, Y), expected)


def test_ground_truth_covering_the_image_makes_specificity_zero_over_zero():
    full = batch(FULL)
    assert_scores(segmentation_scores(full, full), {name: [1.0] for name in SEGMENTATION_METRICS})
    assert math.isnan(segmentation_scores(full, full, "specificity", ignore_empty=True)["specificity"].item())


@pytest.mark.parametrize(
    "convert",
    [
        lambda p, y: (one_hot(p), one_hot(y)),
        lambda p, y: (one_hot(p), y),
        lambda p, y: (p.bool(), y.numpy()),
        lambda p, y: (p.numpy().astype(np.uint8), one_hot(y).numpy()),
    ],
    ids=["one-hot", "mixed", "bool-and-numpy", "uint8-and-one-hot-numpy"],
)
def test_input_forms_give_the_same_scores(convert):
    y_pred, y = convert(Y_PRED, Y)
    assert_scores(segmentation_scores(y_pred, y, ignore_empty=True), PER_IMAGE)


def test_metric_name_subset_keeps_order():
    scores = segmentation_scores(Y_PRED, Y, metric_name=["specificity", "jaccard"])
    assert list(scores) == ["specificity", "jaccard"]


def test_metrics_class_means_over_images_accumulated_across_calls():
    metric = SpineSegmentationMetrics()
    metric(y_pred=Y_PRED[:2], y=Y[:2])
    metric(y_pred=[Y_PRED[2], Y_PRED[3]], y=[Y[2], Y[3]])  # the decollated form: a list of (1, H, W)
    result = metric.aggregate()
    assert list(result) == list(SEGMENTATION_METRICS)
    for name, value in MEAN_EMPTY_IS_ONE.items():
        assert result[name].item() == pytest.approx(value, rel=1e-6), name
    assert metric.get_buffer().shape == (4, 5)


def test_metrics_class_leaves_empty_masks_out_when_asked():
    metric = SpineSegmentationMetrics(ignore_empty=True)
    metric(y_pred=Y_PRED, y=Y)
    result = metric.aggregate()
    for name, value in MEAN_EMPTY_IGNORED.items():
        assert result[name].item() == pytest.approx(value, rel=1e-6), name
    # the per-image buffer keeps its NaNs after aggregation (do_metric_reduction zeroes its input in place)
    assert math.isnan(metric.get_buffer()[3, 0].item())
    per_image = metric.aggregate("none")
    assert math.isnan(per_image["jaccard"][3, 0].item())
    assert per_image["jaccard"][0, 0].item() == pytest.approx(5 / 7)


def test_mean_over_no_defined_value_is_nan():
    metric = SpineSegmentationMetric("jaccard", ignore_empty=True)
    metric(y_pred=batch(EMPTY), y=batch(EMPTY))
    assert math.isnan(metric.aggregate().item())


def test_single_metric_class_returns_a_tensor():
    metric = SpineSegmentationMetric("dice")
    metric(y_pred=Y_PRED, y=Y)
    value = metric.aggregate()
    assert isinstance(value, torch.Tensor)
    assert value.item() == pytest.approx(11 / 24, rel=1e-6)
    assert metric.get_buffer().shape == (4, 1)


@pytest.mark.parametrize(
    ("y_pred", "message"),
    [
        (torch.full((1, 1, 4, 4), 0.5), r"y_pred must hold only 0 and 1.*got values in \[0.5, 0.5\]"),
        (torch.zeros(1, 3, 4, 4), r"y_pred must have shape \(B, 1, H, W\).*got \(1, 3, 4, 4\)"),
        (torch.zeros(1, 4, 4), r"y_pred must have shape .*got \(1, 4, 4\)"),
        (torch.ones(1, 2, 4, 4), "y_pred has 2 channels but is not one-hot"),
        (torch.zeros(1, 1, 4, 5), r"same batch and pixels.*\(1, 1, 4, 5\).*\(1, 1, 4, 4\)"),
    ],
    ids=["probabilities", "three-channels", "no-channel", "not-one-hot", "size-mismatch"],
)
def test_bad_masks_are_rejected(y_pred, message):
    with pytest.raises(ValueError, match=message):
        segmentation_scores(y_pred, batch(GT_1))


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match=r"metric_name must be one or more of.*'JA'"):
        SpineSegmentationMetrics(metric_name=["jaccard", "JA"])
    with pytest.raises(ValueError, match="must not repeat"):
        SpineSegmentationMetrics(metric_name=["dice", "dice"])
    with pytest.raises(TypeError, match="metric_name must be one name"):
        SpineSegmentationMetric(["dice", "jaccard"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction must be one of"):
        SpineSegmentationMetrics(reduction="median")
    with pytest.raises(ValueError, match="no values to aggregate"):
        SpineSegmentationMetrics().aggregate()
