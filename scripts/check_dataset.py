# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Audit the labels of an AASCE-layout split and list every problem by file name; nothing is fixed.

    python scripts/check_dataset.py <dataset_root> --split training

Reports missing or unreadable files (a missing ``.mat``, whose landmarks are then read from ``landmarks.csv``, too), CSV row counts that disagree, malformed rows, corners out of order inside a vertebra,
vertebrae out of top-to-bottom order, ``angles.csv`` disagreeing with the official rule by more than 0.5 degrees, and implausible
angles. Exit status 1 when a problem was found, 0 when none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, LabelProblem, scan_split, split_paths
from scripts.data.label_checks import check_labels


def decode_problem(path: str) -> str | None:
    """Why the image at ``path`` cannot be fully decoded, or None when it can (headers alone miss truncated files)."""
    try:
        with Image.open(path) as image:
            image.load()
    except OSError as error:
        return f"image cannot be decoded ({error})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_root", type=Path, help="folder holding data/<split> and labels/<split>")
    parser.add_argument("--split", default="training", help="split folder name (default: training)")
    parser.add_argument("--no-decode", action="store_true", help="skip decoding every image in full (faster)")
    args = parser.parse_args(argv)

    try:
        records, problems = scan_split(args.dataset_root, args.split)
    except DatasetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    label_dir = split_paths(args.dataset_root, args.split)[1]
    for record in records:
        mat = label_dir / f"{record['name']}.mat"
        if not mat.is_file():  # the reader falls back on landmarks.csv, whose values are rounded: say so
            problems.append(LabelProblem(str(mat), "missing: its landmarks were read from landmarks.csv instead"))
        if not args.no_decode and (reason := decode_problem(record["image"])):
            problems.append(LabelProblem(record["name"], reason))
        problems.extend(
            LabelProblem(record["name"], text)
            for text in check_labels(record["landmarks"], record["angles"], record["size"][0])
        )

    for problem in problems:
        print(problem)
    files = len({problem.file for problem in problems})
    print(f"{len(records)} images read; {len(problems)} problem(s) in {files} file(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
