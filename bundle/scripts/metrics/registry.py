# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One record per reported metric: the single place that names, orders and orients the bundle's scores.

Every reader of a metric goes through :data:`METRICS` (docs/design.md, "One metric registry"):

- ``train.yaml``'s validation builds its Ignite handlers with :func:`validation_metrics`, picks the best epoch with
  :func:`lower_is_better` / :func:`metric_comparator`;
- ``evaluate.yaml``'s evaluator attaches the same handlers (:func:`validation_handlers`), and its report turns their
  values into ``metrics.json`` (:func:`metrics_json`) and ``per_image.csv`` (:func:`per_image_values`);
- the pipeline's stage table and the evaluation's paper-style tables take their columns and titles from here.

A record holds the metric's ``name`` (its key in ``metrics.json``), its validation id ``val_id`` (the key of
``engine.state.metrics``, ``done.json``, ``results.json`` and MLflow; kept as the stages have always written them, so
``pixel_accuracy`` is ``val_accuracy``), the engine output keys it reads, its direction, its table title, and the
handler class of :mod:`scripts.handlers.metric_handlers` with its extra arguments. The metric classes and the thin
handlers stay where they are; this module only lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from monai.handlers import IgniteMetricHandler, MeanDice, from_engine

from scripts.handlers import metric_handlers

__all__ = [
    "ANGLES",
    "METRICS",
    "SEGMENTATION",
    "VERTEBRAE",
    "MetricSpec",
    "by_id",
    "lower_is_better",
    "metric_comparator",
    "metric_values",
    "metrics_json",
    "per_image_values",
    "table_columns",
    "validation_handlers",
    "validation_metrics",
]

ANGLES = "angles"
SEGMENTATION = "segmentation"
VERTEBRAE = "vertebrae"
_NUM_VERTEBRA_CLASSES = 18  # background, T1 .. L5


@dataclass(frozen=True)
class MetricSpec:
    """What every reader needs to know about one metric.

    Attributes:
        name: key in ``metrics.json`` (``mae_angle<k>`` sit under ``mae_per_angle``, see ``json_path``).
        val_id: key in ``engine.state.metrics`` and in the stage records (``val_<...>``).
        kind: :data:`ANGLES` (degrees, from ``pred_angles`` / ``angles``), :data:`SEGMENTATION` (fractions, from the
            spine masks ``pred_seg`` / ``label``) or :data:`VERTEBRAE` (fractions, from the vertebra label maps
            ``pred_labels`` / ``labels`` of an N_S that segments each vertebra).
        title: column title in the stage table and the paper-style tables.
        lower_is_better: True for errors (SMAPE, MAE), False for overlap scores.
        handler: the Ignite handler class of :mod:`scripts.handlers.metric_handlers`.
        handler_args: extra constructor arguments of ``handler`` (``angle`` of a one-column MAE).
        json_path: where the mean goes in ``metrics.json``.
        csv_column: the ``per_image.csv`` column of its per-image values, None when it has none.
        decimals: decimals of those per-image values.
    """

    name: str
    val_id: str
    kind: str
    title: str
    lower_is_better: bool
    handler: type[IgniteMetricHandler]
    handler_args: Mapping[str, Any] = field(default_factory=dict)
    json_path: tuple[str, ...] = ()
    csv_column: str | None = None
    decimals: int = 4

    @property
    def output_keys(self) -> tuple[str, str]:
        """``(prediction, label)`` keys of the evaluator's output that the handler reads."""
        return {ANGLES: ("pred_angles", "angles"), SEGMENTATION: ("pred_seg", "label")}.get(
            self.kind, ("pred_labels", "labels")
        )


def _angle(name: str, title: str, handler: type, csv_column: str | None, **args: Any) -> MetricSpec:
    path = ("mae_per_angle", args["angle"]) if "angle" in args else (name,)
    return MetricSpec(name, f"val_{name}", ANGLES, title, True, handler, args, path, csv_column, 4)


def _seg(name: str, val_id: str, title: str, handler: type) -> MetricSpec:
    return MetricSpec(name, val_id, SEGMENTATION, title, False, handler, {}, (name,), name, 6)


# the order of the paper's Table 3 (SMAPE, MAE, MAE per angle), then Table 2 (JA, Dice, AC, SE, SP)
METRICS: tuple[MetricSpec, ...] = (
    _angle("smape", "SMAPE (%)", metric_handlers.SMAPE, "smape"),
    _angle("mae", "MAE (deg)", metric_handlers.MAE, None),  # its per-image values are the three abs_err columns
    _angle("mae_angle1", "MAE angle1", metric_handlers.MAE, "abs_err_angle1", angle="angle1"),
    _angle("mae_angle2", "MAE angle2", metric_handlers.MAE, "abs_err_angle2", angle="angle2"),
    _angle("mae_angle3", "MAE angle3", metric_handlers.MAE, "abs_err_angle3", angle="angle3"),
    _seg("jaccard", "val_jaccard", "JA", metric_handlers.Jaccard),
    _seg("dice", "val_dice", "Dice", metric_handlers.Dice),
    _seg("pixel_accuracy", "val_accuracy", "AC", metric_handlers.PixelAccuracy),
    _seg("sensitivity", "val_sensitivity", "SE", metric_handlers.Sensitivity),
    _seg("specificity", "val_specificity", "SP", metric_handlers.Specificity),
    # MONAI's own Dice over the 17 vertebra classes (a class absent from the truth is left out of the image's mean)
    MetricSpec(
        "vertebra_dice",
        "val_vertebra_dice",
        VERTEBRAE,
        "Dice (vert)",
        False,
        MeanDice,
        {"num_classes": _NUM_VERTEBRA_CLASSES, "include_background": False},
        ("vertebra_dice",),
    ),
)
_BY_ID = {spec.val_id: spec for spec in METRICS}


