# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Label training task: stage (a) of the bundle (the spine segmenter N_S) on annotated ``{image, label}`` pairs.

monailabel's :class:`~monailabel.tasks.train.bundle.BundleTrainTask` expects one ``configs/train.yaml`` with a
``train#trainer`` in it. This bundle's ``train.yaml`` chains five stages instead, and each stage is
``train.yaml`` + ``stage_<x>.yaml`` (+ the recipe). :class:`Seg4RegSegmentationTrainTask` keeps everything else of
``BundleTrainTask`` (its datastore split, its overrides of ``train#dataset#data``, ``validate#dataset#data``,
``train#trainer#max_epochs``, ``device``, and its ``CheckpointLoader`` that starts from ``models/model.pt``) and:

- reads ``[train.yaml, stage_a.yaml, *overlays]`` as the train config;
- replaces the AASCE preprocessing (landmarks -> mask) by :func:`scripts.monailabel.pairs.pair_preprocessing`;
- lets each request retrain the stage (``overwrite``) and names no dataset folder (no phantoms are generated);
- copies the stage's best model to ``models/model.pt`` afterwards, where the inference task reads it. Stage (a)
  trains N_S only, so that file keeps the regressor N_R it started from: masks improve, angles come from the same N_R.

Small label sets: the batch size is the configured one or the number of training pairs, whichever is smaller (so
``drop_last`` never empties an epoch); when ``val_split`` leaves no image to validate on, one training pair is held out;
with fewer than :data:`MIN_LABELLED` labelled images the request fails with a message saying so.

Only one device: MONAI Label's multi-GPU route (``torchrun`` on ``multi_gpu_train.json``) does not apply to the stage
configs, so ``multi_gpu`` defaults to false (in the options the task advertises and in a request that omits it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import monai.bundle
from monailabel.tasks.train.bundle import BundleConstants, BundleTrainTask

from scripts.engines.checkpoint_files import copy_atomically
from scripts.engines.checkpoints import BEST_NAME, read_done
from scripts.networks.definition import RECORD_NAME

__all__ = [
    "MIN_LABELLED",
    "STAGE_CONFIGS",
    "Seg4RegSegmentationTrainTask",
    "SegmentationStageConstants",
    "publish_best_model",
    "small_set_batch_size",
]

logger = logging.getLogger(__name__)

STAGE_CONFIGS: tuple[str, str] = ("train.yaml", "stage_a.yaml")
"""The configs (under ``configs/``) of the stage MONAI Label trains, before any recipe overlay."""

MIN_LABELLED = 2
"""Labelled images a training request needs: one to train on, one to choose the best epoch by validation Dice."""


def small_set_batch_size(batch_size: int, n_train: int) -> int:
    """The batch size for ``n_train`` training pairs: ``batch_size``, or ``n_train`` when fewer (``drop_last`` then
    still leaves one full batch per epoch).

    Raises:
        ValueError: when ``n_train`` < 1 or ``batch_size`` < 1.
    """
    if n_train < 1 or batch_size < 1:
        raise ValueError(f"need at least one training pair and a batch size >= 1, got {n_train} and {batch_size}")
    return min(int(batch_size), int(n_train))


class SegmentationStageConstants(BundleConstants):
    """``BundleTrainTask``'s names for this bundle: the train config is stage (a)'s (read with ``train.yaml``)."""

    def configs(self) -> Sequence[str]:
        return [STAGE_CONFIGS[-1]]


def publish_best_model(stage_dir: str | Path, models_dir: str | Path) -> Path | None:
    """Copy a finished stage's best model to ``<models_dir>/model.pt``, with the ``network.json`` that describes it.

    Args:
        stage_dir: the stage folder (``<ckpt_dir>/stage_a``).
        models_dir: the bundle's ``models`` folder.

    Returns:
        The written file, or None when the stage did not finish (no ``done.json`` or no best model): then nothing
        is replaced.
    """
    best = Path(stage_dir) / BEST_NAME
    if read_done(stage_dir) is None or not best.is_file() or not (Path(stage_dir) / RECORD_NAME).is_file():
        logger.warning("%s holds no finished stage: %s/%s is left as it was", stage_dir, models_dir, BEST_NAME)
        return None
    target = Path(models_dir) / BEST_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    # the settings first: inference builds its network from them, so the model must never arrive without them
    copy_atomically(Path(stage_dir) / RECORD_NAME, Path(models_dir) / RECORD_NAME)
    copy_atomically(best, target)  # MONAI Label may load it meanwhile: never a half-copied file
    logger.info("published %s as %s", best, target)
    return target


class Seg4RegSegmentationTrainTask(BundleTrainTask):
    """Train the bundle's segmentation stage (a) from a MONAI Label datastore.

    Args:
        path: the bundle folder (holding ``configs/`` and ``models/``).
        conf: the MONAI Label app's configuration.
        overlays: recipe overlays read after the stage configs, as file names under ``configs/`` or paths
            (``["cpu.yaml"]`` to train with the CPU recipe).
        publish: copy the best model to ``models/model.pt`` (and its ``network.json``) when the stage finishes.
        enable_tracking: MLflow tracking through MONAI Label's settings (``BundleTrainTask``).
        load_strict: load ``models/model.pt`` strictly (it is a whole Seg4RegPlus of the same recipe).

    Raises:
        FileNotFoundError: naming an overlay that does not exist.
    """

    def __init__(
        self,
        path: str,
        conf: dict[str, str],
        overlays: Sequence[str] = (),
        publish: bool = True,
        enable_tracking: bool = False,
        load_strict: bool = True,
    ) -> None:
        configs = Path(path) / "configs"
        self.config_files = [str(configs / name) for name in STAGE_CONFIGS]
        for overlay in overlays:
            overlay_path = Path(overlay) if Path(overlay).is_absolute() else configs / overlay
            if not overlay_path.is_file():
                raise FileNotFoundError(f"recipe overlay {overlay_path} does not exist.")
            self.config_files.append(str(overlay_path))
        self.publish = publish
        super().__init__(
            path,
            conf,
            const=SegmentationStageConstants(),
            enable_tracking=enable_tracking,
            load_strict=load_strict,
        )

    def _load_bundle_config(self, path: str, config: str) -> monai.bundle.ConfigParser:
        parser = monai.bundle.ConfigParser()
        parser.read_config(self.config_files)
        parser.config.update({self.const.key_bundle_root(): path})
        return parser

    def _partition_datalist(self, datalist: list, request: dict, shuffle: bool = False) -> tuple[list, list]:
        if not request.get("val_split", 0.2) > 0:
            raise ValueError(
                f"val_split must be > 0, got {request.get('val_split')!r}: stage (a) keeps its best model by the "
                "validation Dice, so some annotated images must be held out."
            )
        if len(datalist) < MIN_LABELLED:
            raise ValueError(
                f"stage (a) needs at least {MIN_LABELLED} labelled images (1 to train on, 1 to validate), the "
                f"datastore has {len(datalist)}: label {MIN_LABELLED - len(datalist)} more."
            )
        train, val = super()._partition_datalist(datalist, request, shuffle)
        if not val:  # a val_split too small for this few images: hold one out rather than validate on nothing
            train, val = list(train[:-1]), list(train[-1:])
            logger.info(
                "val_split %s left no validation image: holding out 1 of %d",
                request.get("val_split", 0.2),
                len(train) + 1,
            )
        return train, val

    def config(self) -> dict[str, Any]:
        """The options MONAI Label shows for a train request; ``multi_gpu`` off (see the module docstring)."""
        return {**super().config(), "multi_gpu": False}

    def __call__(self, request: dict, datastore: Any) -> dict:
        """Train stage (a) on the datastore's labelled images; ``multi_gpu`` is false unless the request says so."""
        return super().__call__({"multi_gpu": False, **request}, datastore)

    def _update_overrides(self, overrides: dict[str, Any]) -> dict[str, Any]:
        pairs = "scripts.monailabel.pairs.pair_preprocessing"
        n_train = len(overrides.get(self.const.key_train_dataset_data()) or [])
        batch_size = small_set_batch_size(self.bundle_config.get_parsed_content("batch_size"), n_train)
        overrides.update(
            {
                "batch_size": batch_size,
                "dataset_root": "MONAI Label datastore",  # recorded with the run; no dataset folder is read
                "overwrite": True,  # every training request retrains the stage in its folder
                "train#preprocessing": {
                    "_target_": pairs,
                    "spatial_size": "@spatial_size",
                    "augmentation": "@train#augmentation",
                },
                "validate#preprocessing": {"_target_": pairs, "spatial_size": "@spatial_size"},
            }
        )
        return overrides

    def run_single_gpu(self, request: dict, overrides: dict[str, Any]) -> None:
        monai.bundle.run(
            run_id=request.get("run_id", "run"),
            init_id=None,
            final_id=None,
            meta_file=self.bundle_metadata_path,
            config_file=self.config_files,
            **overrides,
        )
        if self.publish:
            parser = self._load_bundle_config(self.bundle_path, "")
            for key, value in overrides.items():
                parser[key] = value
            publish_best_model(parser.get_parsed_content("stage_dir"), Path(self.bundle_path) / "models")
