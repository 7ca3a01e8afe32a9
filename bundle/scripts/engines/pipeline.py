# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Triangle consistency learning end to end: the stage workflows run one after another, each from the last one's model.

``train.yaml``'s ``training`` id calls :func:`run_stages` with :func:`stage_overrides`. Each stage is its own MONAI
``ConfigWorkflow`` built from ``train.yaml`` and that stage's overlay, then given every id that the pipeline's own
config changed from ``train.yaml``: those of the overlays listed after it (``cpu.yaml``, an ablation, ...) and those of
the command line. Running the pipeline and running the stages one by one therefore do exactly the same thing, and an
id that no stage uses is refused by name before anything runs (docs/design.md, "One path from the command line to
every stage").
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

from monai.bundle import ConfigParser, ConfigWorkflow
from monai.bundle.reference_resolver import ReferenceResolver
from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

from scripts.engines.checkpoint_files import copy_atomically
from scripts.engines.checkpoints import BEST_NAME, RUN_NAME, StageFinishedError, read_done
from scripts.engines.distributed import is_main_process
from scripts.flags import as_flag
from scripts.metrics.registry import VERTEBRAE, table_columns
from scripts.networks.definition import RECORD_NAME

__all__ = ["PIPELINE_IDS", "STAGES", "changed_ids", "format_results", "run_stages", "stage_overrides"]

logger = logging.getLogger(__name__)

STAGES = ("a", "b", "c", "d", "e")
# ids only the pipeline reads: never handed to a stage
PIPELINE_IDS = ("_meta_", "stages", "retrain", "training", "save_execute_config", "tracking_settings", "tracking")
_REFERENCE = re.compile(r"@([A-Za-z_]\w*)")


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__cause__
    return False


def format_results(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of each stage's best-epoch validation metrics (:mod:`scripts.metrics.registry`) and wall time.

    When the stages recorded it, a last row gives the mean predictor's scores on the same validation set (every image
    predicted as the training mean angles), the floor a model must beat.
    """
    baseline = next((r["mean_predictor"] for r in reversed(list(results.values())) if r.get("mean_predictor")), None)
    recorded = [record.get("metrics", {}) for record in results.values()] + [baseline or {}]
    # every metric of the registry, its titles and order; the vertebra Dice only where an N_S labels vertebrae
    vertebrae = {key for key, _ in table_columns(VERTEBRAE)}
    columns = [
        (key, title)
        for key, title in table_columns()
        if key not in vertebrae or any(key in metrics for metrics in recorded)
    ]
    header = "| stage | " + " | ".join(title for _, title in columns) + " | best epoch | minutes |"
    lines = [header, "|" + "---|" * (len(columns) + 3)]

    def row(name: str, metrics: Mapping[str, float], epoch: object, minutes: str) -> str:
        cells = [f"{metrics[key]:.4g}" if key in metrics else "-" for key, _ in columns]
        return f"| {name} | " + " | ".join(cells) + f" | {epoch} | {minutes} |"

    for stage, record in results.items():
        minutes = f"{record['seconds'] / 60:.1f}" if record.get("seconds") is not None else "-"
        lines.append(row(stage, record.get("metrics", {}), record.get("best_epoch", "-"), minutes))
    if baseline:
        lines.append(row("mean predictor", baseline, "-", "-"))
    return "\n".join(lines)


def changed_ids(base: Mapping[str, Any], merged: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The ids whose raw config ``merged`` changes from ``base``, as MONAI override pairs (``"train#lr": 0.1``).

    A dict that keeps every key of its ``base`` counterpart is compared key by key (so an overlay that sets
    ``train#lr`` hands on only that); a dict that drops keys, a list, or any other value is handed on whole, as MONAI's
    own override would have replaced it.
    """
    changed: dict[str, Any] = {}
    for key, value in merged.items():
        path = f"{prefix}{key}"
        if key not in base:
            changed[path] = value
        elif isinstance(value, Mapping) and isinstance(base[key], Mapping) and set(value) >= set(base[key]):
            changed.update(changed_ids(base[key], value, f"{path}#"))
        elif value != base[key]:
            changed[path] = value
    return changed


def _running_parser() -> ConfigParser:
    """The ConfigParser evaluating the config expression that called this (MONAI hands an expression no handle on it).

    MONAI evaluates every ``$`` expression from ``ConfigParser.get_parsed_content``, so that parser is on the call stack.
    """
    frame = inspect.currentframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, ConfigParser):
            return owner
        frame = frame.f_back
    raise RuntimeError("stage_overrides() reads the config being run: call it from a config expression (train.yaml).")


