# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Evaluation of a trained bundle on a labelled split in the AASCE layout, reported like the paper's Tables 2 and 3.

``configs/evaluate.yaml`` runs a MONAI evaluator, :class:`SplitEvaluator`, over every image of a split (or the
validation fold of :func:`scripts.data.aasce.kfold_split`, so that it matches training's held-out fold). It is scored
by the same Ignite metric handlers as training's validation (:func:`scripts.metrics.registry.validation_metrics`), and
its handlers write:

- ``details/`` (:class:`monai.handlers.MetricsSaver`): ``metrics.csv``, ``<val_id>_raw.csv`` per-image values and
  ``<val_id>_summary.csv``, MONAI's own report of the same numbers.
- ``per_image.csv`` (:class:`EvaluationReport`): name, true and predicted angles, then the registry's per-image
  columns: SMAPE, the absolute error of each angle, and the segmentation scores of the image.
- ``metrics.json`` (:class:`EvaluationReport`): ``smape`` (percent), ``mae`` and ``mae_per_angle`` (degrees), and the
  means over images of ``jaccard``, ``dice``, ``pixel_accuracy``, ``sensitivity``, ``specificity`` (fractions in
  [0, 1]), plus what was evaluated (split, fold, number of images, checkpoint, model version, segmentation resolution).

**A vertebra-level N_S** (18 classes) adds, from the geometry inference measures (:mod:`scripts.inference.geometry`):
the Dice over T1..L5 (``vertebra_dice``, at the network's input size, and ``vertebra_dice_per_level``), per-image
geometric angles, end vertebrae and landmark error in ``per_image.csv``, and ``metrics.json``'s ``geometry``
(:func:`geometry_summary`): how often the rule could run, the geometric angles' SMAPE and MAE, the end vertebrae's
agreement with those the rule picks from the true landmarks (exact and within one level), the mean landmark error in
pixels, and the SMAPE of the combination ``w * geometric + (1 - w) * regressed`` with a ``combination_weight`` fixed
before any evaluation (0.5 by default; the regressed angles alone where the geometry could not be measured).

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
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ignite.engine import Engine, Events
from monai.engines import SupervisedEvaluator
from monai.inferers import Inferer
from monai.transforms import Compose, CopyItemsd, Transform
from monai.utils import CommonKeys as Keys
from torch import nn
from torch.utils.data import DataLoader

from scripts.data.aasce import DatasetError, kfold_split, load_datalist, scan_split
from scripts.data.cobb import cobb_details
from scripts.data.decode import read_grayscale
from scripts.data.resize_pad import resize_pad_geometry
from scripts.data.spine_mask import render_spine_mask, render_vertebra_labels
from scripts.flags import as_flag
from scripts.geometry.vertebrae import VERTEBRA_NAMES
from scripts.inference.engine import InferenceEvaluator
from scripts.inference.predictor import original_size_of
from scripts.inference.writers import refuse_existing
from scripts.metrics.angles import ANGLE_NAMES, mae, smape
from scripts.metrics.registry import (
    ANGLES,
    SEGMENTATION,
    metric_values,
    metrics_json,
    per_image_values,
    table_columns,
)

__all__ = [
    "SEG_RESOLUTIONS",
    "EvaluationReport",
    "ScoringTargetsd",
    "SplitEvaluator",
    "evaluation_datalist",
    "format_tables",
    "geometry_scores",
    "geometry_summary",
]

logger = logging.getLogger(__name__)

SEG_RESOLUTIONS = ("original", "network")
_TRUE_ANGLES = "true_angles"  # where the label angles wait while the inference postprocessing writes its own "angles"


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
        DatasetError: naming the files of a split that cannot be read: the split's problems and, with them, every
            image whose header reads but whose pixels do not decode, so that one run names all the bad files.
    """
    if not dataset_dir:
        return []
    try:
        records = load_datalist(dataset_dir, split)
    except DatasetError as error:
        readable, _ = scan_split(dataset_dir, split)
        undecodable = [reason for record in readable if (reason := _unreadable(record["image"]))]
        if not undecodable:
            raise
        listed = "\n  ".join(undecodable)
        raise DatasetError(f"{error}\nand {len(undecodable)} image(s) that cannot be decoded:\n  {listed}") from None
    if fold is None or fold == "":
        return records
    return kfold_split(records, num_folds=int(num_folds), fold=int(fold), seed=int(seed))[1]


def format_tables(metrics: Mapping[str, Any], method: str = "Seg4Reg+ (this bundle)") -> str:
    """Markdown tables laid out like the paper's Table 2 (segmentation, in percent) and Table 3 (angles).

    Args:
        metrics: the content of ``metrics.json``; columns and titles come from :mod:`scripts.metrics.registry`.
        method: the row's name.
    """
    values = metric_values(metrics)
    seg, angles = table_columns(SEGMENTATION), table_columns(ANGLES)
    where = f"{metrics.get('split', '')} split" + (
        f", fold {metrics['fold']}" if metrics.get("fold") is not None else ""
    )
    where += f", {metrics.get('num_images', '?')} images"

    def table(columns: list[tuple[str, str]], scale: float) -> list[str]:
        return [
            "| Method | " + " | ".join(title for _, title in columns) + " |",
            "|---|" + "---:|" * len(columns),
            f"| {method} | " + " | ".join(f"{scale * values[val_id]:.2f}" for val_id, _ in columns) + " |",
        ]

    return "\n".join(
        [
            f"Table 2 layout: spine segmentation ({where}; {metrics.get('segmentation_resolution', '')} resolution), %",
            *table(seg, 100.0),
            "",
            f"Table 3 layout: Cobb angles ({where})",
            *table(angles, 1.0),
        ]
    )


class ScoringTargetsd(Transform):
    """After the inference postprocessing: put one image's prediction and truth under the keys the metric handlers read.

    Reads the postprocessed record (``mask`` ``(H, W)``, ``mask_network`` ``(1, h, w)``, ``angles`` ``(3,)`` predicted,
    as :class:`scripts.inference.predictor.SplitPredictiond` writes them), the label angles saved under
    ``true_angles``, the ``landmarks`` ``(68, 2)`` in original pixels and ``image`` (for its original size), and adds:

    - ``pred_angles`` and ``angles``: ``(3,)`` predicted and labelled degrees;
    - ``pred_seg`` and ``label``: ``(1, H, W)`` {0, 1} masks, the predicted one and the one rendered from the landmarks,
      at the original size or at the network's input size (``seg_resolution``, module docstring);
    - from a vertebra-level N_S (``labels_network`` present): ``pred_labels`` and ``labels``, ``(1, h, w)`` label maps
      0..17 at the network's input size, the predicted one and the one rendered from the landmarks.

    Args:
        spatial_size: the network input (h, w), for ``seg_resolution="network"``.
        seg_resolution: ``"original"`` or ``"network"``.

    Raises:
        ValueError: on an unknown ``seg_resolution``.
    """

    def __init__(self, spatial_size: Sequence[int], seg_resolution: str = "original") -> None:
        if seg_resolution not in SEG_RESOLUTIONS:
            raise ValueError(f"seg_resolution must be one of {SEG_RESOLUTIONS}, got {seg_resolution!r}.")
        self.spatial_size = tuple(int(v) for v in spatial_size)
        self.seg_resolution = seg_resolution

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        landmarks = np.asarray(torch.as_tensor(d["landmarks"]).detach().cpu(), dtype=np.float64)
        size = original_size_of(d[Keys.IMAGE])
        if self.seg_resolution == "original":
            pred, truth = torch.as_tensor(d["mask"])[None], render_spine_mask(landmarks, size)
        else:
            geometry = resize_pad_geometry(size, self.spatial_size)
            pred = torch.as_tensor(d["mask_network"])
            truth = render_spine_mask(geometry.to_output(landmarks), self.spatial_size)
        d["pred_seg"] = pred.float().cpu()
        d[Keys.LABEL] = torch.as_tensor(truth, dtype=torch.float32)[None]
        if "labels_network" in d:
            network_points = resize_pad_geometry(size, self.spatial_size).to_output(landmarks)
            d["pred_labels"] = torch.as_tensor(np.asarray(d["labels_network"]), dtype=torch.float32)[None]
            d["labels"] = torch.as_tensor(render_vertebra_labels(network_points, self.spatial_size)).float()[None]
        d["pred_angles"] = torch.as_tensor(d["angles"], dtype=torch.float64).cpu()
        d["angles"] = torch.as_tensor(d.pop(_TRUE_ANGLES), dtype=torch.float64).cpu()
        return d


class SplitEvaluator(InferenceEvaluator):
    """A MONAI evaluator of a labelled split: inference's network and postprocessing, training's metric handlers.

    Its iteration (:class:`~scripts.inference.engine.InferenceEvaluator`'s) runs the network on the preprocessed batch
    (``image`` ``(B, 1, h, w)``) and carries the label angles along; MONAI then decollates the batch and applies, to
    each image, the inference ``postprocessing`` followed by :class:`ScoringTargetsd`, so the handlers find
    ``pred_angles`` / ``angles`` and ``pred_seg`` / ``label`` in ``engine.state.output`` as in training.

    Args:
        device: where the network runs.
        val_data_loader: batches of :func:`evaluation_datalist` records through the bundle's ``preprocessing``
            (``image``, ``name``, ``landmarks``, ``angles``).
        network: the network of ``network_def``, ``(B, 1, h, w) -> (B, K + 4, h, w)``.
        checkpoint: its weights, read when :meth:`run` starts (a missing file is named before any image).
        postprocessing: the bundle's inference ``postprocessing`` (one decollated record).
        spatial_size: the network input (h, w).
        seg_resolution: ``"original"`` or ``"network"`` (module docstring).
        inferer: how the network is called (``SimpleInferer`` by default).
        kwargs: passed to ``SupervisedEvaluator`` (``key_val_metric``, ``additional_metrics``, ``val_handlers``, ...).

    Raises:
        ValueError: on an unknown ``seg_resolution``.
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: DataLoader,
        network: nn.Module,
        checkpoint: str | Path,
        postprocessing: Callable[[dict], dict],
        spatial_size: Sequence[int],
        seg_resolution: str = "original",
        inferer: Inferer | None = None,
        **kwargs: Any,
    ) -> None:
        scoring = Compose(
            [
                CopyItemsd(keys="angles", names=_TRUE_ANGLES),  # postprocessing writes the predicted "angles"
                postprocessing,
                ScoringTargetsd(spatial_size, seg_resolution),
            ]
        )
        super().__init__(device, val_data_loader, network, checkpoint, scoring, inferer, **kwargs)

    def check_data(self) -> None:
        """Raise when there are no images, or when any image of the split cannot be decoded, before the first one is
        predicted: every bad file is named at once, and an evaluation is never dropped halfway (each file is decoded
        twice for this, which costs far less than the network)."""
        if len(self.data_loader) == 0:
            raise ValueError(
                "no labelled images to evaluate: run with --dataset_dir <boostnet_labeldata> --split <split> "
                "(and a --fold that holds images)."
            )
        records = self.records
        bad = [reason for record in records if (reason := _unreadable(record["image"]))]
        if bad:
            listed = "\n  ".join(bad)
            raise ValueError(
                f"{len(bad)} of {len(records)} image(s) cannot be read; nothing was evaluated or written:\n  {listed}"
            )

    def model_output(self, engine: SupervisedEvaluator, batchdata: Mapping[str, Any]) -> dict[str, Any]:
        """The network's answer and the label angles ``(B, 3)``, so that after postprocessing they are read from the
        output like the prediction."""
        return {**super().model_output(engine, batchdata), "angles": torch.as_tensor(batchdata["angles"])}


def _unreadable(path: str | Path) -> str | None:
    """Why the bundle's reader cannot decode ``path`` (its message names the file), or None when it can."""
    try:
        read_grayscale(path)
    except ValueError as error:
        return str(error)
    return None


class EvaluationReport:
    """Writes ``per_image.csv`` and ``metrics.json`` from the evaluator's metrics; refuses to overwrite by surprise.

    Attach it to a :class:`SplitEvaluator` (an entry of its ``val_handlers``, after ``MetricsSaver``). When the run
    starts it refuses existing outputs (``per_image.csv``, ``metrics.json`` and ``also_written``) unless ``overwrite``;
    during the run it keeps each image's name and angles; when the epoch ends it writes the two files. :attr:`metrics`
    then holds the content of ``metrics.json``.

    Args:
        output_dir: where the files go (created).
        dataset_dir: the AASCE root evaluated.
        split: the split evaluated.
        fold: the held-out fold evaluated, or None for the whole split.
        model_version: the bundle version.
        checkpoint: the weights used.
        seg_resolution: ``"original"`` or ``"network"``.
        also_written: other outputs of the run (``MetricsSaver``'s folder), refused likewise.
        overwrite: replace existing outputs instead of refusing (strict flag).
        combination_weight: weight of the geometric angles in the combined answer of a vertebra-level N_S, in [0, 1]
            (:func:`geometry_summary`); fixed before the evaluation, never fitted on the split it scores.

    Raises:
        ValueError: on a flag that is not true/false.
    """

    def __init__(
        self,
        output_dir: str | Path,
        dataset_dir: str | Path,
        split: str,
        fold: int | None,
        model_version: str,
        checkpoint: str | Path,
        seg_resolution: str = "original",
        also_written: Sequence[str | Path] = (),
        overwrite: bool | str = False,
        combination_weight: float = 0.5,
    ) -> None:
        if not 0.0 <= float(combination_weight) <= 1.0:
            raise ValueError(f"combination_weight must be in [0, 1], got {combination_weight!r}.")
        self.combination_weight = float(combination_weight)
        self.output_dir = Path(output_dir).expanduser()
        self.dataset_dir = str(dataset_dir or "")
        self.split = split
        self.fold = None if fold is None or fold == "" else int(fold)
        self.model_version = model_version
        self.checkpoint = str(checkpoint)
        self.seg_resolution = seg_resolution
        self.also_written = [Path(path).expanduser() for path in also_written]
        self.overwrite = as_flag(overwrite, "overwrite")
        self.metrics: dict[str, Any] = {}
        self._rows: list[dict[str, str]] = []
        self._geometry: list[dict[str, Any]] = []

    @property
    def paths(self) -> tuple[Path, Path]:
        """``per_image.csv`` and ``metrics.json``."""
        return self.output_dir / "per_image.csv", self.output_dir / "metrics.json"

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._refuse)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._write)

    def _refuse(self, _engine: Engine) -> None:
        refuse_existing([*self.paths, *self.also_written], self.overwrite)
        self._rows, self._geometry = [], []

    def _collect(self, engine: Engine) -> None:
        # after decollation: one batch record and one output record per image
        for item, output in zip(engine.state.batch, engine.state.output, strict=True):
            truth = np.asarray(output["angles"], dtype=np.float64).reshape(-1)
            pred = np.asarray(output["pred_angles"], dtype=np.float64).reshape(-1)
            row = {
                "name": str(item["name"]),
                **{f"true_{n}": f"{v:.4f}" for n, v in zip(ANGLE_NAMES, truth, strict=True)},
                **{f"pred_{n}": f"{v:.4f}" for n, v in zip(ANGLE_NAMES, pred, strict=True)},
            }
            if output.get("geometry") is not None:
                landmarks = np.asarray(torch.as_tensor(item["landmarks"]).cpu(), dtype=np.float64)
                height = original_size_of(item[Keys.IMAGE])[0]
                scores = geometry_scores(output["geometry"], landmarks, height)
                scores.update(true=truth, regressed=pred)
                self._geometry.append(scores)
                row.update(_geometry_columns(scores))
            self._rows.append(row)

    def _write(self, engine: Engine) -> None:
        scores = per_image_values(engine.state.metric_details, len(self._rows))
        rows = [{**row, **score} for row, score in zip(self._rows, scores, strict=True)]
        self.metrics = {
            **metrics_json(engine.state.metrics),
            "num_images": len(rows),
            "dataset_dir": self.dataset_dir,
            "split": self.split,
            "fold": self.fold,
            "segmentation_resolution": self.seg_resolution,
            "model_version": self.model_version,
            "checkpoint": self.checkpoint,
            "units": {"smape": "percent", "mae": "degrees", "segmentation": "fraction in [0, 1], mean over images"},
        }
        if "val_vertebra_dice" in engine.state.metric_details:
            per_image = np.asarray(torch.as_tensor(engine.state.metric_details["val_vertebra_dice"]).cpu(), float)
            levels = np.nanmean(per_image.reshape(len(rows), -1), axis=0)
            self.metrics["vertebra_dice_per_level"] = {
                n: round(float(v), 4) for n, v in zip(VERTEBRA_NAMES, levels, strict=True)
            }
        if self._geometry:
            self.metrics["geometry"] = geometry_summary(self._geometry, self.combination_weight)
        csv_path, json_path = self.paths
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
            writer.writeheader()
            writer.writerows(rows)
        json_path.write_text(json.dumps(self.metrics, indent=2) + "\n")
        logger.info("evaluated %d image(s); %s and %s written", len(rows), csv_path, json_path)


