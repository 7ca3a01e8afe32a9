# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of a trained bundle on a labelled split in the AASCE layout, reported like the paper's Tables 2 and 3.

:class:`SplitEvaluation` (the ``evaluator`` of ``configs/evaluate.yaml``) predicts every image of a split (or the
validation fold of :func:`scripts.data.aasce.kfold_split`, so that it matches training's held-out fold) and writes:

- ``per_image.csv``: name, true and predicted angles, absolute errors, SMAPE, and the segmentation scores of the image.
- ``metrics.json``: ``smape`` (percent), ``mae`` and ``mae_per_angle`` (degrees), and the means over images of
  ``jaccard``, ``dice``, ``pixel_accuracy``, ``sensitivity``, ``specificity`` (fractions in [0, 1]), plus what was
  evaluated (split, fold, number of images, checkpoint, model version, segmentation resolution).

The numbers come from the project's metric functions (:mod:`scripts.metrics.angles`,
:func:`scripts.metrics.segmentation.segmentation_scores`), on the same predictions inference writes.

**Segmentation resolution** (``seg_resolution``): ``"original"`` (default) scores the mask inference writes, mapped
back to the image's own size, against the mask rendered from the landmarks at that size: what a user gets, comparable
between recipes of different input sizes, and without the padding's easy background pixels. ``"network"`` scores the
network's argmax at its input size against the mask rendered from the landmarks after the same resize-pad, as the
training stages' validation does.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from scripts.data.aasce import kfold_split, load_datalist
from scripts.data.resize_pad import resize_pad_geometry
from scripts.data.spine_mask import render_spine_mask
from scripts.flags import as_flag
from scripts.inference.predictor import Seg4RegPredictor, original_size_of
from scripts.inference.runner import refuse_existing
from scripts.metrics.angles import ANGLE_NAMES, mae, mae_per_angle, smape, smape_per_image
from scripts.metrics.segmentation import SEGMENTATION_METRICS, segmentation_scores

__all__ = [
    "METRIC_KEYS",
    "SEG_RESOLUTIONS",
    "SplitEvaluation",
    "evaluation_datalist",
    "format_tables",
    "summarise",
]

logger = logging.getLogger(__name__)

SEG_RESOLUTIONS = ("original", "network")
METRIC_KEYS: tuple[str, ...] = (
    "smape",
    "mae",
    "mae_per_angle",
    "jaccard",
    "dice",
    "pixel_accuracy",
    "sensitivity",
    "specificity",
)
# segmentation_scores' names -> the keys of metrics.json
_SEG_KEYS = {
    "jaccard": "jaccard",
    "dice": "dice",
    "accuracy": "pixel_accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
}


def evaluation_datalist(
    dataset_dir: str | Path | None, split: str = "training", fold: int | None = None, num_folds: int = 5, seed: int = 0
) -> list[dict]:
    """The labelled records to evaluate: a whole split, or the validation part of one patient-grouped fold.

    Args:
        dataset_dir: the AASCE-layout root (``boostnet_labeldata``); empty / None gives no records (the workflow then
            asks for ``--dataset_dir``).
        split: the split folder.
        fold: None for the whole split; otherwise the held-out fold of
            :func:`scripts.data.aasce.kfold_split` (``num_folds``, ``seed``), as training holds it out.
        num_folds: folds of that split (training's default: 5).
        seed: its seed (training's default: 0).

    Raises:
        DatasetError: naming the files of a split that cannot be read.
    """
    if not dataset_dir:
        return []
    records = load_datalist(dataset_dir, split)
    if fold is None or fold == "":
        return records
    return kfold_split(records, num_folds=int(num_folds), fold=int(fold), seed=int(seed))[1]


