# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Where the quality verdict's limits come from: the AASCE training radiographs and their true spine masks.

    python scripts/quality_thresholds.py <boostnet_labeldata> [--split training] [--margin 1.5]

For every image of the split it measures what :mod:`scripts.inference.quality` checks (image aspect, intensity spread,
roughness, white fraction; the true mask's area, extent, width and largest gap, the mask rendered from the landmarks at a quarter
of the image size, which keeps these fractions), prints their distribution (min, 0.5th, 50th, 99.5th percentile, max)
and proposes limits: the 0.5th percentile divided by ``margin`` and the 99.5th multiplied by it, so a real radiograph
rarely trips them while a turned, blank or non-spine image does. The white fraction gets a floor of
``WHITE_FLOOR`` (the AASCE images have almost no full-white pixels; other sites burn in white text and borders). The
proposal is printed as the ``quality`` block of ``configs/inference.yaml``. The flip limit is a property of a model,
not of the data: ``scripts/quality_review_rate.py`` measures it on a trained model's predictions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, load_datalist
from scripts.data.decode import read_grayscale
from scripts.data.spine_mask import render_spine_mask
from scripts.inference.verdict import image_roughness, mask_statistics

WHITE_FLOOR = 0.05
STATISTICS = ("aspect", "image_std", "roughness", "white_fraction", "area", "extent", "width", "gap")


def measure(record: dict) -> dict[str, float]:
    """The checked statistics of one record (image decoded, true mask rendered at a quarter size)."""
    image = np.asarray(read_grayscale(record["image"])[0], dtype=np.float64).reshape(record["size"])
    height, width = image.shape
    small = (max(height // 4, 1), max(width // 4, 1))
    mask = render_spine_mask(np.asarray(record["landmarks"]) * np.array([small[1] / width, small[0] / height]), small)
    return {
        "aspect": height / width,
        "image_std": float(image.std()),
        "roughness": image_roughness(image),
        "white_fraction": float(np.mean(image >= 0.99)),
        **mask_statistics(mask),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_root", help="AASCE root (boostnet_labeldata)")
    parser.add_argument("--split", default="training")
    parser.add_argument("--margin", type=float, default=1.5, help="factor beyond the 0.5th and 99.5th percentiles")
    args = parser.parse_args(argv)
    try:
        records = load_datalist(args.dataset_root, args.split)
    except DatasetError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    values = {name: [] for name in STATISTICS}
    for record in records:
        for name, value in measure(record).items():
            values[name].append(value)
    print(f"{len(records)} images of {args.dataset_root} ({args.split})")
    print("| statistic | min | p0.5 | median | p99.5 | max |")
    print("|---|---|---|---|---|---|")
    low, high = {}, {}
    for name in STATISTICS:
        data = np.asarray(values[name])
        p_low, median, p_high = np.percentile(data, [0.5, 50, 99.5])
        low[name], high[name] = p_low / args.margin, p_high * args.margin
        print(f"| {name} | {data.min():.4f} | {p_low:.4f} | {median:.4f} | {p_high:.4f} | {data.max():.4f} |")
    print(f"\nproposed limits (margin {args.margin}):")
    print("quality:")
    print(f"  min_aspect: {low['aspect']:.3f}")
    print(f"  min_image_std: {low['image_std']:.4f}")
    print(f"  max_roughness: {high['roughness']:.4f}")
    print(f"  max_white_fraction: {max(high['white_fraction'], WHITE_FLOOR):.4f}")
    print(f"  mask_area: [{low['area']:.4f}, {high['area']:.4f}]")
    print(f"  mask_extent: [{low['extent']:.3f}, {min(high['extent'], 1.0):.3f}]")
    print(f"  mask_width: [{low['width']:.4f}, {high['width']:.4f}]")
    print(f"  max_mask_gap: {high['gap']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