def _as_parsed(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as parsing leaves the running config's raw content (ids spelt with ``::``, relative ids resolved)."""
    parser = ConfigParser(config)
    parser.resolve_macro_and_relative_ids()
    return parser.get()


def _strings(config: Any) -> Iterator[str]:
    if isinstance(config, str):
        yield config
    elif isinstance(config, Mapping):
        for key, value in config.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(config, (list, tuple)):
        for value in config:
            yield from _strings(value)


def _undo_tracking_patch(config: dict[str, Any], settings: Mapping[str, Any]) -> None:
    """Remove what MONAI's ``--tracking`` patch added to the pipeline's config: each stage gets its own patch."""
    handlers_id = settings.get("handlers_id", {})
    for key, value in settings.get("configs", {}).items():
        if key in handlers_id:
            node: Any = config
            for part in ReferenceResolver.split_id(handlers_id[key]["handlers"]):
                node = node.get(part) if isinstance(node, Mapping) else None
            if isinstance(node, list) and node and node[-1] == value:
                node.pop()
        elif config.get(key) == value:
            del config[key]


def stage_overrides(base_file: str | Path, tracking: str | Path | None = None) -> dict[str, Any]:
    """Every id the running pipeline config sets differently from ``base_file``: what each stage must be given.

    The pipeline's config is ``train.yaml`` (``base_file``), then the overlays listed after it, then the command line.
    Whatever those change is handed to every stage as override pairs, raw (expressions are evaluated in the stage, where
    ``@stage`` and ``@network`` exist), except the pipeline's own ids (:data:`PIPELINE_IDS`).

    Args:
        base_file: ``train.yaml``.
        tracking: the tracking settings file when ``--tracking`` was given: MONAI patched the pipeline's config with
            it (or with its own ``mlflow`` settings), and that patch is left out (each stage is patched itself).

    Returns:
        ``{id: raw value}``.

    Raises:
        ValueError: naming every new id that no stage uses: not an id of ``base_file`` and not referenced (``@id``) by
            any other setting, most often a misspelt id. Nothing has run yet.
    """
    merged = deepcopy(_running_parser().get())
    if tracking:  # MONAI patched with its own settings (--tracking mlflow) or with the file given (--tracking <file>)
        for settings in (*DEFAULT_EXP_MGMT_SETTINGS.values(), ConfigParser.load_config_files(tracking)):
            _undo_tracking_patch(merged, _as_parsed(deepcopy(settings)))
    base = _as_parsed(ConfigParser.load_config_files(base_file))
    changed = {key: value for key, value in changed_ids(base, merged).items() if key.split("#")[0] not in PIPELINE_IDS}
    referenced = {name for text in _strings(merged) for name in _REFERENCE.findall(text)}
    unused = sorted({key.split("#")[0] for key in changed} - set(base) - referenced)
    if unused:
        raise ValueError(
            f"{', '.join(unused)}: given to the training pipeline but used by no stage (not an id of {base_file}, "
            "nor referenced by another setting); check the spelling."
        )
    return changed


def run_stages(
    config_dir: str | Path,
    ckpt_dir: str | Path,
    stages: Sequence[str] = STAGES,
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
        ckpt_dir: where the stage folders are (``<ckpt_dir>/stage_<x>``, as the stages resolve ``ckpt_dir`` from the
            same settings); the last stage's best model is copied to ``<ckpt_dir>/model.pt`` for inference.
        stages: which stages, in order (an ablation drops some). Each stage's overlay names the model it starts from.
        overrides: id-value pairs given to every stage, after its overlay (:func:`stage_overrides`).
        tracking: a tracking settings file (or ``"mlflow"``) for every stage, or None.
        retrain: train finished stages again (their folders are cleared) instead of skipping them.

    Returns:
        ``{stage: done record}``, the record holding the best-epoch validation metrics and the wall time.

    Raises:
        ValueError: on an unknown stage name.
        FileExistsError: when ``<ckpt_dir>/model.pt`` exists but no training run of the bundle wrote it (no
            ``run.json`` beside it), unless ``overwrite`` is among the overrides; before any stage runs.
    """
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise ValueError(f"stages must be taken from {STAGES}, got {list(stages)}.")
    retrain = as_flag(retrain, "retrain")
    config_dir, ckpt_dir = Path(config_dir), Path(ckpt_dir)
    overwrite = as_flag((overrides or {}).get("overwrite", False), "overwrite")
    if (ckpt_dir / BEST_NAME).is_file() and not (ckpt_dir / RUN_NAME).is_file() and not overwrite:
        # the pipeline leaves run.json beside the model.pt it copies; without one, that model is not a pipeline's
        raise FileExistsError(
            f"{ckpt_dir / BEST_NAME} was not written by a training run of this bundle and would be replaced; "
            "choose another --ckpt_dir, or pass --overwrite true to replace it. Nothing was trained."
        )
    results: dict[str, dict] = {}
    previous: Path | None = None
    for stage in stages:
        stage_dir = ckpt_dir / f"stage_{stage}"
        values = {**(overrides or {}), "retrain_finished": retrain}
        if tracking:  # train.yaml's false is the pipeline's own (see there): each tracked stage saves its config
            values["save_execute_config"] = True
        files = [str(config_dir / "train.yaml"), str(config_dir / f"stage_{stage}.yaml")]
        logger.info("stage %s: %s with %s", stage, files, sorted(values))
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
        finally:
            workflow.finalize()
        done = read_done(stage_dir)
        if done is None:
            raise RuntimeError(f"stage {stage} ended without writing {stage_dir / 'done.json'}.")
        results[stage] = done
        previous = stage_dir / BEST_NAME
    if is_main_process():
        if previous is not None:  # the model and the settings that built it, side by side
            # each through a temporary file and a rename: a kill mid-copy leaves the old file, never a torn one.
            # run.json (whose model it is) first: a kill after it never leaves a model.pt the next run would refuse
            copy_atomically(previous.parent / RUN_NAME, ckpt_dir / RUN_NAME)
            copy_atomically(previous, ckpt_dir / BEST_NAME)
            copy_atomically(previous.parent / RECORD_NAME, ckpt_dir / RECORD_NAME)
            # the hash_val entries of large_files.yml, where a user who hosts these files puts their links
            for name in (BEST_NAME, RECORD_NAME):
                md5 = hashlib.md5((ckpt_dir / name).read_bytes(), usedforsecurity=False).hexdigest()
                logger.info("final model file %s: md5 %s", ckpt_dir / name, md5)
        (ckpt_dir / "results.json").write_text(json.dumps(results, indent=2))
    logger.info("validation metrics of each stage's best epoch (also in %s):", ckpt_dir / "results.json")
    print(format_results(results), flush=True)  # the pipeline's answer for the person at the terminal
    return results