def geometry_scores(geometry: Mapping[str, Any], true_landmarks: np.ndarray, image_height: float) -> dict[str, Any]:
    """One image's geometry against its truth: the geometric angles, the end vertebrae and the landmark error.

    Args:
        geometry: the image's ``geometry`` (:mod:`scripts.inference.geometry`), in original pixels.
        true_landmarks: ``(68, 2)`` labelled corners in original pixels.
        image_height: H of the radiograph (the rule's S-curve test).

    Returns:
        ``geometric`` ((3,) degrees, or None when not measured), ``ends`` and ``true_ends`` (per angle the names of
        the upper and lower end vertebra; ``ends`` None when not measured), ``landmark_error_px`` (mean distance over
        the 68 points, None without estimated landmarks).
    """
    truth = cobb_details(true_landmarks, image_height)
    true_ends = [(VERTEBRA_NAMES[top], VERTEBRA_NAMES[bottom]) for top, bottom in truth.end_vertebrae]
    angles = geometry.get("angles_deg")
    curves = geometry.get("curves") or []
    estimated = geometry.get("landmarks")
    error = None
    if estimated is not None:
        error = float(np.mean(np.linalg.norm(np.asarray(estimated, dtype=np.float64) - true_landmarks, axis=1)))
    return {
        "geometric": None if angles is None else np.array([angles[name] for name in ANGLE_NAMES], dtype=np.float64),
        "ends": [(curve["upper_end"], curve["lower_end"]) for curve in curves] if curves else None,
        "true_ends": true_ends,
        "landmark_error_px": error,
    }


