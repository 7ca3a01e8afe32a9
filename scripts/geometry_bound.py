# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""What the geometric path can reach from perfect vertebra masks: the true landmarks rendered as a vertebra label map
at the network size, measured back by :func:`scripts.geometry.spine.spine_geometry`, scored against ``angles.csv``.

    python scripts/geometry_bound.py <boostnet_labeldata> [--split training] [--sizes 512x256 256x128]
        [--edge-fractions 0.6 1.0] [--tilts shape] [--every 1]

For each size, endplate fit (``edge_fraction`` 1.0 fits the whole width, 0.6 its middle) and tilt source (``shape``:
each region's own corners; ``centerline``: endplates across the centroids' centre line), one row: how many images
the rule could run on (the others have a vertebra missing, merged or out of order in the rendered map: usually a label
error of the file), SMAPE and MAE of the geometric angles on those, the end vertebrae of the three curves against those
the rule picks from the true landmarks (exact, and within one level), and the mean corner error in original pixels.
No network is involved: this is a bound on the masks-to-angles step, not a model's score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.data.aasce import DatasetError, load_datalist
from scripts.data.cobb import cobb_details
from scripts.data.resize_pad import resize_pad_geometry
from scripts.data.spine_mask import render_vertebra_labels
from scripts.geometry.spine import spine_geometry
from scripts.geometry.vertebrae import VERTEBRA_NAMES
from scripts.metrics.angles import mae, smape


def _size(text: str) -> tuple[int, int]:
    height, width = (int(part) for part in text.lower().split("x"))
    return height, width


def score(records: list[dict], size: tuple[int, int], edge_fraction: float, tilt: str = "shape") -> dict[str, float]:
    """The bound's figures for one network size and endplate fit (module docstring)."""
    levels = {name: index for index, name in enumerate(VERTEBRA_NAMES)}
    predicted, truth, exact, within_one, corner_error = [], [], [], [], []
    for record in records:
        geometry = resize_pad_geometry(record["size"], size)
        labels = render_vertebra_labels(geometry.to_output(record["landmarks"]), size)
        result = spine_geometry(labels, record["size"][0], geometry.to_original, edge_fraction=edge_fraction, tilt=tilt)
        if result["angles_deg"] is None:
            continue
        predicted.append(result["angles_deg"])
        truth.append(record["angles"])
        true_ends = cobb_details(record["landmarks"], record["size"][0]).end_vertebrae
        for curve, (top, bottom) in zip(result["curves"], true_ends, strict=True):
            offsets = (levels[curve["upper_end"]] - top, levels[curve["lower_end"]] - bottom)
            exact.append(offsets == (0, 0))
            within_one.append(max(abs(offset) for offset in offsets) <= 1)
        corner_error.append(np.linalg.norm(np.asarray(result["landmarks"]) - record["landmarks"], axis=1).mean())
    return {
        "images": len(records),
        "rule_ran": len(predicted),
        "smape": smape(np.array(predicted), np.array(truth)),
        "mae": mae(np.array(predicted), np.array(truth)),
        "ends_exact": float(np.mean(exact)),
        "ends_within_one": float(np.mean(within_one)),
        "corner_error_px": float(np.mean(corner_error)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_root", help="AASCE root (boostnet_labeldata)")
    parser.add_argument("--split", default="training")
    parser.add_argument("--sizes", nargs="+", default=["512x256", "256x128"], help="network sizes HxW")
    parser.add_argument("--edge-fractions", nargs="+", type=float, default=[0.6, 1.0])
    parser.add_argument("--tilts", nargs="+", default=["shape"], choices=["shape", "centerline"])
    parser.add_argument("--every", type=int, default=1, help="use every n-th image (1: all)")
    args = parser.parse_args(argv)
    try:
        records = load_datalist(args.dataset_root, args.split)[:: args.every]
    except DatasetError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(
        "| size | edge_fraction | tilt | rule ran | SMAPE % | MAE deg | end vertebrae exact | within one "
        "| corner error px |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size_text in args.sizes:
        for edge_fraction, tilt in [(fraction, tilt) for fraction in args.edge_fractions for tilt in args.tilts]:
            row = score(records, _size(size_text), edge_fraction, tilt)
            print(
                f"| {size_text} | {edge_fraction} | {tilt} | {row['rule_ran']}/{row['images']} | {row['smape']:.2f} | "
                f"{row['mae']:.2f} | {row['ends_exact']:.3f} | {row['ends_within_one']:.3f} | "
                f"{row['corner_error_px']:.1f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
