# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The paper's Table 2 spine-mask scores: Jaccard (JA), Dice, pixel accuracy (AC), sensitivity (SE), specificity (SP).

The counting and the ratios are MONAI's: :func:`monai.metrics.get_confusion_matrix` gives the true/false
positive/negative pixel counts of each image and :func:`monai.metrics.compute_confusion_matrix_metric` turns them into
``"threat score"`` (= Jaccard, ``TP / (TP + FP + FN)``), ``"f1 score"`` (= Dice, ``2TP / (2TP + FP + FN)``),
``"accuracy"``, ``"sensitivity"`` and ``"specificity"``, the same functions :class:`monai.metrics.ConfusionMatrixMetric`
is built on. Two choices differ from that class's defaults and are made here on purpose:

- **Per-image means.** Every score is computed on each image's own counts and then averaged over images, as the paper
  reports them. (``ConfusionMatrixMetric`` with its default ``compute_sample=False`` pools the counts of all images
  first, which weights large masks more and gives a different number.)
- **Empty masks.** A score whose ratio is 0/0 on an image (Jaccard and Dice when prediction and ground truth are both
  empty, sensitivity when the ground truth is empty, specificity when the ground truth covers the whole image) counts
  as 1.0 by default, perfect agreement on nothing, as SMAPE scores an all-zero image as perfect. With
  ``ignore_empty=True`` such values are NaN and left out of that score's mean (MONAI's convention), and a mean over no
  defined values is NaN. Pixel accuracy is never 0/0. An empty prediction against a non-empty ground truth scores 0 on
  Jaccard, Dice and sensitivity, and a non-empty prediction against an empty ground truth 0 on Jaccard and Dice, with
  either setting.

Masks are ``(B, 1, H, W)`` with values in {0, 1}, or one-hot ``(B, 2, H, W)`` (channel 1 the spine); the two forms may
be mixed between ``y_pred`` and ``y``. Only the spine channel is scored: the background channel of a one-hot mask would
repeat the same counts with the roles of the classes swapped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import CumulativeIterationMetric, compute_confusion_matrix_metric, get_confusion_matrix
from monai.metrics.utils import do_metric_reduction
from monai.utils import MetricReduction, ensure_tuple

from scripts.metrics.reduction import check_reduction

__all__ = [
    "SEGMENTATION_METRICS",
    "SpineSegmentationMetric",
    "SpineSegmentationMetrics",
    "segmentation_scores",
]

SEGMENTATION_METRICS: tuple[str, ...] = ("jaccard", "dice", "accuracy", "sensitivity", "specificity")
"""The score names, in the order of the paper's Table 2 (JA, Dice, AC, SE, SP)."""

# Our names -> the names monai.metrics.compute_confusion_matrix_metric knows.
_MONAI_NAMES = {
    "jaccard": "threat score",
    "dice": "f1 score",
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}
_MEAN_REDUCTIONS = (MetricReduction.MEAN, MetricReduction.MEAN_BATCH, MetricReduction.MEAN_CHANNEL)


def _check_names(metric_name: str | Sequence[str]) -> tuple[str, ...]:
    names = ensure_tuple(metric_name)
    if not names:
        raise ValueError(f"metric_name must name at least one of {SEGMENTATION_METRICS}, got {metric_name!r}.")
    for name in names:
        if name not in _MONAI_NAMES:
            raise ValueError(f"metric_name must be one or more of {SEGMENTATION_METRICS}, got {name!r}.")
    if len(set(names)) != len(names):
        raise ValueError(f"metric_name must not repeat a name, got {names}.")
    return tuple(names)