def _geometry_columns(scores: Mapping[str, Any]) -> dict[str, str]:
    """The ``per_image.csv`` columns of :func:`geometry_scores`."""
    geometric, ends = scores["geometric"], scores["ends"]
    columns = {f"geometric_{n}": "" if geometric is None else f"{geometric[i]:.4f}" for i, n in enumerate(ANGLE_NAMES)}
    for index, name in enumerate(ANGLE_NAMES):
        columns[f"true_ends_{name}"] = "-".join(scores["true_ends"][index])
        columns[f"ends_{name}"] = "" if ends is None else "-".join(ends[index])
    error = scores["landmark_error_px"]
    columns["landmark_error_px"] = "" if error is None else f"{error:.2f}"
    return columns


def geometry_summary(images: Sequence[Mapping[str, Any]], combination_weight: float = 0.5) -> dict[str, Any]:
    """``metrics.json``'s ``geometry``: the geometric path of a vertebra-level N_S over a split.

    Args:
        images: per image, :func:`geometry_scores` plus ``true`` and ``regressed`` (3,) degrees.
        combination_weight: ``w`` of the combined angles ``w * geometric + (1 - w) * regressed``.

    Returns:
        ``num_images``, ``measured`` (images whose geometry the rule could measure) and, over those,
        ``smape_geometric`` / ``mae_geometric`` beside ``smape_regressed_same_images`` / ``mae_regressed_same_images``;
        over every image ``smape_combined`` / ``mae_combined`` (the regressed angles where nothing was measured);
        ``end_vertebra_exact`` / ``end_vertebra_within_one`` (fractions of the measured images' three curves whose two
        end vertebrae both equal the true ones, or both lie within one level of them); ``landmark_error_px`` (mean over measured images).
    """
    measured = [image for image in images if image["geometric"] is not None]
    index = {name: i for i, name in enumerate(VERTEBRA_NAMES)}
    summary: dict[str, Any] = {
        "num_images": len(images),
        "measured": len(measured),
        "combination_weight": combination_weight,
    }
    combined = [
        combination_weight * image["geometric"] + (1 - combination_weight) * np.asarray(image["regressed"])
        if image["geometric"] is not None
        else np.asarray(image["regressed"])
        for image in images
    ]
    truths = np.stack([np.asarray(image["true"], dtype=np.float64) for image in images])
    summary["smape_combined"] = round(smape(np.stack(combined), truths), 4)
    summary["mae_combined"] = round(mae(np.stack(combined), truths), 4)
    if not measured:
        return summary
    true = np.stack([np.asarray(image["true"], dtype=np.float64) for image in measured])
    geometric = np.stack([image["geometric"] for image in measured])
    regressed = np.stack([np.asarray(image["regressed"], dtype=np.float64) for image in measured])
    # per curve: the larger of its two ends' distances, in levels, from the true ends (as scripts/geometry_bound.py)
    gaps = np.array(
        [
            max(abs(index[found] - index[true_end]) for found, true_end in zip(pair, true_pair, strict=True))
            for image in measured
            for pair, true_pair in zip(image["ends"], image["true_ends"], strict=True)
        ]
    )
    errors = [image["landmark_error_px"] for image in measured if image["landmark_error_px"] is not None]
    summary.update(
        smape_geometric=round(smape(geometric, true), 4),
        mae_geometric=round(mae(geometric, true), 4),
        smape_regressed_same_images=round(smape(regressed, true), 4),
        mae_regressed_same_images=round(mae(regressed, true), 4),
        end_vertebra_exact=round(float(np.mean(gaps == 0)), 4),
        end_vertebra_within_one=round(float(np.mean(gaps <= 1)), 4),
        landmark_error_px=round(float(np.mean(errors)), 3) if errors else None,
    )
    return summary