def summarise(
    pred_angles: np.ndarray, true_angles: np.ndarray, seg_scores: Mapping[str, Sequence[float]]
) -> dict[str, Any]:
    """The keys of ``metrics.json`` from per-image predictions.

    Args:
        pred_angles: ``(N, 3)`` predicted angles in degrees.
        true_angles: ``(N, 3)`` labelled angles.
        seg_scores: ``{name: N values}`` for each of :data:`~scripts.metrics.segmentation.SEGMENTATION_METRICS`.

    Returns:
        ``smape`` (percent), ``mae``, ``mae_per_angle`` (degrees) and the segmentation means (fractions).
    """
    metrics: dict[str, Any] = {
        "smape": smape(pred_angles, true_angles),
        "mae": mae(pred_angles, true_angles),
        "mae_per_angle": mae_per_angle(pred_angles, true_angles),
    }
    for name in SEGMENTATION_METRICS:
        metrics[_SEG_KEYS[name]] = float(np.nanmean(np.asarray(seg_scores[name], dtype=np.float64)))
    return metrics


def format_tables(metrics: Mapping[str, Any], method: str = "Seg4Reg+ (this bundle)") -> str:
    """Markdown tables laid out like the paper's Table 2 (JA, Dice, AC, SE, SP in percent) and Table 3 (SMAPE, MAE)."""
    seg = [100.0 * metrics[key] for key in ("jaccard", "dice", "pixel_accuracy", "sensitivity", "specificity")]
    per_angle = [metrics["mae_per_angle"][name] for name in ANGLE_NAMES]
    where = f"{metrics.get('split', '')} split" + (
        f", fold {metrics['fold']}" if metrics.get("fold") is not None else ""
    )
    where += f", {metrics.get('num_images', '?')} images"
    lines = [
        f"Table 2 layout: spine segmentation ({where}; {metrics.get('segmentation_resolution', '')} resolution), %",
        "| Method | JA | Dice | AC | SE | SP |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {method} | " + " | ".join(f"{v:.2f}" for v in seg) + " |",
        "",
        f"Table 3 layout: Cobb angles ({where})",
        "| Method | SMAPE (%) | MAE (deg) | MAE angle1 | MAE angle2 | MAE angle3 |",
        "|---|---:|---:|---:|---:|---:|",
        f"| {method} | {metrics['smape']:.2f} | {metrics['mae']:.2f} | "
        + " | ".join(f"{v:.2f}" for v in per_angle)
        + " |",
    ]
    return "\n".join(lines)


