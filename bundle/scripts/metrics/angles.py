# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Regression metrics for the three Cobb angles: SMAPE (the AASCE 2019 challenge metric) and MAE.

Inputs are ``(B, 3)`` angles in degrees, one row per image. The columns are named :data:`ANGLE_NAMES`
(``"angle1"``, ``"angle2"``, ``"angle3"``): in the AASCE labels column 1 is always the largest angle of the spine
and the official Cobb rule decides which curve the other two measure, so they are not fixed regions (PT, MT, TL).

Two layers, as in MONAI: pure functions (:func:`smape`, :func:`smape_per_image`, :func:`mae`, :func:`mae_per_angle`)
that take numpy arrays or torch tensors, and :class:`~monai.metrics.CumulativeIterationMetric` classes
(:class:`SMAPEMetric`, :class:`MAEMetric`) that accumulate per-image values over iterations for the Ignite handlers in
``scripts.handlers.metric_handlers``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction

from scripts.data.cobb import ANGLE_NAMES
from scripts.metrics.reduction import check_reduction

__all__ = [
    "ANGLE_NAMES",
    "MAEMetric",
    "SMAPEMetric",
    "absolute_errors",
    "mae",
    "mae_per_angle",
    "mean_predictor_scores",
    "smape",
    "smape_per_image",
]

ArrayLike = np.ndarray | torch.Tensor | Sequence[Sequence[float]]


def _as_angles(value: ArrayLike | None, name: str) -> torch.Tensor:
    """Return ``value`` as a floating tensor of shape ``(B, 3)`` with only finite entries.

    Raises:
        ValueError: when the shape is not ``(B, 3)`` with ``B >= 1``, or when an entry is NaN or infinite.
    """
    if value is None:
        raise ValueError(f"{name} is required, got None.")
    tensor = torch.as_tensor(value).detach()
    if not tensor.is_floating_point():
        tensor = tensor.float()
    if tensor.ndim != 2 or tensor.shape[1] != len(ANGLE_NAMES) or tensor.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (B, 3), one row of three Cobb angles per image, got {tuple(tensor.shape)}."
        )
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        rows = torch.nonzero(~finite.all(dim=1)).flatten().tolist()
        raise ValueError(f"{name} contains NaN or infinite values in rows {rows}.")
    return tensor


def _as_pair(y_pred: ArrayLike | None, y: ArrayLike | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Check both angle arrays and bring them to one dtype and device."""
    pred = _as_angles(y_pred, "y_pred")
    target = _as_angles(y, "y")
    if pred.shape != target.shape:
        raise ValueError(f"y_pred and y must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}.")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    return pred.to(dtype), target.to(device=pred.device, dtype=dtype)


def _smape_rows(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SMAPE in percent, ``(B, 3), (B, 3) -> (B,)``, for checked non-negative inputs."""
    numerator = (target - pred).abs().sum(dim=1)
    denominator = (target + pred).sum(dim=1)
    # With non-negative angles the denominator is 0 only when every angle of the image is 0 in both arrays: a perfect
    # prediction, scored 0 rather than the 0/0 the formula gives.
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, numerator / safe, torch.zeros_like(numerator)) * 100.0


def _check_non_negative(pred: torch.Tensor, target: torch.Tensor) -> None:
    for name, tensor in (("y_pred", pred), ("y", target)):
        if bool((tensor < 0).any()):
            raise ValueError(
                f"{name} contains negative angles (min {tensor.min().item():.4g}): Cobb angles are non-negative, and "
                "SMAPE's denominator sum(gt + pred) has no meaning otherwise."
            )


def smape_per_image(y_pred: ArrayLike, y: ArrayLike) -> np.ndarray | torch.Tensor:
    """SMAPE of every image, in percent, as the AASCE 2019 challenge defines it.

    For image ``i``: ``100 * sum_k |y[i, k] - y_pred[i, k]| / sum_k (y[i, k] + y_pred[i, k])`` over the three
    angles ``k``.
    An image whose ground truth and prediction are all zero (0/0) scores 0, a perfect prediction; an image whose ground
    truth is all zero and prediction is not scores 100.

    Args:
        y_pred: predicted angles in degrees, shape ``(B, 3)``.
        y: ground truth angles in degrees, shape ``(B, 3)``.

    Returns:
        ``(B,)`` values in ``[0, 100]``; a numpy array when ``y_pred`` is one, a tensor otherwise.

    Raises:
        ValueError: when a shape is not ``(B, 3)``, the shapes differ, or a value is NaN, infinite or negative.
    """
    pred, target = _as_pair(y_pred, y)
    _check_non_negative(pred, target)
    values = _smape_rows(pred, target)
    return values.cpu().numpy() if isinstance(y_pred, np.ndarray) else values


