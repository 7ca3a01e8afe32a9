# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Ignite metric handlers for the Cobb angles and the spine masks: thin wrappers of ``scripts.metrics``.

Each handler is a :class:`monai.handlers.IgniteMetricHandler`, like MONAI's own ``MeanDice``: attach it to an engine (or
list it under ``val_key_metric`` / ``additional_metrics`` of a MONAI evaluator) and ``engine.state.metrics[name]`` holds
the value at the end of each run; with ``save_details`` the per-image values go to ``engine.state.metric_details[name]``
for :class:`monai.handlers.MetricsSaver`. In a bundle config::

    val_key_metric:
      val_smape:
        _target_: scripts.handlers.metric_handlers.SMAPE
        output_transform: "$monai.handlers.from_engine(['pred_angles', 'angles'])"

Angle handlers take ``(B, 3)`` degrees (or lists of ``(3,)``, as ``from_engine`` gives after decollation); segmentation
handlers take binary ``(B, 1, H, W)`` or one-hot ``(B, 2, H, W)`` masks (or lists of ``(C, H, W)``).
"""

from __future__ import annotations

from collections.abc import Callable

from monai.handlers import IgniteMetricHandler

from scripts.metrics.angles import MAEMetric, SMAPEMetric
from scripts.metrics.segmentation import SpineSegmentationMetric

__all__ = ["MAE", "SMAPE", "Dice", "Jaccard", "PixelAccuracy", "Sensitivity", "Specificity"]


def _identity(output: object) -> object:
    return output


class SMAPE(IgniteMetricHandler):
    """SMAPE of the three Cobb angles in percent, the AASCE 2019 challenge metric (lower is better).

    Wraps :class:`scripts.metrics.angles.SMAPEMetric`: the mean over images of ``100 * sum|gt - pred| / sum(gt + pred)``
    over the three angles; an all-zero image with an all-zero prediction scores 0.

    Args:
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred_angles", "angles"])``.
        save_details: whether to store the ``(N, 1)`` per-image SMAPE in ``engine.state.metric_details``.
    """

    def __init__(self, output_transform: Callable = _identity, save_details: bool = True) -> None:
        super().__init__(metric_fn=SMAPEMetric(), output_transform=output_transform, save_details=save_details)


class MAE(IgniteMetricHandler):
    """Mean absolute error of the Cobb angles in degrees, overall or for one column (lower is better).

    Wraps :class:`scripts.metrics.angles.MAEMetric`.

    Args:
        angle: None for the mean over all three angles, or ``"angle1"`` (the largest angle), ``"angle2"`` or
            ``"angle3"`` for that column alone.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``.
        save_details: whether to store the per-image absolute errors, ``(N, 3)`` or ``(N, 1)`` for one ``angle``, in
            ``engine.state.metric_details``.

    Raises:
        ValueError: when ``angle`` is not None or one of the three names.
    """

    def __init__(
        self, angle: str | None = None, output_transform: Callable = _identity, save_details: bool = True
    ) -> None:
        super().__init__(metric_fn=MAEMetric(angle=angle), output_transform=output_transform, save_details=save_details)


class _SpineSegmentationHandler(IgniteMetricHandler):
    """Shared constructor: one score of :class:`scripts.metrics.segmentation.SpineSegmentationMetric`."""

    metric_name: str = ""

    def __init__(
        self, ignore_empty: bool = False, output_transform: Callable = _identity, save_details: bool = True
    ) -> None:
        metric_fn = SpineSegmentationMetric(metric_name=self.metric_name, ignore_empty=ignore_empty)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class Jaccard(_SpineSegmentationHandler):
    """Mean per-image Jaccard index (JA, ``TP / (TP + FP + FN)``) of the spine masks (higher is better).

    Args:
        ignore_empty: False (default) to score an image where the ratio is 0/0 (both masks empty) as 1.0; True to
            leave it out of the mean.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to store the ``(N, 1)`` per-image scores in ``engine.state.metric_details``.
    """

    metric_name = "jaccard"


class Dice(_SpineSegmentationHandler):
    """Mean per-image Dice coefficient (``2TP / (2TP + FP + FN)``) of the spine masks (higher is better).

    Args:
        ignore_empty: False (default) to score an image where the ratio is 0/0 (both masks empty) as 1.0; True to
            leave it out of the mean.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to store the ``(N, 1)`` per-image scores in ``engine.state.metric_details``.
    """

    metric_name = "dice"


class PixelAccuracy(_SpineSegmentationHandler):
    """Mean per-image pixel accuracy (AC, ``(TP + TN) / pixels``) of the spine masks (higher is better).

    Args:
        ignore_empty: accepted for symmetry with the other segmentation handlers; pixel accuracy is never 0/0.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to store the ``(N, 1)`` per-image scores in ``engine.state.metric_details``.
    """

    metric_name = "accuracy"


class Sensitivity(_SpineSegmentationHandler):
    """Mean per-image sensitivity (SE, ``TP / (TP + FN)``) of the spine masks (higher is better).

    Args:
        ignore_empty: False (default) to score an image where the ratio is 0/0 (no spine in the ground truth) as 1.0;
            True to leave it out of the mean.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to store the ``(N, 1)`` per-image scores in ``engine.state.metric_details``.
    """

    metric_name = "sensitivity"


class Specificity(_SpineSegmentationHandler):
    """Mean per-image specificity (SP, ``TN / (TN + FP)``) of the spine masks (higher is better).

    Args:
        ignore_empty: False (default) to score an image where the ratio is 0/0 (a ground truth that is all spine) as
            1.0; True to leave it out of the mean.
        output_transform: extracts ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to store the ``(N, 1)`` per-image scores in ``engine.state.metric_details``.
    """

    metric_name = "specificity"
