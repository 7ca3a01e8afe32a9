# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Stage folders: hand-over from the previous stage, resume after a kill, and no silent overwriting.

A stage folder (``<ckpt_dir>/stage_<x>``) holds::

    run.json                    what run the folder belongs to (dataset, fold, recipe); another run is refused
    checkpoint_epoch=<n>.pt     the last epoch's model, optimiser and trainer state, to resume a killed stage
    model.pt                    the best model by the stage's key metric: what the next stage loads
    network.json                the settings of the network those weights belong to (inference builds from it)
    done.json                   written when the stage finished, with its best metric; a finished stage is not retrained
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from scripts.engines.checkpoint_files import checkpoint_damage, damaged_error, epoch_checkpoints, load_checkpoint_file
from scripts.engines.distributed import on_main_process
from scripts.flags import as_flag
from scripts.networks.definition import write_settings

__all__ = [
    "BEST_NAME",
    "DONE_NAME",
    "RUN_NAME",
    "StageFinishedError",
    "claim_stage_dir",
    "load_weights",
    "mark_done",
    "prepare_stage_dir",
    "read_done",
]

logger = logging.getLogger(__name__)

BEST_NAME = "model.pt"
DONE_NAME = "done.json"
RUN_NAME = "run.json"


class StageFinishedError(RuntimeError):
    """The stage already finished in this folder; retraining needs an explicit ``overwrite``."""


def load_weights(network: nn.Module, path: str | Path | None, stage: str = "") -> nn.Module:
    """Load a stage's best model into ``network`` (the hand-over between stages).

    Args:
        network: the model to fill.
        path: a ``model.pt`` written by a previous stage, or None / empty to keep the initial weights (stage (a)).
        stage: the name of the stage that needs it, for the error message.

    Returns:
        ``network``, so that a config can write ``$load_weights(@network_def, @previous_ckpt)``.

    Raises:
        FileNotFoundError: naming the missing file and the stage to run first.
        scripts.engines.checkpoint_files.DamagedCheckpointError: a ValueError naming the file when it is truncated
            or corrupted (bytes changed in place included: every member's checksum is verified before loading).
        ValueError: when the file does not hold weights of this network.
    """
    if not path:
        return network
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{stage or 'this stage'} starts from the previous stage's best model, {path}, which does not exist: "
            "train the previous stage first (bundle/configs/train.yaml runs the stages in order)."
        )
    advice = "train the stage that writes it again, or restore an intact copy"
    # every member's CRC-32 first: torch does not check them, and a byte changed inside a tensor would load silently
    reason = checkpoint_damage(path)
    if reason is not None:
        raise damaged_error(path, reason, advice)
    checkpoint = load_checkpoint_file(path, map_location="cpu", weights_only=True, advice=advice)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, Mapping) else checkpoint
    try:
        network.load_state_dict(state)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"{path} does not hold weights of this network ({str(error).splitlines()[0]}).") from error
    logger.info("%s: loaded %s", stage or "stage", path)
    return network


def read_done(stage_dir: str | Path) -> dict[str, Any] | None:
    """The ``done.json`` record of a finished stage, or None."""
    path = Path(stage_dir) / DONE_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def _latest_epoch_checkpoint(stage_dir: Path) -> Path | None:
    found = epoch_checkpoints(stage_dir)
    return found[0][1] if found else None


def prepare_stage_dir(
    stage_dir: str | Path, run: Mapping[str, Any], overwrite: bool = False, retrain_finished: bool = False
) -> str | None:
    """Check a stage folder before anything is built, and say where to resume from; writes nothing.

    Rank 0 decides for every rank. The folder is claimed (:func:`claim_stage_dir`) only once the stage's settings,
    data and weights have all been built, so a start that fails on one of them leaves nothing behind.

    Args:
        stage_dir: the stage's checkpoint folder.
        run: what identifies the run (dataset, fold, recipe): a folder written by a different run is refused.
        overwrite: the folder will be cleared whatever it holds (another run's checkpoints included).
        retrain_finished: a stage this same run finished will be trained again (the pipeline's ``--retrain``); another
            run's folder is still refused.

    Returns:
        The latest epoch checkpoint to resume from, or None to start afresh.

    Raises:
        StageFinishedError: the stage already finished here and neither ``overwrite`` nor ``retrain_finished`` is set.
        ValueError: the folder holds another run's checkpoints and ``overwrite`` is false.
    """
    flags = as_flag(overwrite, "overwrite"), as_flag(retrain_finished, "retrain_finished")
    return on_main_process(_check_stage_dir, Path(stage_dir), run, *flags)


