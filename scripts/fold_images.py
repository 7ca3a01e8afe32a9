# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A folder of one fold's held-out radiographs (symbolic links), to run ``inference`` on images a model never saw.

    python scripts/fold_images.py <boostnet_labeldata> --fold 3 --out <folder> [--split training] [--num-folds 5]
        [--fold-seed 0]

The fold is the patient-grouped one training holds out (``scripts.data.aasce.kfold_split`` with the same settings),
so ``run inference --dataset_dir <folder>`` with that fold's model scores radiographs it was not trained on. The links
point at the dataset; nothing is copied. An existing ``--out`` is refused.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, kfold_split, load_datalist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_root", help="AASCE root (boostnet_labeldata)")
    parser.add_argument("--fold", type=int, required=True, help="the held-out fold")
    parser.add_argument("--out", required=True, help="the folder to create")
    parser.add_argument("--split", default="training")
    parser.add_argument("--num-folds", type=int, default=5)
    parser.add_argument("--fold-seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"ERROR: {out} exists; give a new folder", file=sys.stderr)
        return 1
    try:
        records = load_datalist(args.dataset_root, args.split, require_angles=False)
        _, held_out = kfold_split(records, args.num_folds, args.fold, args.fold_seed)
    except (DatasetError, ValueError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True)
    for record in held_out:
        (out / Path(record["image"]).name).symlink_to(Path(record["image"]).resolve())
    print(f"{len(held_out)} images of fold {args.fold} linked into {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
