# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Cobb angles of every image of an AASCE-layout split, from its landmarks by the official rule.

    python scripts/cobb_angles.py <dataset_root> --split training --out angles.csv [--compare]

Writes ``filename,angle1,angle2,angle3`` (degrees; angle1 is the largest curve) and prints a summary. With ``--compare`` it
also reports the largest difference from the split's ``angles.csv`` and the SMAPE between the two.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, load_datalist
from scripts.data.cobb import cobb_angles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_root", type=Path, help="folder holding data/<split> and labels/<split>")
    parser.add_argument("--split", default="training", help="split folder name (default: training)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--compare", action="store_true", help="compare with the split's angles.csv")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    args = parser.parse_args(argv)

    if args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    try:
        records = load_datalist(args.dataset_root, args.split, require_angles=args.compare)  # only --compare reads it
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    rule = np.empty((len(records), 3))
    for index, record in enumerate(records):
        try:
            rule[index] = cobb_angles(record["landmarks"], record["size"][0])
        except ValueError as error:
            print(f"error: {record['image']}: {error}", file=sys.stderr)
            return 2

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "angle1", "angle2", "angle3"])
        for record, angles in zip(records, rule, strict=True):
            writer.writerow([record["name"], *(f"{a:.4f}" for a in angles)])

    print(f"{len(records)} images -> {args.out}; mean angles {np.round(rule.mean(axis=0), 2).tolist()} deg")
    if args.compare:
        from scripts.metrics.angles import smape  # torch and monai load only when a comparison is asked for

        released = np.stack([r["angles"] for r in records]).astype(np.float64)
        difference = np.abs(rule - released)
        worst = int(difference.max(axis=1).argmax())
        print(
            f"vs angles.csv: largest difference {difference.max():.4f} deg ({records[worst]['name']}), "
            f"SMAPE {smape(rule, released):.4f}%"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