def smape(y_pred: ArrayLike, y: ArrayLike) -> float:
    """Symmetric mean absolute percentage error (the AASCE 2019 challenge metric), in percent.

    The mean over images of :func:`smape_per_image` (per image: sum of absolute errors over the three angles divided by
    the sum of ground truth plus prediction over the three angles), times 100. Images with all-zero ground truth and
    prediction count as 0 (perfect).

    Args:
        y_pred: predicted angles in degrees, shape ``(B, 3)``, numpy or torch.
        y: ground truth angles in degrees, shape ``(B, 3)``.

    Returns:
        The SMAPE in percent.

    Raises:
        ValueError: when a shape is not ``(B, 3)``, the shapes differ, or a value is NaN, infinite or negative.
    """
    pred, target = _as_pair(y_pred, y)
    _check_non_negative(pred, target)
    return float(_smape_rows(pred, target).mean())


def absolute_errors(y_pred: ArrayLike, y: ArrayLike) -> np.ndarray | torch.Tensor:
    """Absolute error of every angle of every image, ``(B, 3), (B, 3) -> (B, 3)`` degrees.

    Returns a numpy array when ``y_pred`` is one, a tensor otherwise.

    Raises:
        ValueError: when a shape is not ``(B, 3)``, the shapes differ, or a value is NaN or infinite.
    """
    pred, target = _as_pair(y_pred, y)
    errors = (pred - target).abs()
    return errors.cpu().numpy() if isinstance(y_pred, np.ndarray) else errors


def mae(y_pred: ArrayLike, y: ArrayLike) -> float:
    """Mean absolute error in degrees over all images and all three angles.

    Args:
        y_pred: predicted angles in degrees, shape ``(B, 3)``, numpy or torch.
        y: ground truth angles in degrees, shape ``(B, 3)``.

    Raises:
        ValueError: when a shape is not ``(B, 3)``, the shapes differ, or a value is NaN or infinite.
    """
    pred, target = _as_pair(y_pred, y)
    return float((pred - target).abs().mean())


def mae_per_angle(y_pred: ArrayLike, y: ArrayLike) -> dict[str, float]:
    """Mean absolute error in degrees of each column, keyed by :data:`ANGLE_NAMES`.

    Args:
        y_pred: predicted angles in degrees, shape ``(B, 3)``, numpy or torch.
        y: ground truth angles in degrees, shape ``(B, 3)``.

    Returns:
        ``{"angle1": ..., "angle2": ..., "angle3": ...}``.

    Raises:
        ValueError: when a shape is not ``(B, 3)``, the shapes differ, or a value is NaN or infinite.
    """
    pred, target = _as_pair(y_pred, y)
    column_means = (pred - target).abs().mean(dim=0)
    return {name: float(value) for name, value in zip(ANGLE_NAMES, column_means, strict=True)}


def mean_predictor_scores(train: Sequence[Mapping], val: Sequence[Mapping]) -> dict[str, float] | None:
    """The floor a model must beat: every validation image predicted as the training records' mean angles.

    Args:
        train: records with ``angles`` (3 degrees each), whose mean is the prediction.
        val: records with ``angles`` that are scored.

    Returns:
        ``val_smape`` (percent), ``val_mae`` and ``val_mae_<angle>`` (degrees), the keys of the validation metrics; None
        when either list is empty or a record has no angles (a MONAI Label datastore of image-label pairs).
    """
    if not train or not val or not all("angles" in record for record in [*train, *val]):
        return None
    truth = np.array([record["angles"] for record in val], dtype=np.float64)  # (N_val, 3)
    mean = np.array([record["angles"] for record in train], dtype=np.float64).mean(axis=0)  # (3,)
    prediction = np.broadcast_to(mean, truth.shape).copy()
    scores = {"val_smape": smape(prediction, truth), "val_mae": mae(prediction, truth)}
    scores.update({f"val_mae_{name}": value for name, value in mae_per_angle(prediction, truth).items()})
    return scores


