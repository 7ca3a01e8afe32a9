# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""How many predictions of an inference run the quality verdict sends to review, and why.

    python scripts/quality_review_rate.py <inference output_dir> [--names <file listing image names>]
        [--flip-limit DEGREES]

Reads every ``<stem>.json`` under the folder (the files ``run inference`` writes), optionally only those whose image
name is listed in ``--names`` (one per line: a fold's held-out images, say), and prints the fraction marked
``review``, the count of each reason, and the distribution of the flip difference (the largest difference, in degrees,
between the angles of an image and of its mirror image), from which ``max_flip_difference_deg`` is chosen.
``--flip-limit`` recounts the verdicts as if that limit had been configured (the other checks as they were).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="the output_dir of an inference run")
    parser.add_argument("--names", help="a text file of image names to count (default: every image)")
    parser.add_argument("--flip-limit", type=float, help="recount with this max_flip_difference_deg")
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
    if args.flip_limit is not None:
        for record in records:
            quality = record["quality"]
            reasons = [reason for reason in quality["reasons"] if reason["check"] != "flip_disagreement"]
            flip = quality["flip_difference_deg"]
            if flip is not None and flip > args.flip_limit:
                reasons.append({"check": "flip_disagreement", "value": flip, "limit": args.flip_limit})
            quality.update(reasons=reasons, verdict="review" if reasons else "ok")
        print(f"recounted with max_flip_difference_deg {args.flip_limit}")
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
