# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Triangle consistency learning end to end: the stage workflows run one after another, each from the last one's model.

``train.yaml``'s ``training`` id calls :func:`run_stages`. Each stage is its own MONAI ``ConfigWorkflow`` built from
``common.yaml``, that stage's overlay and the recipe overlays (``cpu.yaml``, an ablation, ...), with the command line's
overrides passed on, so that running the pipeline and running the stages one by one do exactly the same thing.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monai.bundle import ConfigWorkflow

from scripts.engines.checkpoints import BEST_NAME, StageFinishedError, read_done
from scripts.engines.distributed import is_main_process
from scripts.flags import as_flag

__all__ = ["STAGES", "format_results", "run_stages"]

logger = logging.getLogger(__name__)

STAGES = ("a", "b", "c", "d", "e")
_COLUMNS = (
    ("val_smape", "SMAPE %"),
    ("val_mae", "MAE deg"),
    ("val_mae_angle1", "MAE a1"),
    ("val_mae_angle2", "MAE a2"),
    ("val_mae_angle3", "MAE a3"),
    ("val_jaccard", "JA"),
    ("val_dice", "Dice"),
)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__
    return False


def format_results(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of each stage's best-epoch validation metrics and wall time.

    When the stages recorded it, a last row gives the mean predictor's scores on the same validation set (every image
    predicted as the training mean angles), the floor a model must beat.
    """
    header = "| stage | " + " | ".join(title for _, title in _COLUMNS) + " | best epoch | minutes |"
    lines = [header, "|" + "---|" * (len(_COLUMNS) + 3)]

    def row(name: str, metrics: Mapping[str, float], epoch: object, minutes: str) -> str:
        cells = [f"{metrics[key]:.4g}" if key in metrics else "-" for key, _ in _COLUMNS]
        return f"| {name} | " + " | ".join(cells) + f" | {epoch} | {minutes} |"

    for stage, record in results.items():
        minutes = f"{record['seconds'] / 60:.1f}" if record.get("seconds") is not None else "-"
        lines.append(row(stage, record.get("metrics", {}), record.get("best_epoch", "-"), minutes))
    baseline = next((r["mean_predictor"] for r in reversed(list(results.values())) if r.get("mean_predictor")), None)
    if baseline:
        lines.append(row("mean predictor", baseline, "-", "-"))
    return "\n".join(lines)


def run_stages(
    config_dir: str | Path,
    ckpt_dir: str | Path,
    stages: Sequence[str] = STAGES,
    overlays: Sequence[str] = (),
    overrides: Mapping[str, Any] | None = None,
    tracking: str | None = None,
    retrain: bool = False,
) -> dict[str, dict]:
    """Run the stages in order, each starting from the previous one's best model; skip those this run already finished.

    Each stage checks its folder first: finished by the same run (dataset, fold, recipe) it is skipped, written by
    another run it stops with a message naming the folder, so a finished phantom run is never reported as a result on
    the real data.

    Args:
        config_dir: the bundle's ``configs`` folder.
        ckpt_dir: where the stage folders are (``<ckpt_dir>/stage_<x>``); the last stage's best model is copied to
            ``<ckpt_dir>/model.pt`` for inference.
        stages: which stages, in order (an ablation drops some).
        overlays: config files merged after ``common.yaml`` and the stage's own file (recipes, ablations).
        overrides: id-value pairs given to every stage (``dataset_dir``, ``fold``, ...).
        tracking: a tracking settings file (or ``"mlflow"``) for every stage, or None.
        retrain: train finished stages again (their folders are cleared) instead of skipping them.

    Returns:
        ``{stage: done record}``, the record holding the best-epoch validation metrics and the wall time.

    Raises:
        ValueError: on an unknown stage name.
    """
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"stages must be taken from {STAGES}, got {list(stages)}.")
    retrain = as_flag(retrain, "retrain")
    config_dir, ckpt_dir = Path(config_dir), Path(ckpt_dir)
    results: dict[str, dict] = {}
    previous: Path | None = None
    for stage in stages:
        stage_dir = ckpt_dir / f"stage_{stage}"
        # empty values mean "the stage's default" (no dataset: the phantoms; no tracking URI: the SQLite file)
        values = {key: value for key, value in (overrides or {}).items() if value not in ("", None)}
        values.update(ckpt_dir=str(ckpt_dir), overwrite=retrain)
        if previous is not None:
            values["previous_ckpt"] = str(previous)
        files = [str(config_dir / "common.yaml"), str(config_dir / f"stage_{stage}.yaml"), *map(str, overlays)]
        logger.info("stage %s: %s", stage, files)
        workflow = ConfigWorkflow(
            config_file=files,
            meta_file=str(config_dir / "metadata.json"),
            logging_file=str(config_dir / "logging.conf"),
            workflow_type="train",
            tracking=tracking,
            **values,
        )
        workflow.initialize()
        try:
            workflow.run()
        except RuntimeError as error:
            # the stage checks its folder before anything else: finished by this same run means nothing to do
            if not _caused_by(error, StageFinishedError):
                raise
            logger.info(
                "stage %s finished earlier (%s): skipped; pass --retrain true to train it again", stage, stage_dir
            )
        else:
            workflow.finalize()
        done = read_done(stage_dir)
        if done is None:
            raise RuntimeError(f"stage {stage} ended without writing {stage_dir / 'done.json'}.")
        results[stage] = done
        previous = stage_dir / BEST_NAME
    if is_main_process():
        if previous is not None:
            shutil.copyfile(previous, ckpt_dir / BEST_NAME)
        (ckpt_dir / "results.json").write_text(json.dumps(results, indent=2))
    logger.info("validation metrics of each stage's best epoch (also in %s):", ckpt_dir / "results.json")
    print(format_results(results), flush=True)  # the pipeline's answer for the person at the terminal
    return results