def by_id(val_id: str) -> MetricSpec:
    """The record of the validation id ``val_id`` (``"val_smape"``).

    Raises:
        ValueError: naming the known ids.
    """
    if val_id not in _BY_ID:
        raise ValueError(f"unknown metric {val_id!r}; the metrics are {sorted(_BY_ID)}.")
    return _BY_ID[val_id]


def lower_is_better(name: str) -> bool:
    """Whether the metric with validation id ``name`` improves downwards (SMAPE, MAE): a checkpoint's negative sign."""
    return by_id(name).lower_is_better


def metric_comparator(name: str) -> Callable[[float, float], bool]:
    """``metric_cmp_fn`` for a MONAI evaluator whose key metric is ``name`` (MONAI starts ``best_metric`` at -1)."""
    if lower_is_better(name):
        return lambda current, best: best < 0 or current < best
    return lambda current, best: current > best


def validation_handlers(regress: bool = True, vertebrae: bool = False) -> dict[str, IgniteMetricHandler]:
    """A fresh Ignite handler for every metric, keyed by validation id, reading the evaluator's output.

    Args:
        regress: whether the model predicts angles; without (stage a, whose N_R is untrained) only the segmentation
            metrics are built.
        vertebrae: whether N_S labels each vertebra; with it the per-vertebra Dice is built too.

    Returns:
        ``{val_id: handler}`` in :data:`METRICS` order, each with ``from_engine([prediction, label])`` and per-image
        details on (for :class:`monai.handlers.MetricsSaver` and ``per_image.csv``).
    """
    return {
        spec.val_id: spec.handler(**spec.handler_args, output_transform=from_engine(list(spec.output_keys)))
        for spec in METRICS
        if (regress or spec.kind != ANGLES) and (vertebrae or spec.kind != VERTEBRAE)
    }


def validation_metrics(
    key: str, regress: bool = True, vertebrae: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The handlers split as a MONAI evaluator takes them: ``key_val_metric`` and ``additional_metrics``.

    Args:
        key: the key metric's validation id (``key_metric_name``).
        regress: whether the model predicts angles (:func:`validation_handlers`).
        vertebrae: whether N_S labels each vertebra (:func:`validation_handlers`).

    Returns:
        ``({key: handler}, {other id: handler})``.

    Raises:
        ValueError: if ``key`` is unknown, or an angle metric of a model that does not regress.
    """
    handlers = validation_handlers(regress, vertebrae)
    if key not in handlers:
        raise ValueError(f"key metric {key!r} is not available here; choose one of {sorted(handlers)}.")
    return {key: handlers.pop(key)}, handlers


def table_columns(kind: str | None = None) -> list[tuple[str, str]]:
    """``(val_id, title)`` of the table columns, in :data:`METRICS` order; only one ``kind`` when given."""
    return [(spec.val_id, spec.title) for spec in METRICS if kind is None or spec.kind == kind]


def _scalar(value: Any) -> float:
    return float(torch.as_tensor(value, dtype=torch.float64).reshape(-1)[0])


def metrics_json(values: Mapping[str, Any]) -> dict[str, Any]:
    """The metric part of ``metrics.json`` from ``engine.state.metrics``.

    Args:
        values: ``{val_id: mean}`` (floats or one-element tensors); ids absent from it are left out.

    Returns:
        ``{"smape": %, "mae": deg, "mae_per_angle": {"angle1": deg, ...}, "jaccard": fraction, ...}``.
    """
    out: dict[str, Any] = {}
    for spec in METRICS:
        if spec.val_id not in values:
            continue
        node = out
        for part in spec.json_path[:-1]:
            node = node.setdefault(part, {})
        node[spec.json_path[-1]] = _scalar(values[spec.val_id])
    return out


def metric_values(content: Mapping[str, Any]) -> dict[str, float]:
    """The metric values of a ``metrics.json`` content keyed by validation id: the inverse of :func:`metrics_json`."""
    values = {}
    for spec in METRICS:
        node: Any = content
        for part in spec.json_path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            values[spec.val_id] = float(node)
    return values


def per_image_values(details: Mapping[str, Any], count: int) -> list[dict[str, str]]:
    """The metric columns of ``per_image.csv`` from ``engine.state.metric_details``.

    Args:
        details: ``{val_id: (N, 1) per-image values}`` as the handlers store them.
        count: N, the number of images.

    Returns:
        N rows ``{csv_column: formatted value}``, columns in :data:`METRICS` order.

    Raises:
        ValueError: when a metric holds another number of values than ``count``.
    """
    rows: list[dict[str, str]] = [{} for _ in range(count)]
    for spec in METRICS:
        if spec.csv_column is None or spec.val_id not in details:
            continue
        column = np.asarray(torch.as_tensor(details[spec.val_id]).detach().cpu(), dtype=np.float64).reshape(-1)
        if column.size != count:
            raise ValueError(f"{spec.val_id}: {column.size} per-image values for {count} images.")
        for row, value in zip(rows, column, strict=True):
            row[spec.csv_column] = f"{value:.{spec.decimals}f}"
    return rows
