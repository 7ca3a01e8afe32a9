# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the Cobb angle metrics against values worked out by hand.

The three images used throughout (gt -> pred, degrees):

- A: (40, 20, 10) -> (35, 25, 10). Absolute errors 5, 5, 0 (sum 10); gt + pred 75, 45, 20 (sum 140).
  SMAPE = 100 * 10 / 140 = 50/7 %.
- Z: (0, 0, 0) -> (0, 0, 0). 0/0, defined as a perfect 0 %.
- W: (0, 0, 0) -> (1, 2, 0). Errors 1, 2, 0 (sum 3); gt + pred sum 3. SMAPE = 100 %.

Over A, Z, W: SMAPE = (50/7 + 0 + 100) / 3 = 250/7; MAE per column (5+0+1)/3 = 2, (5+0+2)/3 = 7/3, 0;
overall 13/9.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scripts.metrics.angles import (
    ANGLE_NAMES,
    MAEMetric,
    SMAPEMetric,
    absolute_errors,
    mae,
    mae_per_angle,
    smape,
    smape_per_image,
)

GT_A, PRED_A = [40.0, 20.0, 10.0], [35.0, 25.0, 10.0]
GT_Z, PRED_Z = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
GT_W, PRED_W = [0.0, 0.0, 0.0], [1.0, 2.0, 0.0]


def test_angle_names_are_honest_columns():
    assert ANGLE_NAMES == ("angle1", "angle2", "angle3")


def test_smape_two_images_one_all_zero_in_both():
    y = np.array([GT_A, GT_Z])
    y_pred = np.array([PRED_A, PRED_Z])
    # (50/7 + 0) / 2
    assert smape(y_pred, y) == pytest.approx(25 / 7, rel=1e-12)
    per_image = smape_per_image(y_pred, y)
    assert isinstance(per_image, np.ndarray)
    np.testing.assert_allclose(per_image, [50 / 7, 0.0], rtol=1e-12)


def test_smape_two_images_zero_gt_nonzero_pred():
    y = torch.tensor([GT_A, GT_W])
    y_pred = torch.tensor([PRED_A, PRED_W])
    # (50/7 + 100) / 2
    assert smape(y_pred, y) == pytest.approx(375 / 7, rel=1e-6)
    per_image = smape_per_image(y_pred, y)
    assert isinstance(per_image, torch.Tensor)
    torch.testing.assert_close(per_image, torch.tensor([50 / 7, 100.0]))


def test_smape_perfect_and_symmetric_in_its_denominator():
    assert smape([[30.0, 10.0, 5.0]], [[30.0, 10.0, 5.0]]) == 0.0
    # gt (10, 0, 0), pred (30, 0, 0): 100 * 20 / 40 = 50, whichever is the ground truth.
    assert smape([[30.0, 0.0, 0.0]], [[10.0, 0.0, 0.0]]) == pytest.approx(50.0)
    assert smape([[10.0, 0.0, 0.0]], [[30.0, 0.0, 0.0]]) == pytest.approx(50.0)


def test_smape_accepts_integer_arrays():
    assert smape(np.array([[35, 25, 10]]), np.array([[40, 20, 10]])) == pytest.approx(50 / 7)


def test_mae_overall_and_per_column():
    y = np.array([GT_A, GT_Z, GT_W])
    y_pred = np.array([PRED_A, PRED_Z, PRED_W])
    assert mae(y_pred, y) == pytest.approx(13 / 9)
    per_angle = mae_per_angle(y_pred, y)
    assert list(per_angle) == ["angle1", "angle2", "angle3"]
    assert per_angle["angle1"] == pytest.approx(2.0)
    assert per_angle["angle2"] == pytest.approx(7 / 3)
    assert per_angle["angle3"] == pytest.approx(0.0)
    np.testing.assert_allclose(absolute_errors(y_pred, y), [[5, 5, 0], [0, 0, 0], [1, 2, 0]])


