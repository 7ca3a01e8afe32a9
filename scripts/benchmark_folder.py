# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""What a user waits for: inference on a folder, from process start to ``summary.csv``, in fresh processes.

    python scripts/benchmark_folder.py <folder of radiographs> --ckpt-dir <models> [--images 40] [--repeats 2]
        [--out runs/bench/folder.md [--overwrite]]

For each setting (``run inference`` with all outputs and the flip check; all outputs without it; the bulk outputs, mask
and NIfTI only, without it; the same under ONNX Runtime, whose export is kept beside the model, so only a first run
pays for it; then the fast path, ``scripts.inference.fast``, with all outputs and the flip check, and with the bulk
outputs without it, serving the same export, made once before anything is timed) the command runs twice per repeat, in a fresh process each time: on one image (the start-up:
process start, imports, building the network, reading the checkpoint, one image written) and on ``--images`` images.
The per-image cost is the difference divided by the extra images, the throughput its inverse; each figure is the
minimum over the repeats (the least disturbed run). The images are the first ``--images`` files of the folder (sorted),
linked into a temporary folder; nothing is written beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".dcm")
BULK = ["--quality_flip_check", "false", "--outputs"]
SETTINGS: tuple[tuple[str, str, list[str]], ...] = (
    ("run inference: all outputs, flip check", "workflow", []),
    ("run inference: all outputs, no flip check", "workflow", ["--quality_flip_check", "false"]),
    ("run inference: mask + NIfTI only, no flip check", "workflow", [*BULK, "[mask,mask_nifti]"]),
    (
        "run inference: mask + NIfTI only, no flip check, ONNX Runtime",
        "workflow",
        [*BULK, "[mask,mask_nifti]", "--runtime", "onnxruntime"],
    ),
    ("fast path: all outputs, flip check", "fast", []),
    ("fast path: mask + NIfTI only, no flip check", "fast", [*BULK, "mask", "mask_nifti"]),
)
"""(name, ``workflow`` (``python -m monai.bundle run inference``) or ``fast`` (``scripts.inference.fast``), arguments)"""


def _bundle_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "monai.bundle", "run", *args, "--config_file", str(CONFIGS / "inference.yaml")]


def _export(ckpt_dir: Path) -> None:
    """Make the ONNX export the fast path serves (untimed: a model is exported once)."""
    result = subprocess.run(
        [*_bundle_command("export_onnx"), "--ckpt_dir", str(ckpt_dir)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"error: export_onnx failed ({result.returncode}): {(result.stderr or result.stdout)[-2000:]}")


def _images(folder: Path, count: int) -> list[Path]:
    found = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    if len(found) < count:
        raise SystemExit(f"error: {folder} has {len(found)} images, fewer than --images {count}.")
    return found[:count]


def _timed_run(images: list[Path], ckpt_dir: Path, runner: str, extra: list[str], work: Path) -> float:
    """Seconds from process start to exit of one inference run over ``images``."""
    source, out = work / "in", work / "out"
    source.mkdir()
    for image in images:
        (source / image.name).symlink_to(image.resolve())
    env = dict(os.environ)
    if runner == "fast":
        env["PYTHONPATH"] = str(REPO / "bundle")
        command = [sys.executable, "-m", "scripts.inference.fast", str(source), "--output_dir", str(out)]
        command += ["--ckpt_dir", str(ckpt_dir), *extra]
    else:
        command = [*_bundle_command("inference"), "--dataset_dir", str(source), "--output_dir", str(out)]
        command += ["--ckpt_dir", str(ckpt_dir), "--progress_bar", "false", *extra]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or not (out / "summary.csv").is_file():
        raise SystemExit(f"error: inference failed ({result.returncode}): {(result.stderr or result.stdout)[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="radiographs (the first --images files are used)")
    parser.add_argument("--ckpt-dir", type=Path, required=True, help="folder of model.pt and network.json")
    parser.add_argument("--images", type=int, default=40, help="images of the folder run (default: 40)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting and size; the minimum is kept")
    parser.add_argument("--out", type=Path, help="also write the markdown report here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if args.out is not None and args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists; --overwrite replaces it.", file=sys.stderr)
        return 2
    if not (args.ckpt_dir / "model.pt").is_file():
        print(f"error: {args.ckpt_dir / 'model.pt'} does not exist.", file=sys.stderr)
        return 2
    if args.images < 2:
        print(f"error: --images must be at least 2, got {args.images}.", file=sys.stderr)
        return 2
    images = _images(args.folder, args.images)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    _export(args.ckpt_dir)
    rows = []
    for name, runner, extra in SETTINGS:
        one, many = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
                one.append(_timed_run(images[:1], args.ckpt_dir, runner, extra, Path(first)))
                many.append(_timed_run(images, args.ckpt_dir, runner, extra, Path(second)))
        per_image = (min(many) - min(one)) / (len(images) - 1)
        rate = f"{1 / per_image:.2f}" if per_image > 0 else "below the noise"  # tiny images: start-up jitter dominates
        rows.append(f"| {name} | {min(one):.2f} | {min(many):.2f} | {per_image:.3f} | {rate} |")
        print(rows[-1], file=sys.stderr, flush=True)
    command = "python " + " ".join(shlex.quote(arg) for arg in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    report = "\n".join(
        [
            f"Measured {datetime.now().astimezone().isoformat(timespec='seconds')} with:",
            "",
            f"    {command}",
            "",
            f"- CPU: {os.cpu_count()} logical cores; Python {platform.python_version()}; "
            f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}",
            f"- {len(images)} images of {args.folder}, model {args.ckpt_dir / 'model.pt'}",
            "",
            f"| setting | 1 image, process start to exit (s) | {len(images)} images (s) | per extra image (s) "
            "| images/s |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    print(report)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
