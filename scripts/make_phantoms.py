# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Write a synthetic phantom set in the AASCE layout (the bundle's default dataset, and test data).

    python scripts/make_phantoms.py <out_root> --num 200 --seed 0 [--split training] [--small]

Re-running with the same arguments leaves the finished set alone; a folder holding anything else is refused (exit status 1).
The generative model is described in ``bundle/scripts/data/phantoms.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.phantoms import make_phantoms

__all__ = ["SMALL_SIZE_SCALE", "main"]

SMALL_SIZE_SCALE = 0.25  # image heights 225-400 pixels instead of 900-1600


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, write the phantoms and print a one-line summary; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_root", type=Path, help="dataset root to write data/<split> and labels/<split> under")
    parser.add_argument("--num", type=int, required=True, help="number of phantoms")
    parser.add_argument("--seed", type=int, default=0, help="non-negative seed (default 0)")
    parser.add_argument("--split", default="training", help="split folder name (default: training)")
    parser.add_argument(
        "--small", action="store_true", help=f"small images for fast tests (size scale {SMALL_SIZE_SCALE})"
    )
    args = parser.parse_args(argv)

    size_scale = SMALL_SIZE_SCALE if args.small else 1.0
    try:
        root = make_phantoms(args.out_root, num=args.num, seed=args.seed, split=args.split, size_scale=size_scale)
    except (TypeError, ValueError) as error:
        print(f"make_phantoms: {error}", file=sys.stderr)
        return 1
    angles = np.loadtxt(root / "labels" / args.split / "angles.csv", delimiter=",", ndmin=2)
    print(
        f"{len(angles)} phantoms in {root / 'data' / args.split} (seed {args.seed}, size scale {size_scale:g}), "
        f"largest Cobb angle {angles[:, 0].min():.1f}..{angles[:, 0].max():.1f} degrees"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