def test_mae_accepts_negative_values():
    # MAE has no positivity requirement: |-2 - 1| = 3 on one of three angles.
    assert mae([[-2.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]) == pytest.approx(1.0)


def re_shape(shape: tuple[int, ...]) -> str:
    """A regex matching how a shape tuple prints."""
    return r"\(" + r", ".join(str(s) for s in shape) + (r",\)" if len(shape) == 1 else r"\)")


@pytest.mark.parametrize(
    "bad",
    [np.zeros(3), np.zeros((2, 4)), np.zeros((2, 3, 1)), np.zeros((0, 3)), np.zeros((2, 2))],
    ids=["1d", "four-columns", "3d", "empty-batch", "two-columns"],
)
def test_wrong_shapes_are_rejected_with_the_shape(bad):
    with pytest.raises(ValueError, match=r"y_pred must have shape \(B, 3\).*got " + re_shape(bad.shape)):
        smape(bad, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"y must have shape \(B, 3\)"):
        mae(np.ones((2, 3)), bad)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"same shape.*\(2, 3\).*\(1, 3\)"):
        smape(np.ones((2, 3)), np.ones((1, 3)))


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_nan_and_inf_are_rejected(bad_value):
    values = np.ones((3, 3))
    values[1, 2] = bad_value
    with pytest.raises(ValueError, match=r"y contains NaN or infinite values in rows \[1\]"):
        smape(np.ones((3, 3)), values)
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        mae(torch.tensor(values), torch.ones(3, 3))


def test_negative_angles_are_rejected_by_smape():
    with pytest.raises(ValueError, match="y_pred contains negative angles"):
        smape([[-1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]])


def test_smape_metric_accumulates_batches_and_lists():
    metric = SMAPEMetric()
    metric(y_pred=torch.tensor([PRED_A, PRED_Z]), y=torch.tensor([GT_A, GT_Z]))
    # the decollated form: a list of (3,) tensors
    metric(y_pred=[torch.tensor(PRED_W)], y=[torch.tensor(GT_W)])
    assert metric.aggregate().item() == pytest.approx(250 / 7, rel=1e-6)
    torch.testing.assert_close(metric.get_buffer(), torch.tensor([[50 / 7], [0.0], [100.0]]))
    torch.testing.assert_close(metric.aggregate("none"), torch.tensor([[50 / 7], [0.0], [100.0]]))
    metric.reset()
    metric(y_pred=torch.tensor([PRED_Z]), y=torch.tensor([GT_Z]))
    assert metric.aggregate().item() == 0.0


def test_smape_metric_rejects_bad_input_and_empty_buffer():
    metric = SMAPEMetric()
    with pytest.raises(ValueError, match="no values to aggregate"):
        metric.aggregate()
    with pytest.raises(ValueError, match=r"shape \(B, 3\).*got \(2, 4\)"):
        metric(y_pred=torch.zeros(2, 4), y=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        metric(y_pred=torch.tensor([[float("nan"), 1.0, 1.0]]), y=torch.ones(1, 3))
    with pytest.raises(ValueError, match="reduction"):
        SMAPEMetric(reduction="median")


def test_mae_metric_overall_per_column_and_one_column():
    metric = MAEMetric()
    metric(y_pred=torch.tensor([PRED_A, PRED_Z]), y=torch.tensor([GT_A, GT_Z]))
    metric(y_pred=torch.tensor([PRED_W]), y=torch.tensor([GT_W]))
    assert metric.aggregate().item() == pytest.approx(13 / 9, rel=1e-6)
    torch.testing.assert_close(metric.aggregate("mean_batch"), torch.tensor([2.0, 7 / 3, 0.0]))
    per_angle = metric.per_angle()
    assert list(per_angle) == ["angle1", "angle2", "angle3"]
    assert [round(v.item(), 6) for v in per_angle.values()] == [2.0, round(7 / 3, 6), 0.0]

    column = MAEMetric(angle="angle2")
    column(y_pred=torch.tensor([PRED_A, PRED_Z, PRED_W]), y=torch.tensor([GT_A, GT_Z, GT_W]))
    assert column.aggregate().item() == pytest.approx(7 / 3, rel=1e-6)
    torch.testing.assert_close(column.get_buffer(), torch.tensor([[5.0], [0.0], [2.0]]))
    assert list(column.per_angle()) == ["angle2"]


@pytest.mark.parametrize("angle", ["PT", "angle0", 1])
def test_mae_metric_rejects_unknown_angle(angle):
    with pytest.raises(ValueError, match="angle must be None or one of"):
        MAEMetric(angle=angle)


def test_smape_of_mean_prediction_is_plausible():
    # A sanity anchor independent of the hand cases: predicting 20 for gt 10 on every angle is |10| / 30 = 33.3 %.
    y = np.full((5, 3), 10.0)
    assert math.isclose(smape(np.full((5, 3), 20.0), y), 100 / 3, rel_tol=1e-12)