def _record(run: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(run), default=str))


def _check_stage_dir(folder: Path, run: Mapping[str, Any], overwrite: bool, retrain_finished: bool) -> str | None:
    if overwrite or not folder.is_dir() or not any(folder.iterdir()):
        return None
    run_file = folder / RUN_NAME
    previous = json.loads(run_file.read_text()) if run_file.is_file() else None
    if previous != _record(run):
        raise ValueError(
            f"{folder} holds checkpoints of another run ({previous}); this run is {_record(run)}. "
            "Choose another --ckpt_dir, or pass --overwrite true to replace them."
        )
    if (folder / DONE_NAME).is_file():
        if retrain_finished:
            return None
        raise StageFinishedError(
            f"{folder} holds a finished stage ({DONE_NAME}); pass --overwrite true to train it again."
        )
    resume = _latest_epoch_checkpoint(folder)
    if resume is not None:
        logger.info("resuming from %s", resume)
    return str(resume) if resume is not None else None


def claim_stage_dir(
    stage_dir: str | Path,
    run: Mapping[str, Any],
    network_settings: Mapping[str, Any],
    resume: str | None,
    overwrite: bool = False,
) -> None:
    """Make the stage folder this run's, once everything the stage needs has been built (rank 0 writes).

    A folder that is not resumed is emptied first (the checks of :func:`prepare_stage_dir` allowed it: ``overwrite``,
    or this run's own finished stage being retrained); then ``run.json`` and ``network.json`` (the settings of the
    network whose weights the stage saves, from which inference builds it) are written.

    Args:
        stage_dir: the stage's checkpoint folder (created when missing).
        run: what identifies the run.
        network_settings: the network's settings (:data:`scripts.networks.definition.NETWORK_SETTINGS`).
        resume: the epoch checkpoint the stage resumes from (:func:`prepare_stage_dir`), or None.
        overwrite: clear the folder even when it could be resumed.
    """
    on_main_process(_claim_stage_dir, Path(stage_dir), run, network_settings, resume, as_flag(overwrite, "overwrite"))


def _claim_stage_dir(
    folder: Path, run: Mapping[str, Any], network_settings: Mapping[str, Any], resume: str | None, overwrite: bool
) -> None:
    if folder.is_dir() and (overwrite or resume is None):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUN_NAME).write_text(json.dumps(_record(run), indent=2))
    write_settings(folder, network_settings)


def mark_done(
    stage_dir: str | Path,
    stage: str,
    key_metric: str,
    best_metrics: Mapping[str, float],
    best_epoch: int,
    seconds: float,
    mean_predictor: Mapping[str, float] | None = None,
) -> dict:
    """Record a finished stage in ``done.json``: the validation metrics of its best epoch and its wall time.

    Args:
        stage_dir: the stage folder.
        stage: the stage name.
        key_metric: the name of the metric that chose the best epoch.
        best_metrics: every validation metric of that epoch.
        best_epoch: that epoch.
        seconds: wall time of the stage's training, validation included.
        mean_predictor: the same metrics for predicting the training mean angles (the floor to beat), or None.

    Returns:
        The record written.
    """
    return on_main_process(
        _write_done, Path(stage_dir), stage, key_metric, best_metrics, best_epoch, seconds, mean_predictor
    )


def _write_done(
    folder: Path,
    stage: str,
    key_metric: str,
    best_metrics: Mapping[str, float],
    best_epoch: int,
    seconds: float,
    mean_predictor: Mapping[str, float] | None,
) -> dict:
    record = {
        "stage": stage,
        "key_metric": key_metric,
        "best_epoch": int(best_epoch),
        "metrics": {name: float(value) for name, value in best_metrics.items()},
        "best_model": str(folder / BEST_NAME),
        "seconds": round(float(seconds), 1),
    }
    if mean_predictor is not None:
        record["mean_predictor"] = {name: float(value) for name, value in mean_predictor.items()}
    (folder / DONE_NAME).write_text(json.dumps(record, indent=2))
    return record
