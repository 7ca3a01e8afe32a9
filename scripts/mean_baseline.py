# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The floor any Cobb angle model must beat: predict the training part's mean angles for every validation image.

    python scripts/mean_baseline.py <dataset_root> [--split training] [--fold 0] [--num-folds 5] [--seed 0]

Uses the same patient-grouped fold as training and ``evaluate.yaml`` (``scripts.data.aasce.kfold_split``) and the
bundle's own metrics; prints SMAPE (%), MAE and MAE per angle (degrees) on the held-out fold.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, kfold_split, load_datalist
from scripts.metrics.angles import mean_predictor_scores


def mean_baseline(records: list[dict], num_folds: int, fold: int, seed: int) -> dict[str, float]:
    """Scores of the mean predictor on fold ``fold``: ``{"smape", "mae", "mae_<angle>"..., "train", "val"}``."""
    train, val = kfold_split(records, num_folds=num_folds, fold=fold, seed=seed)
    scores = {key.removeprefix("val_"): value for key, value in mean_predictor_scores(train, val).items()}
    return {**scores, "train": len(train), "val": len(val)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_root", type=Path, help="folder holding data/<split> and labels/<split>")
    parser.add_argument("--split", default="training", help="split folder name (default: training)")
    parser.add_argument("--fold", type=int, default=0, help="held-out fold (default: 0)")
    parser.add_argument("--num-folds", type=int, default=5, help="folds of the split (default: 5, as training)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0, as training)")
    args = parser.parse_args(argv)
    try:
        records = load_datalist(args.dataset_root, args.split)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    scores = mean_baseline(records, args.num_folds, args.fold, args.seed)
    print(
        f"mean predictor, {args.split} fold {args.fold} ({scores.pop('train')} train / {scores.pop('val')} val images)"
    )
    print("| SMAPE % | MAE deg | " + " | ".join(f"MAE {name[4:]}" for name in scores if name.startswith("mae_")) + " |")
    print("|---" * len(scores) + "|")
    print("| " + " | ".join(f"{value:.2f}" for value in scores.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
