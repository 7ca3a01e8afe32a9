# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""How many predictions of an inference run the quality verdict sends to review, and why.

    python scripts/quality_review_rate.py <inference output_dir> [--names <file listing image names>]
        [--flip-limit DEGREES] [--geometry-limit DEGREES]

Reads every ``<stem>.json`` under the folder (the files ``run inference`` writes), optionally only those whose image
name is listed in ``--names`` (one per line: a fold's held-out images, say), and prints the fraction marked
``review``, the count of each reason, and the distribution of the flip difference (the largest difference, in degrees,
between the angles of an image and of its mirror image), from which ``max_flip_difference_deg`` is chosen.
``--flip-limit`` recounts the verdicts as if that limit had been configured (the other checks as they were).
For a vertebra-level model it also prints how often the geometry was measured and the distribution of the largest
difference between the regressed and the geometric angles (``agreement``), from which ``max_geometry_difference_deg``
is chosen; ``--geometry-limit`` recounts with that limit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="the output_dir of an inference run")
    parser.add_argument("--names", help="a text file of image names to count (default: every image)")
    parser.add_argument("--flip-limit", type=float, help="recount with this max_flip_difference_deg")
    parser.add_argument("--geometry-limit", type=float, help="recount with this max_geometry_difference_deg")
    args = parser.parse_args(argv)
    folder = Path(args.output_dir)
    wanted = None if args.names is None else set(Path(args.names).read_text().split("\n")) - {""}
    records = []
    for path in sorted(folder.rglob("*.json")):
        record = json.loads(path.read_text())
        if "quality" not in record or (wanted is not None and record.get("name") not in wanted):
            continue
        records.append(record)
    if not records:
        print(f"ERROR: {folder} holds no <stem>.json with a quality verdict", file=sys.stderr)
        return 1
    recount(records, "flip_disagreement", args.flip_limit, lambda quality, _: quality["flip_difference_deg"])
    recount(records, "geometry_disagreement", args.geometry_limit, _geometry_difference)
    review = [record for record in records if record["quality"]["verdict"] == "review"]
    reasons = Counter(reason["check"] for record in review for reason in record["quality"]["reasons"])
    print(f"{len(review)} of {len(records)} predictions marked review ({100 * len(review) / len(records):.1f}%)")
    for check, count in reasons.most_common():
        print(f"  {check}: {count}")
    flips = [record["quality"]["flip_difference_deg"] for record in records]
    flips = np.asarray([value for value in flips if value is not None])
    if len(flips):
        p50, p95, p99 = np.percentile(flips, [50, 95, 99])
        print(f"flip difference (deg): median {p50:.2f}, 95th {p95:.2f}, 99th {p99:.2f}, max {flips.max():.2f}")
    geometry = [record for record in records if record.get("geometry") is not None]
    if geometry:
        measured = [record for record in geometry if record["geometry"]["status"] == "measured"]
        print(f"geometry measured on {len(measured)} of {len(geometry)} images")
        differences = np.asarray([record["agreement"]["max_abs_deg"] for record in measured])
        if len(differences):
            p50, p95, p99, p995 = np.percentile(differences, [50, 95, 99, 99.5])
            print(
                f"regressed vs geometric (deg): median {p50:.2f}, 95th {p95:.2f}, 99th {p99:.2f}, "
                f"99.5th {p995:.2f}, max {differences.max():.2f}"
            )
    return 0


def _geometry_difference(_quality: dict, record: dict) -> float | None:
    agreement = record.get("agreement")
    return None if agreement is None else agreement["max_abs_deg"]


def recount(records: list[dict], check: str, limit: float | None, measured: Callable[[dict, dict], Any]) -> None:
    """Recount every verdict as if ``limit`` had been configured for ``check`` (nothing when ``limit`` is None).

    ``measured(quality, record)`` gives the value the check compares, None where it was not measured.
    """
    if limit is None:
        return
    for record in records:
        quality = record["quality"]
        reasons = [reason for reason in quality["reasons"] if reason["check"] != check]
        value = measured(quality, record)
        if value is not None and value > limit:
            reasons.append({"check": check, "value": value, "limit": limit})
        quality.update(reasons=reasons, verdict="review" if reasons else "ok")
    print(f"recounted with {check} above {limit}")


if __name__ == "__main__":
    raise SystemExit(main())
