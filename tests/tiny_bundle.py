# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A tiny trained-looking Seg4Reg+ bundle for the export, MONAI Label and MONAI Deploy tests.

The network is the real ``network_def`` of ``configs/inference.yaml`` shrunk by a recipe overlay (PSPNet-ResNet-18 at
output stride 16, 8 pyramid channels, 64x32 input), with random weights: nothing here is trained, the tests only check
that every route through the ecosystem gives the same answers as the eager network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser, ConfigWorkflow

__all__ = [
    "CONFIGS",
    "META",
    "REPO",
    "TINY",
    "TINY_SIZE",
    "build_network",
    "export_torchscript",
    "inference_workflow",
    "make_checkpoint",
    "write_checkpoint",
    "write_tiny_overlay",
]

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
META = CONFIGS / "metadata.json"
# a Seg4RegPlus small enough for tests: ResNet-18 at output stride 16, 8 pyramid channels, 64x32 input
TINY = {"spatial_size": [64, 32], "segmenter_depth": 18, "segmenter_output_stride": 16, "pyramid_channels": 8}
TINY_SIZE = tuple(TINY["spatial_size"])


def write_tiny_overlay(folder: Path) -> Path:
    """Write ``folder/tiny.yaml``: the recipe overlay of the tiny network (keys as in ``configs/cpu.yaml``), on CPU,
    without a progress bar; merged after inference.yaml (and evaluate.yaml)."""
    path = Path(folder) / "tiny.yaml"
    lines = [f"{key}: {value}" for key, value in TINY.items()]
    lines += ["device: \"$torch.device('cpu')\"", "progress_bar: false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def build_network(config_files: Sequence[Path]) -> torch.nn.Module:
    """``network_def`` of the merged configs."""
    parser = ConfigParser()
    parser.read_config([str(p) for p in config_files])
    return parser.get_parsed_content("network_def")


def make_checkpoint(folder: Path, seed: int = 0, **overrides: object) -> Path:
    """Build inference.yaml's ``network_def`` with :data:`TINY` (and ``overrides``), save its state dict.

    Returns:
        ``folder / "model.pt"``, as training writes it (no training here: the weights are the random initial ones).
    """
    parser = ConfigParser()
    parser.read_config(str(CONFIGS / "inference.yaml"))
    parser.update({**TINY, **overrides})
    torch.manual_seed(seed)
    network = parser.get_parsed_content("network_def")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.pt"
    torch.save(network.state_dict(), path)
    return path


def write_checkpoint(config_files: Sequence[Path], path: Path, seed: int = 0) -> torch.nn.Module:
    """Build the network with seeded random weights, save its state dict at ``path`` (as training does), return it."""
    torch.manual_seed(seed)
    network = build_network(config_files).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    return network


def export_torchscript(config_files: Sequence[Path], ckpt: Path, out: Path) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle ckpt_export`` as a user does (``PYTHONPATH=bundle``: only ``run`` adds it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(out)]
    command += ["--ckpt_file", str(ckpt), "--meta_file", str(META)]
    command += ["--config_file", str([str(p) for p in config_files])]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def inference_workflow(
    tiny: dict[str, Path], run_id: str, dataset_dir: Path | str, output_dir: Path, **overrides: object
) -> ConfigWorkflow:
    """The initialised ``inference`` (inference.yaml) or ``evaluate`` (+ evaluate.yaml) workflow of the tiny bundle.

    Args:
        tiny: the ``tiny_inference`` fixture (overlay and checkpoint folder); ``ckpt_dir`` in ``overrides`` wins.
        run_id: ``"inference"`` or ``"evaluate"``.
    """
    extra = [CONFIGS / "evaluate.yaml"] if run_id == "evaluate" else []
    overrides.setdefault("ckpt_dir", tiny["ckpt_dir"])
    workflow = ConfigWorkflow(
        config_file=[str(p) for p in (CONFIGS / "inference.yaml", *extra, tiny["overlay"])],
        meta_file=str(META),
        logging_file=False,
        workflow_type="inference",
        run_id=run_id,
        dataset_dir=str(dataset_dir),
        output_dir=str(output_dir),
        **{key: str(value) if isinstance(value, Path) else value for key, value in overrides.items()},
    )
    workflow.initialize()
    return workflow
