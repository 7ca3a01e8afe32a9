# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A tiny trained-looking Seg4Reg+ bundle for the export, MONAI Label and MONAI Deploy tests.

The network is the real ``network_def`` of ``configs/inference.yaml`` shrunk by ``network_overrides`` (PSPNet-ResNet-18
at output stride 16, 8 pyramid channels, 64x32 input), with random weights, saved as training saves a model: the state
dict and ``network.json`` beside it. Nothing here is trained; the tests only check that every route through the
ecosystem gives the same answers as the eager network.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from monai.bundle import ConfigParser, ConfigWorkflow

from scripts.networks.definition import write_settings

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
    "recipe_settings",
    "run_bundle",
    "write_checkpoint",
    "write_tiny_overlay",
    "write_tiny_training_overlay",
]

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
META = CONFIGS / "metadata.json"
# a Seg4RegPlus small enough for tests: ResNet-18 at output stride 16, 8 pyramid channels, 64x32 input
TINY = {"spatial_size": [64, 32], "segmenter_depth": 18, "segmenter_output_stride": 16, "pyramid_channels": 8}
TINY_SIZE = tuple(TINY["spatial_size"])


def write_tiny_overlay(folder: Path) -> Path:
    """Write ``folder/tiny.yaml``: the tiny network's settings, on CPU, without a progress bar.

    Merged after inference.yaml (and evaluate.yaml), which reads them as ``network_overrides``, or after train.yaml
    and a stage overlay (MONAI Label's training task), which reads them as its own ids.
    """
    path = Path(folder) / "tiny.yaml"
    lines = [f"network_overrides: {TINY}", *(f"{key}: {value}" for key, value in TINY.items())]
    lines += ["device: \"$torch.device('cpu')\"", "progress_bar: false"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_tiny_training_overlay(folder: Path, *extra_lines: str) -> Path:
    """Write ``folder/tiny.yaml``, an overlay after train.yaml that shrinks every stage to seconds: the tiny network,
    12 small phantoms cached in ``folder/cache``, one epoch a stage, on CPU; ``extra_lines`` (YAML) are appended."""
    path = Path(folder) / "tiny.yaml"
    lines = [
        f"cache_dir: '{Path(folder) / 'cache'}'",
        *(f"{key}: {value}" for key, value in TINY.items()),
        "num_phantoms: 12",
        "phantom_scale: 0.25",
        "num_workers: 0",
        "batch_size: 4",
        "progress_bar: false",
        "epochs: {a: 1, b: 1, c: 1, d: 1, e: 1}",
        "device: \"$torch.device('cpu')\"",
        *extra_lines,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_bundle(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m monai.bundle run <args>`` as a person runs it; ``.log`` holds stdout and stderr together."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "monai.bundle", "run", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    result.log = result.stdout + result.stderr
    return result


def recipe_settings(*overlays: Path) -> dict[str, object]:
    """The network settings train.yaml gives with ``overlays`` (``cpu.yaml``, say): what training records."""
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / "train.yaml"), *(str(p) for p in overlays)])
    return parser.get_parsed_content("network_settings")


def _parser(config_files: Sequence[Path], ckpt_dir: Path | None = None) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(p) for p in config_files])
    if ckpt_dir is not None:
        parser["ckpt_dir"] = str(ckpt_dir)
    return parser


def build_network(config_files: Sequence[Path], ckpt_dir: Path | None = None) -> torch.nn.Module:
    """``network_def`` of the merged configs (serving the model in ``ckpt_dir`` when given)."""
    return _parser(config_files, ckpt_dir).get_parsed_content("network_def")


def _save(parser: ConfigParser, path: Path, seed: int) -> torch.nn.Module:
    """Build ``network_def`` with seeded random weights; save them and their ``network.json`` as training does."""
    torch.manual_seed(seed)
    network = parser.get_parsed_content("network_def").eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), path)
    write_settings(path.parent, parser.get_parsed_content("network_settings"))
    return network


def make_checkpoint(folder: Path, seed: int = 0, **overrides: object) -> Path:
    """Build inference.yaml's ``network_def`` with :data:`TINY` (and ``overrides``), save its state dict.

    Returns:
        ``folder / "model.pt"``, as training writes it (no training here: the weights are the random initial ones).
    """
    parser = _parser([CONFIGS / "inference.yaml"], folder)
    parser["network_overrides"] = {**TINY, **overrides}
    path = folder / "model.pt"
    _save(parser, path, seed)
    return path


def write_checkpoint(config_files: Sequence[Path], path: Path, seed: int = 0) -> torch.nn.Module:
    """Build the network with seeded random weights, save it at ``path`` as training does, return it."""
    return _save(_parser(config_files, path.parent), path, seed)


def export_torchscript(config_files: Sequence[Path], ckpt: Path, out: Path) -> subprocess.CompletedProcess:
    """Run ``python -m monai.bundle ckpt_export`` as a user does (``PYTHONPATH=bundle``: only ``run`` adds it)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "monai.bundle", "ckpt_export", "network_def", "--filepath", str(out)]
    command += ["--ckpt_file", str(ckpt), "--ckpt_dir", str(ckpt.parent), "--meta_file", str(META)]
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