class SMAPEMetric(CumulativeIterationMetric):
    """SMAPE of the three Cobb angles (AASCE 2019 challenge metric), accumulated over iterations.

    Every call stores the per-image SMAPE in percent (see :func:`smape_per_image`; all-zero ground truth and prediction
    score 0, all-zero ground truth with a non-zero prediction scores 100); :meth:`aggregate` reduces them, by default
    to their mean, which is the challenge's SMAPE. ``get_buffer()`` gives the ``(N, 1)`` per-image values.

    Example::

        metric = SMAPEMetric()
        for batch in loader:
            metric(y_pred=model(batch["image"]), y=batch["angles"])  # (B, 3) each
        value = metric.aggregate().item()
        metric.reset()

    Args:
        reduction: a :class:`monai.utils.MetricReduction` mode applied to the ``(N, 1)`` per-image values; ``"mean"``
            (default) gives the challenge SMAPE, ``"none"`` the per-image values.

    Raises:
        ValueError: when ``reduction`` is unknown; from a call, when ``y_pred`` or ``y`` is not ``(B, 3)`` (or a list of
            ``(3,)``), the shapes differ, or a value is NaN, infinite or negative.
    """

    def __init__(self, reduction: MetricReduction | str = MetricReduction.MEAN) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3), (B, 3) -> (B, 1)`` per-image SMAPE in percent."""
        pred, target = _as_pair(y_pred, y)
        _check_non_negative(pred, target)
        return _smape_rows(pred, target).unsqueeze(1)

    def aggregate(self, reduction: MetricReduction | str | None = None) -> torch.Tensor:
        """Reduce the buffered per-image values.

        Args:
            reduction: overrides the constructor's ``reduction`` for this call.

        Returns:
            A one-element tensor for ``"mean"`` (as MONAI's metrics return it); other modes follow
            :func:`monai.metrics.utils.do_metric_reduction`.

        Raises:
            ValueError: when nothing has been accumulated yet.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"SMAPEMetric has no values to aggregate, got buffer {data!r}: call it on a batch first.")
        value, _ = do_metric_reduction(data.clone(), check_reduction(reduction or self.reduction))
        return value


class MAEMetric(CumulativeIterationMetric):
    """Mean absolute error of the Cobb angles in degrees, overall or for one column, accumulated over iterations.

    Every call stores the absolute errors of the kept columns, ``(B, 3)`` (or ``(B, 1)`` when ``angle`` picks one), so
    ``get_buffer()`` holds the per-image, per-angle errors. The reductions:

    - ``aggregate()`` with the default ``reduction="mean"``: one number, the mean over images and kept columns (the
      overall MAE when ``angle`` is None, that column's MAE otherwise).
    - ``aggregate("mean_batch")``: the mean of each kept column, ``(3,)`` or ``(1,)``.
    - :meth:`per_angle`: the same column means keyed by name, ``{"angle1": ..., "angle2": ..., "angle3": ...}``.

    Args:
        angle: None to keep all three columns, or one of :data:`ANGLE_NAMES` (``"angle1"`` is the largest angle) to
            keep only that column.
        reduction: the default :class:`monai.utils.MetricReduction` mode of :meth:`aggregate`.

    Raises:
        ValueError: when ``angle`` is not None or one of :data:`ANGLE_NAMES`, or ``reduction`` is unknown; from a call,
            when ``y_pred`` or ``y`` is not ``(B, 3)`` (or a list of ``(3,)``), the shapes differ, or a value is NaN or
            infinite.
    """

    def __init__(self, angle: str | None = None, reduction: MetricReduction | str = MetricReduction.MEAN) -> None:
        super().__init__()
        if angle is not None and angle not in ANGLE_NAMES:
            raise ValueError(f"angle must be None or one of {ANGLE_NAMES}, got {angle!r}.")
        self.angle = angle
        self.reduction = check_reduction(reduction)
        self.angle_names: tuple[str, ...] = ANGLE_NAMES if angle is None else (angle,)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 3), (B, 3) -> (B, 3)`` absolute errors, or ``(B, 1)`` for the chosen ``angle``."""
        pred, target = _as_pair(y_pred, y)
        errors = (pred - target).abs()
        if self.angle is not None:
            column = ANGLE_NAMES.index(self.angle)
            errors = errors[:, column : column + 1]
        return errors

    def _buffer(self) -> torch.Tensor:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"MAEMetric has no values to aggregate, got buffer {data!r}: call it on a batch first.")
        return data.clone()

    def aggregate(self, reduction: MetricReduction | str | None = None) -> torch.Tensor:
        """Reduce the buffered absolute errors.

        Args:
            reduction: overrides the constructor's ``reduction`` for this call: ``"mean"`` gives one number (a
                one-element tensor), ``"mean_batch"`` the mean of each kept column, ``"none"`` the ``(N, 3)`` or
                ``(N, 1)`` errors.

        Raises:
            ValueError: when nothing has been accumulated yet.
        """
        value, _ = do_metric_reduction(self._buffer(), check_reduction(reduction or self.reduction))
        return value

    def per_angle(self) -> dict[str, torch.Tensor]:
        """MAE of each kept column over all accumulated images, keyed by its name in :data:`ANGLE_NAMES`.

        Raises:
            ValueError: when nothing has been accumulated yet.
        """
        means = self._buffer().mean(dim=0)
        return dict(zip(self.angle_names, means, strict=True))