def _foreground(mask: np.ndarray | torch.Tensor | None, name: str) -> torch.Tensor:
    """The spine channel of a binary or one-hot mask, ``(B, 1 or 2, H, W) -> (B, 1, H, W)`` float."""
    if mask is None:
        raise ValueError(f"{name} is required, got None.")
    tensor = torch.as_tensor(mask).detach()
    if tensor.ndim != 4 or tensor.shape[1] not in (1, 2):
        raise ValueError(
            f"{name} must have shape (B, 1, H, W) (binary) or (B, 2, H, W) (one-hot), got {tuple(tensor.shape)}."
        )
    if tensor.dtype == torch.bool:
        tensor = tensor.float()
    if not bool(((tensor == 0) | (tensor == 1)).all()):
        raise ValueError(
            f"{name} must hold only 0 and 1 (threshold or argmax it first, e.g. with monai.transforms.AsDiscrete), "
            f"got values in [{tensor.min().item():.4g}, {tensor.max().item():.4g}]."
        )
    if tensor.shape[1] == 2:
        if not bool((tensor.sum(dim=1) == 1).all()):
            raise ValueError(f"{name} has 2 channels but is not one-hot: its channels must sum to 1 at every pixel.")
        tensor = tensor[:, 1:2]
    return tensor.float()