class SplitEvaluation:
    """Predict a labelled split and score it (the ``evaluator`` of ``configs/evaluate.yaml``).

    Args:
        dataset: the bundle's ``dataset`` over :func:`evaluation_datalist` records (image, name, landmarks, angles).
        predictor: network, inferer and postprocessing for one record.
        dataset_dir: the AASCE root (for messages and ``metrics.json``; required when running).
        split: the split evaluated.
        fold: the held-out fold evaluated, or None for the whole split.
        output_dir: where ``per_image.csv`` and ``metrics.json`` go (created).
        spatial_size: the network input (h, w), for ``seg_resolution="network"``.
        model_version: the bundle version.
        checkpoint: the weights used.
        seg_resolution: ``"original"`` or ``"network"`` (module docstring).
        overwrite: replace existing outputs instead of refusing (strict flag).
        progress_bar: show a tqdm bar (strict flag).

    Raises:
        ValueError: on an unknown ``seg_resolution`` or a flag that is not true/false.
    """

    def __init__(
        self,
        dataset: Dataset,
        predictor: Seg4RegPredictor,
        dataset_dir: str | Path,
        split: str,
        fold: int | None,
        output_dir: str | Path,
        spatial_size: Sequence[int],
        model_version: str,
        checkpoint: str | Path,
        seg_resolution: str = "original",
        overwrite: bool | str = False,
        progress_bar: bool | str = True,
    ) -> None:
        if seg_resolution not in SEG_RESOLUTIONS:
            raise ValueError(f"seg_resolution must be one of {SEG_RESOLUTIONS}, got {seg_resolution!r}.")
        self.dataset = dataset
        self.predictor = predictor
        self.dataset_dir = str(dataset_dir or "")
        self.split = split
        self.fold = None if fold is None or fold == "" else int(fold)
        self.output_dir = Path(output_dir).expanduser()
        self.spatial_size = tuple(int(v) for v in spatial_size)
        self.model_version = model_version
        self.checkpoint = str(checkpoint)
        self.seg_resolution = seg_resolution
        self.overwrite = as_flag(overwrite, "overwrite")
        self.progress_bar = as_flag(progress_bar, "progress_bar")

    def _masks(self, record: Mapping[str, Any], result: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        size = original_size_of(result["image"])
        if self.seg_resolution == "original":
            return np.asarray(result["mask"]), render_spine_mask(record["landmarks"], size)
        geometry = resize_pad_geometry(size, self.spatial_size)
        truth = render_spine_mask(geometry.to_output(np.asarray(record["landmarks"])), self.spatial_size)
        return np.asarray(result["mask_network"][0]), truth

    def run(self) -> dict[str, Any]:
        """Predict, score, write ``per_image.csv`` and ``metrics.json``.

        Returns:
            The content of ``metrics.json`` (:func:`format_tables` prints it).

        Raises:
            ValueError: when no dataset was given or it holds no records.
            FileNotFoundError: naming a missing checkpoint.
            FileExistsError: when an output exists and ``overwrite`` is off (before anything is written).
        """
        if not self.dataset_dir:
            raise ValueError("no labelled dataset given: run with --dataset_dir <boostnet_labeldata> --split <split>.")
        records = list(getattr(self.dataset, "data", []))
        if not records:
            raise ValueError(f"{self.dataset_dir}: split {self.split!r} (fold {self.fold}) holds no images.")
        csv_path, json_path = self.output_dir / "per_image.csv", self.output_dir / "metrics.json"
        self.predictor.load()  # a missing checkpoint is named before any image is read
        refuse_existing([csv_path, json_path], self.overwrite)
        preds, truths, rows = [], [], []
        seg_scores: dict[str, list[float]] = {name: [] for name in SEGMENTATION_METRICS}
        for index, record in enumerate(tqdm(records, desc="evaluation", unit="image", disable=not self.progress_bar)):
            result = self.predictor(self.dataset[index])
            pred_mask, true_mask = self._masks(record, result)
            scores = segmentation_scores(torch.as_tensor(pred_mask)[None, None], torch.as_tensor(true_mask)[None, None])
            for name in SEGMENTATION_METRICS:
                seg_scores[name].append(float(scores[name][0]))
            pred, truth = np.asarray(result["angles"], dtype=np.float64), np.asarray(record["angles"], np.float64)
            preds.append(pred)
            truths.append(truth)
            rows.append(
                {
                    "name": record["name"],
                    **{f"true_{n}": f"{v:.4f}" for n, v in zip(ANGLE_NAMES, truth, strict=True)},
                    **{f"pred_{n}": f"{v:.4f}" for n, v in zip(ANGLE_NAMES, pred, strict=True)},
                    **{f"abs_err_{n}": f"{abs(p - t):.4f}" for n, p, t in zip(ANGLE_NAMES, pred, truth, strict=True)},
                    "smape": f"{float(smape_per_image(pred[None], truth[None])[0]):.4f}",
                    **{_SEG_KEYS[name]: f"{seg_scores[name][-1]:.6f}" for name in SEGMENTATION_METRICS},
                }
            )
        metrics = summarise(np.stack(preds), np.stack(truths), seg_scores)
        metrics.update(
            {
                "num_images": len(records),
                "dataset_dir": self.dataset_dir,
                "split": self.split,
                "fold": self.fold,
                "segmentation_resolution": self.seg_resolution,
                "model_version": self.model_version,
                "checkpoint": self.checkpoint,
                "units": {"smape": "percent", "mae": "degrees", "segmentation": "fraction in [0, 1], mean over images"},
            }
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        json_path.write_text(json.dumps(metrics, indent=2) + "\n")
        logger.info("evaluated %d image(s); %s and %s written", len(records), csv_path, json_path)
        return metrics
