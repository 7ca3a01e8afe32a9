# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inputs a trained model must not answer with confidence: a folder to run ``inference`` on, for the quality verdict.

    python scripts/quality_cases.py <a radiograph> --out <folder>

Writes, from one real radiograph: ``black.png`` and ``white.png`` (blank images of its size), ``noise.png`` (uniform
noise of its size: no spine at all), ``turned.png`` (the radiograph turned 90 degrees) and ``upside_down.png`` (turned
180 degrees: portrait, a spine, but not as any training image shows it). ``docs/quality.md`` shows the verdicts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("radiograph", help="one real radiograph (jpg or png)")
    parser.add_argument("--out", required=True, help="the folder to create")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        print(f"ERROR: {out} exists; give a new folder", file=sys.stderr)
        return 1
    try:
        image = np.asarray(Image.open(args.radiograph).convert("L"))
    except OSError as error:
        print(f"ERROR: {args.radiograph}: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    cases = {
        "black": np.zeros_like(image),
        "white": np.full_like(image, 255),
        "noise": rng.integers(0, 256, image.shape, dtype=np.uint8),
        "turned": np.ascontiguousarray(np.rot90(image)),
        "upside_down": np.ascontiguousarray(image[::-1, ::-1]),
    }
    for name, pixels in cases.items():
        Image.fromarray(pixels).save(out / f"{name}.png")
    print(f"{len(cases)} cases written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