def segmentation_scores(
    y_pred: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    metric_name: str | Sequence[str] = SEGMENTATION_METRICS,
    ignore_empty: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-image spine segmentation scores.

    Args:
        y_pred: predicted mask, ``(B, 1, H, W)`` in {0, 1} or one-hot ``(B, 2, H, W)``, numpy or torch.
        y: ground truth mask, in either form, with the same ``B, H, W``.
        metric_name: one or more of :data:`SEGMENTATION_METRICS`.
        ignore_empty: False to score a 0/0 ratio as 1.0, True to make it NaN (see the module docstring).

    Returns:
        ``{name: (B,) tensor}`` in the order of ``metric_name``, values in ``[0, 1]`` (or NaN).

    Raises:
        ValueError: when a name is unknown, a mask has the wrong shape or non-binary values, a two-channel mask is not
            one-hot, or the masks' shapes differ.
    """
    names = _check_names(metric_name)
    pred = _foreground(y_pred, "y_pred")
    target = _foreground(y, "y")
    if pred.shape != target.shape:
        raise ValueError(
            f"y_pred and y must cover the same batch and pixels, got spine channels of shapes {tuple(pred.shape)} "
            f"and {tuple(target.shape)}."
        )
    confusion = get_confusion_matrix(y_pred=pred, y=target.to(pred.device), include_background=True)  # (B, 1, 4)
    scores = {}
    for name in names:
        # compute_confusion_matrix_metric returns NaN exactly where the ratio's denominator is 0 (then so is its
        # numerator): that is where the empty-mask convention applies.
        values = compute_confusion_matrix_metric(_MONAI_NAMES[name], confusion)[:, 0]
        scores[name] = values if ignore_empty else torch.nan_to_num(values, nan=1.0)
    return scores


class _SpineSegmentationScores(CumulativeIterationMetric):
    """Shared accumulation: the buffer holds ``(N, len(metric_name))`` per-image scores."""

    def __init__(
        self,
        metric_name: str | Sequence[str],
        ignore_empty: bool,
        reduction: MetricReduction | str,
    ) -> None:
        super().__init__()
        self.metric_name = _check_names(metric_name)
        self.ignore_empty = ignore_empty
        self.reduction = check_reduction(reduction)

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, 1 or 2, H, W), (B, 1 or 2, H, W) -> (B, len(metric_name))`` per-image scores."""
        scores = segmentation_scores(y_pred, y, self.metric_name, self.ignore_empty)
        return torch.stack([scores[name] for name in self.metric_name], dim=1)

    def _reduce(self, reduction: MetricReduction | str | None) -> dict[str, torch.Tensor]:
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(
                f"{type(self).__name__} has no values to aggregate, got buffer {data!r}: call it on a batch first."
            )
        mode = check_reduction(reduction or self.reduction)
        results = {}
        for column, name in enumerate(self.metric_name):
            # do_metric_reduction writes zeros over the NaNs of its input: give it a copy, so that the buffer (saved
            # per image by the handlers) keeps them.
            value, not_nans = do_metric_reduction(data[:, column : column + 1].clone(), mode)
            if mode in _MEAN_REDUCTIONS:
                # do_metric_reduction returns 0 for a mean over no defined values; NaN says so honestly.
                value = torch.where(not_nans > 0, value, torch.full_like(value, float("nan")))
            results[name] = value
        return results


class SpineSegmentationMetrics(_SpineSegmentationScores):
    """The paper's Table 2 scores of binary spine masks, per-image means, accumulated over iterations.

    Scores: Jaccard (JA), Dice, pixel accuracy (AC), sensitivity (SE), specificity (SP), computed with MONAI's
    confusion-matrix functions on each image and averaged over images; empty masks follow the convention of the module
    docstring. ``get_buffer()`` gives the ``(N, len(metric_name))`` per-image scores, columns in ``metric_name`` order.

    Example::

        metric = SpineSegmentationMetrics()
        for batch in loader:
            metric(y_pred=binary_prediction, y=batch["label"])  # (B, 1, H, W) each
        scores = metric.aggregate()  # {"jaccard": tensor([0.7786]), "dice": ..., ...}
        metric.reset()

    Args:
        metric_name: the scores to compute, one or more of :data:`SEGMENTATION_METRICS` (all by default).
        ignore_empty: False (default) to score a 0/0 ratio as 1.0; True to leave it out of the mean as NaN.
        reduction: the default :class:`monai.utils.MetricReduction` mode of :meth:`aggregate`: ``"mean"`` gives the mean
            over images, ``"none"`` the ``(N, 1)`` per-image values of each score.

    Raises:
        ValueError: when a name in ``metric_name`` or the reduction is unknown; from a call, as
            :func:`segmentation_scores`.
    """

    def __init__(
        self,
        metric_name: str | Sequence[str] = SEGMENTATION_METRICS,
        ignore_empty: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN,
    ) -> None:
        super().__init__(metric_name=metric_name, ignore_empty=ignore_empty, reduction=reduction)

    def aggregate(self, reduction: MetricReduction | str | None = None) -> dict[str, torch.Tensor]:
        """Reduce the buffered per-image scores.

        Args:
            reduction: overrides the constructor's ``reduction`` for this call.

        Returns:
            ``{name: value}`` in ``metric_name`` order; each value a one-element tensor for ``"mean"``.

        Raises:
            ValueError: when nothing has been accumulated yet.
        """
        return self._reduce(reduction)


class SpineSegmentationMetric(_SpineSegmentationScores):
    """One score of :class:`SpineSegmentationMetrics`, whose :meth:`aggregate` returns a tensor rather than a dict.

    This is the form an Ignite metric handler records (see ``scripts.handlers.metric_handlers``); ``get_buffer()`` gives
    the ``(N, 1)`` per-image scores.

    Args:
        metric_name: one of :data:`SEGMENTATION_METRICS`.
        ignore_empty: False (default) to score a 0/0 ratio as 1.0; True to leave it out of the mean as NaN.
        reduction: the default :class:`monai.utils.MetricReduction` mode of :meth:`aggregate`.

    Raises:
        TypeError: when ``metric_name`` is not a str.
        ValueError: when ``metric_name`` or the reduction is unknown; from a call, as :func:`segmentation_scores`.
    """

    def __init__(
        self,
        metric_name: str,
        ignore_empty: bool = False,
        reduction: MetricReduction | str = MetricReduction.MEAN,
    ) -> None:
        if not isinstance(metric_name, str):
            raise TypeError(f"metric_name must be one name (a str) of {SEGMENTATION_METRICS}, got {metric_name!r}.")
        super().__init__(metric_name=metric_name, ignore_empty=ignore_empty, reduction=reduction)

    def aggregate(self, reduction: MetricReduction | str | None = None) -> torch.Tensor:
        """Reduce the buffered per-image scores; a one-element tensor for ``"mean"``.

        Raises:
            ValueError: when nothing has been accumulated yet.
        """
        return self._reduce(reduction)[self.metric_name[0]]
