# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Cross-validate a training recipe: train all stages on k patient-grouped folds, score each on its own held-out fold.

    python scripts/cross_validate.py <boostnet_labeldata> --folds 1 2 --out runs/cv_cpu \
        [--recipe bundle/configs/cpu.yaml ...] [--inner-val-folds 6] [--set id=value ...]

For each fold k, one after another:
1. the training pipeline (``run training`` with ``train.yaml`` and the recipe overlays) trains every stage with fold k
   left out entirely; each stage chooses its best epoch on an inner validation part (1 / ``inner_val_folds`` of the
   other patients, ``inner_val_folds`` in ``train.yaml``), never on fold k;
2. the ``evaluate`` workflow scores the final model on fold k twice: masks at the network size and at the original size;
3. the mean predictor (the training part's mean angles) is scored on fold k, the floor to beat.

Outputs go to ``<out>/fold_<k>/`` (models, logs, evaluations); a fold whose evaluation is there is not run again, and a
killed fold resumes (the pipeline skips its finished stages). ``<out>/cv_results.json`` and ``<out>/cv_results.md``
hold every fold's scores, their mean and standard deviation, and the training wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
sys.path.insert(0, str(REPO / "bundle"))

from scripts.data.aasce import DatasetError, kfold_split, load_datalist, patient_id  # noqa: E402
from scripts.metrics.angles import mean_predictor_scores  # noqa: E402

# (key in a fold's scores, column title) of the results table
COLUMNS = (
    ("smape", "SMAPE %"),
    ("mae", "MAE deg"),
    ("mae_angle1", "MAE a1"),
    ("mae_angle2", "MAE a2"),
    ("mae_angle3", "MAE a3"),
    ("jaccard_network", "JA (net)"),
    ("dice_network", "Dice (net)"),
    ("dice_original", "Dice (orig)"),
    ("mean_predictor_smape", "mean-pred SMAPE %"),
    ("train_minutes", "train min"),
)
# a vertebra-level N_S (vertebrae.yaml) also has these, from its evaluation's ``geometry`` (network resolution)
GEOMETRY_COLUMNS = (
    ("vertebra_dice", "Dice (vert)"),
    ("geometry_measured", "measured"),
    ("smape_geometric", "SMAPE geo %"),
    ("mae_geometric", "MAE geo"),
    ("smape_regressed_same_images", "SMAPE reg same %"),
    ("smape_combined", "SMAPE comb %"),
    ("mae_combined", "MAE comb"),
    ("end_vertebra_exact", "ends exact"),
    ("end_vertebra_within_one", "ends +-1"),
    ("landmark_error_px", "landmark px"),
)


class CrossValidationError(ValueError):
    """A setting or dataset that cross-validation cannot run on (the message says which and why)."""


def check_split(dataset_root: Path, split: str, folds: list[int], num_folds: int, seed: int) -> list[dict]:
    """The split's records, after checking that it has enough patients for the folds and that the folds exist.

    Raises:
        CrossValidationError: on a missing or malformed dataset, too few patients, or a fold out of range.
    """
    try:
        records = load_datalist(dataset_root, split)
    except DatasetError as error:
        raise CrossValidationError(str(error)) from error
    patients = {patient_id(record["name"]) for record in records}
    if len(patients) < num_folds:
        raise CrossValidationError(
            f"{dataset_root} split {split!r} has {len(patients)} patients, fewer than --num-folds {num_folds}."
        )
    bad = [fold for fold in folds if not 0 <= fold < num_folds]
    if bad or not folds:
        raise CrossValidationError(f"--folds must be distinct numbers in [0, {num_folds}), got {folds}.")
    return records


def mean_predictor(records: list[dict], num_folds: int, fold: int, seed: int) -> dict[str, float]:
    """SMAPE and MAE of predicting the training part's mean angles for every image of the held-out fold."""
    train, test = kfold_split(records, num_folds=num_folds, fold=fold, seed=seed)
    scores = mean_predictor_scores(train, test)
    return {"mean_predictor_smape": scores["val_smape"], "mean_predictor_mae": scores["val_mae"]}


def _config_list(files: list[Path]) -> str:
    return "[" + ",".join(f"'{path}'" for path in files) + "]"


def _run(command: list[str], log: Path) -> None:
    """Run a workflow in its own process, its output appended to ``log``; stop with its log's path if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as stream:
        stream.write(f"\n$ {' '.join(command)}\n")
        stream.flush()
        result = subprocess.run(command, cwd=REPO, stdout=stream, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{command[3]} workflow failed (exit {result.returncode}); see {log}")


def write_fold_overlay(path: Path, inner_val_folds: int, sets: list[str]) -> Path:
    """The overlay every stage and the evaluation of a fold merge: the inner validation, no progress bars (the output
    goes to a log file), and the ``--set`` ids.

    Values are read as YAML (``--set aasce_epochs#b=30`` gives the number 30). Listed after the recipe, it reaches every
    stage of the pipeline as any overlay does.
    """
    values: dict[str, object] = {"inner_val_folds": inner_val_folds, "progress_bar": False}
    for item in sets:
        key, value = item.split("=", 1)
        values[key] = yaml.safe_load(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def run_fold(args: argparse.Namespace, fold: int, records: list[dict]) -> dict[str, float]:
    """Train, evaluate and score one fold; returns its scores (see :data:`COLUMNS`)."""
    fold_dir = args.out / f"fold_{fold}"
    models, log = fold_dir / "models", fold_dir / "cv.log"
    overlay = write_fold_overlay(fold_dir.resolve() / "cv_overlay.yaml", args.inner_val_folds, args.set)
    recipe = [*(path.resolve() for path in args.recipe), overlay]
    common = ["--dataset_dir", str(args.dataset_root.resolve()), "--progress_bar", "false"]
    python = [sys.executable, "-m", "monai.bundle", "run"]
    started = time.monotonic()
    if not (models / "results.json").is_file():
        _run(
            [*python, "training", "--config_file", _config_list([CONFIGS / "train.yaml", *recipe]), *common,
             "--fold", str(fold), "--ckpt_dir", str(models), "--output_dir", str(fold_dir / "eval")],
            log,
        )  # fmt: skip
    results = json.loads((models / "results.json").read_text())
    scores: dict[str, float] = {"train_minutes": sum(r.get("seconds") or 0.0 for r in results.values()) / 60}
    for resolution in ("network", "original"):
        out = fold_dir / f"evaluation_{resolution}"
        if not (out / "metrics.json").is_file():
            eval_files = [CONFIGS / "inference.yaml", *recipe, CONFIGS / "evaluate.yaml"]
            _run(
                [*python, "evaluate", "--config_file", _config_list(eval_files), *common, "--split", args.split,
                 "--fold", str(fold), "--num_folds", str(args.num_folds), "--fold_seed", str(args.fold_seed),
                 "--ckpt_dir", str(models), "--output_dir", str(out), "--seg_resolution", resolution],
                log,
            )  # fmt: skip
        metrics = json.loads((out / "metrics.json").read_text())
        scores[f"dice_{resolution}"] = metrics["dice"]
        scores[f"jaccard_{resolution}"] = metrics["jaccard"]
        if resolution == "network":
            scores.update(smape=metrics["smape"], mae=metrics["mae"])
            scores.update({f"mae_{name}": value for name, value in metrics["mae_per_angle"].items()})
            scores.update(geometry_scores(metrics))
    scores.update(mean_predictor(records, args.num_folds, fold, args.fold_seed))
    scores["stage_smape"] = {stage: r["metrics"].get("val_smape") for stage, r in results.items()}
    scores["stage_dice"] = {stage: r["metrics"].get("val_dice") for stage, r in results.items()}
    scores["wall_minutes_this_call"] = (time.monotonic() - started) / 60
    return scores


def geometry_scores(metrics: dict) -> dict[str, float]:
    """The :data:`GEOMETRY_COLUMNS` of one evaluation's ``metrics.json`` (none for a spine-mask N_S)."""
    geometry = metrics.get("geometry")
    if not geometry:
        return {}
    scores = {key: geometry[key] for key, _ in GEOMETRY_COLUMNS if geometry.get(key) is not None}
    scores["geometry_measured"] = geometry["measured"] / geometry["num_images"]
    if "vertebra_dice" in metrics:
        scores["vertebra_dice"] = metrics["vertebra_dice"]
    return scores


def summarise(per_fold: dict[int, dict]) -> dict[str, dict[str, float]]:
    """Mean and (population) standard deviation over the folds of every numeric score."""
    keys = [key for key, value in next(iter(per_fold.values())).items() if isinstance(value, int | float)]
    summary = {}
    for key in keys:
        if not all(key in scores for scores in per_fold.values()):
            continue
        values = np.array([scores[key] for scores in per_fold.values()], dtype=np.float64)
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    return summary


def format_table(
    per_fold: dict[int, dict], summary: dict[str, dict[str, float]], columns: tuple[tuple[str, str], ...] = COLUMNS
) -> str:
    """A markdown table: one row per fold, then mean and standard deviation (``-`` where a fold lacks a score)."""
    lines = ["| fold | " + " | ".join(title for _, title in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for fold, scores in per_fold.items():
        lines.append(f"| {fold} | " + " | ".join(_cell(scores.get(key)) for key, _ in columns) + " |")
    for name in ("mean", "std"):
        lines.append(f"| {name} | " + " | ".join(_cell(summary.get(key, {}).get(name)) for key, _ in columns) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_root", type=Path, help="AASCE root (boostnet_labeldata)")
    parser.add_argument("--folds", type=int, nargs="+", required=True, help="held-out folds to run, in order")
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--recipe", type=Path, nargs="*", default=[CONFIGS / "cpu.yaml"],
                        help="overlays after train.yaml (default: the CPU recipe; none: the paper's)")  # fmt: skip
    parser.add_argument("--split", default="training", help="split folder (default: training)")
    parser.add_argument("--num-folds", type=int, default=5, help="patient-grouped folds (default: 5, as training)")
    parser.add_argument("--fold-seed", type=int, default=0, help="seed of the fold split (default: 0, as training)")
    parser.add_argument("--inner-val-folds", type=int, default=6,
                        help="epochs are chosen on 1/N of the training patients (default: 6)")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="ID=VALUE",
                        help="a config id for training and evaluation, e.g. --set aasce_epochs#b=30 (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if len(set(args.folds)) != len(args.folds):
            raise CrossValidationError(f"--folds must be distinct, got {args.folds}.")
        if args.inner_val_folds < 2:
            raise CrossValidationError(f"--inner-val-folds must be at least 2, got {args.inner_val_folds}.")
        bad = [item for item in args.set if "=" not in item or not item.split("=", 1)[0]]
        if bad:
            raise CrossValidationError(f"--set takes ID=VALUE, got {bad}.")
        missing = [str(path) for path in args.recipe if not path.is_file()]
        if missing:
            raise CrossValidationError(f"recipe overlay not found: {', '.join(missing)}.")
        records = check_split(args.dataset_root, args.split, args.folds, args.num_folds, args.fold_seed)
    except CrossValidationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    per_fold: dict[int, dict] = {}
    for fold in args.folds:
        print(f"fold {fold}: training and evaluating (log: {args.out / f'fold_{fold}' / 'cv.log'})", flush=True)
        try:
            per_fold[fold] = run_fold(args, fold, records)
        except RuntimeError as error:
            print(f"error: fold {fold}: {error}", file=sys.stderr)
            return 1
    summary = summarise(per_fold)
    table = format_table(per_fold, summary)
    if any(key in summary for key, _ in GEOMETRY_COLUMNS):
        table += "\n\nvertebra-level N_S, geometric path:\n\n" + format_table(per_fold, summary, GEOMETRY_COLUMNS)
    recipe = [str(path) for path in args.recipe]
    record = {"recipe": recipe, "sets": args.set, "inner_val_folds": args.inner_val_folds, "folds": per_fold,
              "summary": summary}  # fmt: skip
    (args.out / "cv_results.json").write_text(json.dumps(record, indent=2))
    (args.out / "cv_results.md").write_text(f"recipe: {recipe}, sets: {args.set}\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
