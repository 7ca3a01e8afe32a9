# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference latency, throughput and peak memory of the Seg4Reg+ network, and the training step time of each stage.

    python scripts/benchmark.py [--config bundle/configs/inference.yaml [overlay ...]] [--stages abcde]
        [--device cpu|cuda|all] [--batch-size N] [--spatial-size H W] [--runs 5] [--warmup 2] [--threads N]
        [--runtimes eager channels_last bf16 compile onnxruntime] [--out docs/performance.md [--overwrite]]

The networks are built from the bundle's configs with MONAI's ``ConfigParser``, as users run them: inference from
``--config`` (default ``inference.yaml``: the paper's size; add ``cpu.yaml`` for the CPU recipe's size), training from
``train.yaml``, the stage's overlay and the files given after the first ``--config`` (as ``train.yaml`` merges recipe
overlays), with the stage's objective, freezing and Adam optimiser. Weights are random (they do not change the cost)
and the inputs are random tensors of the configured shapes, so no data or checkpoint is needed. Beside the network
forward the inference table has the forward as it was before N_S's backbone was shared ("backbone twice"); likewise the
training table has, for stages c, d and e with the ROIE gate, the step with the gated pass as it was then. Each such
pair is timed in one process, the two calls interleaved, so that the machine's drift in speed falls on both alike.

Every other measurement runs in a fresh process of its own, so that its peak memory is its own: on CPU the peak resident set
size (``ru_maxrss``) of that process, on CUDA ``torch.cuda.max_memory_allocated``. Times are the median and the minimum
of ``--runs`` timed calls after ``--warmup`` untimed ones; on a machine shared with other work the minimum is the better
estimate of the network's own cost. ``--device all`` (the default) also times the CPU on a GPU machine, which takes
long at the paper's size; ``--device cuda`` skips it. The markdown report, with the command line and the hardware, goes to stdout and to
``--out`` (an existing file is kept unless ``--overwrite``).

``--runtimes`` adds a table of the inference network (batch 1) under other runtimes, each in its own process: eager
float32 (the reference), channels-last memory layout, bfloat16 autocast, ``torch.compile`` (the warm-up calls compile),
and ONNX Runtime on the network exported by ``torch.onnx.export``; each row gives the largest absolute difference of
its output from the eager one (probabilities and CAM in [0, 1], angles in degrees) and the achieved GFLOP/s (the
network's convolution and matrix FLOPs, counted by ``torch.utils.flop_counter``, per second). A plain 3x3 convolution
(256 to 256 channels on a 128x64 map) in the same run gives the machine's reachable GFLOP/s for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundle" / "configs"
sys.path.insert(0, str(REPO / "bundle"))

STAGES = "abcde"
GATED_STAGES = "cde"  # the stages whose objective runs the gated pass (Seg4RegPlus.gated_segment) when N_S has a gate
RUNTIMES = ("eager", "channels_last", "bf16", "compile", "onnxruntime")
RADIOGRAPH_SIZE = (2350, 820)  # (H, W) median size of the AASCE training radiographs, for the preprocessing row
RESULT_TAG = "BENCHMARK-RESULT "  # marks the one stdout line of a measuring process that carries its result
NETWORK_KEYS = (
    "segmenter_backbone",
    "segmenter_depth",
    "segmenter_output_stride",
    "pyramid_channels",
    "skip_channels",
    "regressor_backbone",
    "roie",
)


def _encoder(network: dict[str, Any]) -> str:
    """N_S's encoder as a reader names it: ``ResNet-50`` or ``efficientnet-lite0``."""
    if network["segmenter_backbone"] == "resnet":
        return f"ResNet-{network['segmenter_depth']}"
    return str(network["segmenter_backbone"])


def _parser(files: list[str], spatial_size: list[int] | None, device: str) -> Any:
    """The merged configs, with the device and (when given) the spatial size overridden."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(files)
    parser["device"] = f"$torch.device({device!r})"
    if "network_overrides" in parser:
        # inference.yaml builds its network from the record beside a trained model; here there is none, so the
        # overlays' recipe (as train.yaml merges it) is given as the network's settings
        recipe = ConfigParser()
        recipe.read_config([str(CONFIGS / "train.yaml"), *files[1:]])
        settings = recipe.get_parsed_content("network_settings")
        parser["network_overrides"] = {**settings, **({"spatial_size": list(spatial_size)} if spatial_size else {})}
        parser["ckpt_dir"] = "/nonexistent"  # never a model folder's record
    elif spatial_size:
        parser["spatial_size"] = list(spatial_size)
    return parser


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timings(calls: list[Callable[[], object]], runs: int, warmup: int, device: torch.device) -> list[list[float]]:
    """Seconds of each of ``runs`` rounds of every call after ``warmup`` untimed rounds, the device synchronised
    around each call. Several calls are interleaved, their order reversed every other round, so that a drift of the
    machine's speed falls on all of them alike (a side-by-side comparison)."""
    for _ in range(warmup):
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    for round_index in range(runs):
        order = list(range(len(calls)))
        for index in order if round_index % 2 == 0 else order[::-1]:
            _sync(device)
            start = time.perf_counter()
            calls[index]()
            _sync(device)
            times[index].append(time.perf_counter() - start)
    return times


def _training_steps(
    parser: Any, device: torch.device, batch: int, size: list[int], backbones: tuple[str, ...] = ("once",)
) -> tuple[list[Callable[[], None]], dict]:
    """One optimiser step of the stage's objective on random tensors, as MONAI's ``SupervisedTrainer`` runs it, for
    each of ``backbones``: ``"once"`` (the shared backbone), ``"twice"`` (the gated pass of before N_S's backbone was
    shared, :func:`_unshare_backbone`). The steps share the objective and optimiser; each sets its gated pass first.
    """
    unknown = sorted(set(backbones) - {"once", "twice"})
    if unknown:
        raise ValueError(f"backbones must be 'once' or 'twice', got {unknown}.")
    parser["previous_ckpt"] = ""  # random weights: the cost is the same, and no earlier stage's model is needed
    objective = parser.get_parsed_content("train#objective")
    optimizer = parser.get_parsed_content("train#optimizer")  # the same objective instance: the parser caches it
    amp = bool(parser.get_parsed_content("amp")) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if amp else None
    image = torch.rand(batch, 1, *size, device=device)
    label = torch.zeros(batch, 1, *size, device=device)
    label[..., size[1] * 3 // 8 : size[1] * 5 // 8] = 1.0  # a vertical band where the spine is; float, as in training
    angles = torch.rand(batch, 3, device=device) * 40.0 + 5.0
    objective.train()

    def step(backbone: str) -> None:
        if backbone == "twice":
            _unshare_backbone(objective.model)  # the model the objective calls, so its gated passes run the old way
        else:
            vars(objective.model).pop("gated_segment", None)  # the class's shared pass again
        optimizer.zero_grad(set_to_none=False)  # SupervisedTrainer's default
        with torch.autocast("cuda", enabled=amp):
            loss = objective(image, label, angles)["loss"]
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    trained = sum(p.numel() for p in objective.trainable_parameters())
    steps = [lambda backbone=backbone: step(backbone) for backbone in backbones]
    return steps, {"objective": type(objective).__name__, "frozen": list(objective.frozen), "trained": trained}


def _preprocessing(parser: Any, folder: str) -> Callable[[], None]:
    """Reading a radiograph-sized 8-bit JPEG, the size check and resize-and-pad, as ``inference.yaml`` does."""
    from PIL import Image

    path = str(Path(folder) / "radiograph.jpg")
    ramp = np.linspace(0, 200, RADIOGRAPH_SIZE[0])[:, None]
    pixels = ramp + np.random.default_rng(0).normal(0, 20, RADIOGRAPH_SIZE)  # noise, so the JPEG is not trivially small
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
    preprocessing = parser.get_parsed_content("preprocessing")
    return lambda: preprocessing({"image": path})


def _backbone_twice(network: Any) -> Callable[[torch.Tensor], object]:
    """The two-pass inference as it was before N_S's backbone was shared: ``PSPNet.forward`` for each segmentation
    pass, so the gated pass computes the backbone again (the "before" row of the shared-backbone change)."""

    def forward(x: torch.Tensor) -> object:
        initial = torch.softmax(network.segmenter(x), dim=1)
        attention = network.regress(x, initial).cam
        gated = torch.softmax(network.segmenter(x, attention), dim=1)
        return network.regress(x, gated)

    return forward


def _gated_segment_twice(network: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Seg4RegPlus.gated_segment`` as training ran it before N_S's backbone was shared: the same logits and CAMs.

    The ungated pass is the whole of N_S (backbone and head) and N_R's CAM of it, both without gradient; the gated
    pass then computes the backbone again, with gradient, and applies the gate and the head to it.
    """
    with torch.no_grad():
        initial = network.segmenter(x)
        attention = network.regress(x, torch.softmax(initial, dim=1)).cam
    low, features = network.segmenter.forward_features(x)
    return network.segmenter.forward_head(network._gate(features, attention), [x.shape[2], x.shape[3]], low), attention


def _unshare_backbone(network: Any) -> None:
    """Replace ``gated_segment`` of this Seg4RegPlus instance (not its class) by :func:`_gated_segment_twice`."""
    if not network.use_roie:
        raise ValueError("backbone twice needs N_S's ROIE gate (roie: true): without it there is no gated pass.")
    network.gated_segment = types.MethodType(_gated_segment_twice, network)


def _flops(call: Callable[[], object]) -> int:
    """FLOPs of one call (convolutions and matrix products, 2 per multiply-add), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        call()
    return int(counter.get_total_flops())


def _runtime(network: Any, x: torch.Tensor, variant: str, folder: str) -> tuple[Callable[[], torch.Tensor], dict]:
    """A call of the network under ``variant`` (:data:`RUNTIMES`, or ``conv_reference``) and what it was measured on.

    Returns:
        The call (returning the output as a float32 tensor) and ``flops`` of one call; for the network variants also
        ``max_abs_difference`` of the output from eager float32.
    """
    if variant == "conv_reference":
        conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).eval()
        feature = torch.rand(1, 256, 128, 64)
        call = lambda: conv(feature)  # noqa: E731
        return call, {"flops": _flops(call)}
    with torch.inference_mode():
        reference = network(x).float()
    flops = _flops(lambda: network(x))
    if variant == "eager":
        call = lambda: network(x)  # noqa: E731
    elif variant == "channels_last":
        network = network.to(memory_format=torch.channels_last)
        last = x.contiguous(memory_format=torch.channels_last)
        call = lambda: network(last)  # noqa: E731
    elif variant == "bf16":

        def call() -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return network(x)

    elif variant == "compile":
        compiled = torch.compile(network)
        call = lambda: compiled(x)  # noqa: E731
    elif variant == "onnxruntime":
        import onnxruntime

        path = str(Path(folder) / "network.onnx")
        torch.onnx.export(network, (x,), path, dynamo=False, input_names=["image"], output_names=["pred"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {"image": x.numpy()}
        call = lambda: torch.from_numpy(session.run(None, feed)[0])  # noqa: E731
    else:
        raise ValueError(f"unknown runtime {variant!r}; known: {RUNTIMES}.")
    with torch.inference_mode():
        output = call().float()
    return call, {"flops": flops, "max_abs_difference": float((output - reference).abs().max())}


def measure(spec: dict) -> dict:
    """Run one measurement in this process (a fresh one: see :func:`run_isolated`) and return its numbers.

    Args:
        spec: ``kind`` (inference, preprocessing or training), ``device``, ``batch``, ``configs`` (files merged in
            order), ``spatial_size`` (None: the configs'), ``runs``, ``warmup`` and ``threads`` (None: torch's choice);
            for inference and training optionally ``backbone``: ``"twice"``, the gated pass as before N_S's backbone
            was shared, or ``"both"``, the shared and the old pass interleaved in this one process (:func:`_timings`).

    Returns:
        ``times`` (seconds per call; with ``backbone="both"`` also ``times_twice``), ``peak_bytes`` and
        ``added_bytes`` (see the module docstring; with ``"both"`` the process's, for both), and what was measured
        (network hyper-parameters, or the stage's objective, freezing and trained parameter count).
    """
    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    parser = _parser(spec["configs"], spec["spatial_size"], spec["device"])
    size = [int(s) for s in parser.get_parsed_content("input_size" if "input_size" in parser else "spatial_size")]
    batch = spec["batch"]
    info: dict[str, Any] = {"spatial_size": size}
    backbone = spec.get("backbone", "once")
    backbones = ("once", "twice") if backbone == "both" else (backbone,)
    with tempfile.TemporaryDirectory() as folder:
        if spec["kind"] == "training":
            calls, extra = _training_steps(parser, device, batch, size, backbones)
            info.update(extra)
        elif spec["kind"] == "preprocessing":
            calls = [_preprocessing(parser, folder)]
        elif spec["kind"] == "runtime":
            network = parser.get_parsed_content("network_def").to(device).eval()
            runtime_call, extra = _runtime(network, torch.rand(batch, 1, *size, device=device), spec["variant"], folder)
            info.update(extra)

            def call() -> None:
                with torch.inference_mode():
                    runtime_call()

            calls = [call]

        else:
            network = parser.get_parsed_content("network_def").to(device).eval()
            x = torch.rand(batch, 1, *size, device=device)
            info["parameters"] = sum(p.numel() for p in network.parameters())
            settings = parser.get_parsed_content("network_settings")
            info["network"] = {key: settings[key] for key in NETWORK_KEYS}
            forwards = {"once": network, "twice": _backbone_twice(network)}

            def forward_with(backbone: str) -> Callable[[], None]:
                def call() -> None:
                    with torch.inference_mode():
                        forwards[backbone](x)

                return call

            calls = [forward_with(backbone) for backbone in backbones]

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
        times = _timings(calls, spec["runs"], spec["warmup"], device)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    measured = {"times": times[0], **({"times_twice": times[1]} if len(times) > 1 else {})}
    return {**info, **measured, "peak_bytes": peak, "added_bytes": max(peak - before, 0)}


def run_isolated(spec: dict) -> dict:
    """:func:`measure` in a fresh Python process (this script with ``--one``); ``{"error": ...}`` when it failed."""
    command = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    result = subprocess.run(command, capture_output=True, text=True)
    for line in result.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    lines = [line.strip() for line in (result.stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"[\w.]+(Error|Exception)\b", line)]  # the exception, not its context
    reason = (errors or lines or [f"exit status {result.returncode}"])[-1]
    if result.returncode < 0:
        reason = f"killed by signal {-result.returncode} (out of memory?)"
    print(f"  failed: {reason}", file=sys.stderr)
    return {"error": reason}


def hardware(threads: int | None) -> list[str]:
    """Lines describing the machine and the software versions (``threads``: what the measuring processes use)."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    memory = next((line.split()[1] for line in _read("/proc/meminfo") if line.startswith("MemTotal")), None)
    lines = [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores, {threads or torch.get_num_threads()} torch threads"
        + (f", {int(memory) / 2**20:.0f} GiB memory" if memory else ""),
        "- GPU: "
        + (
            f"{torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB"
            if torch.cuda.is_available()
            else "none"
        ),
        f"- software: Python {platform.python_version()}, torch {torch.__version__}, MONAI {version('monai')}, "
        f"{platform.system()} {platform.release()}",
        "- load average (1, 5, 15 min) before measuring: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
    ]
    return lines


def _read(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _shown(path: str) -> str:
    """``path`` relative to the repository, as a person would type it there."""
    return os.path.relpath(path, REPO)


def _mib(value: float) -> str:
    return f"{value / 2**20:.0f}"


def _row(cells: list[object], result: dict, batch: int, steps: bool) -> str:
    """A table row: the given cells, then the times and the memory of ``result`` (or its failure)."""
    if "error" in result:
        return "| " + " | ".join(map(str, cells)) + f" | failed: {result['error']} |"
    median, best = statistics.median(result["times"]), min(result["times"])
    rate = f"{median / batch:.4f}" if steps else f"{median / batch:.4f} | {batch / median:.2f}"
    numbers = f"{median:.4f} | {best:.4f} | {rate} | {_mib(result['peak_bytes'])} | {_mib(result['added_bytes'])}"
    return "| " + " | ".join(map(str, cells)) + f" | {numbers} |"


NOTES = f"""Times: median and minimum of the timed calls after the untimed warm-up calls; on a machine shared with other
work the minimum is the better estimate. Network forward: `Seg4RegPlus.forward` (both segmentation passes and both
regressor passes, N_S's backbone once) in eval mode under `torch.inference_mode`, float32, random weights and inputs;
"backbone twice" is the same two passes with `PSPNet.forward` for each, as before the backbone was shared; likewise the
training rows "c, backbone twice", "d, backbone twice" and "e, backbone twice" are that stage's step with the gated
pass as it was then (the whole ungated N_S pass and N_R's CAM without gradient, then N_S's backbone again, with
gradient, for the gated pass). Each "backbone twice" row is timed in the same process as the row above it, the two
calls interleaved (their order reversed every other round), so that a drift of the machine's speed falls on both;
their memory columns are that process's, the same for both. Preprocessing: reading an 8-bit
{RADIOGRAPH_SIZE[0]}x{RADIOGRAPH_SIZE[1]} JPEG (the median AASCE radiograph size), the size check and the
resize-and-pad of `inference.yaml`; post-processing and writing the outputs are not included. Training: one step of the
stage's objective (zero_grad, forward, backward, Adam step; mixed precision where the config turns it on, CUDA only),
with the stage's frozen parts frozen, on random tensors (image, a band-shaped spine mask, angles).

Memory: every row is measured in a fresh process. CPU rows: the peak resident set size of that process (`ru_maxrss`:
Python, torch, MONAI, the network and the measurement), then how much the timed calls raised it above its peak after
building. CUDA rows: `torch.cuda.max_memory_allocated` (tensors only, without the CUDA context or the allocator's
cache), then its increase over the memory allocated once the network was on the GPU.
"""
INFERENCE_HEADER = (
    "| device | measured | batch | median (s) | min (s) | median per image (s) | images/s | peak memory (MiB) "
    "| added by the timed calls (MiB) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
)
TRAINING_HEADER = (
    "| device | stage | objective | frozen | trained parameters (M) | batch | median (s/step) | min (s/step) "
    "| median per image (s) | peak memory (MiB) | added by the timed calls (MiB) |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


RUNTIME_HEADER = (
    "| runtime | median (s) | min (s) | GFLOP per call | GFLOP/s (min) | largest difference from eager |\n"
    "|---|---:|---:|---:|---:|---:|"
)


def runtime_rows(configs: list[str], runtimes: list[str], shared: dict) -> list[str]:
    """The runtime table's rows (CPU, batch 1), the plain convolution reference last."""
    rows = []
    for variant in [*runtimes, "conv_reference"]:
        print(f"cpu: runtime {variant}", file=sys.stderr, flush=True)
        spec = {**shared, "kind": "runtime", "variant": variant, "device": "cpu", "batch": 1, "configs": configs}
        result = run_isolated(spec)
        name = "plain 3x3 convolution, 256 channels, 128x64" if variant == "conv_reference" else variant
        if "error" in result:
            rows.append(f"| {name} | failed: {result['error']} |")
            continue
        median, best = statistics.median(result["times"]), min(result["times"])
        difference = result.get("max_abs_difference")
        rows.append(
            f"| {name} | {median:.4f} | {best:.4f} | {result['flops'] / 1e9:.2f} | {result['flops'] / 1e9 / best:.1f} "
            f"| {'-' if difference is None else f'{difference:.2g}'} |"
        )
    return rows


TWICE = "backbone twice (before sharing it)"


def _twice(result: dict) -> dict:
    """The "backbone twice" half of a ``backbone="both"`` result, as a result of its own (or its failure)."""
    return result if "error" in result else {**result, "times": result["times_twice"]}


def collect(configs: list[str], stages: str, devices: list[str], batch: int, shared: dict) -> tuple[list, list, dict]:
    """Run every measurement, each in its own process: the inference and training table rows, and the network."""
    overlays = configs[1:]
    inference_rows, training_rows, network = [], [], {}
    for device in devices:
        measured = [("network forward", "inference", size) for size in sorted({1, batch})]
        measured += [("preprocessing", "preprocessing", 1)] if device == "cpu" else []
        for what, kind, size in measured:
            both = kind == "inference" and size == 1  # beside the network as before the backbone was shared
            print(
                f"{device}: {what}{' (and backbone twice)' if both else ''}, batch {size}", file=sys.stderr, flush=True
            )
            spec = {**shared, "kind": kind, "device": device, "batch": size, "configs": configs}
            result = run_isolated({**spec, "backbone": "both" if both else "once"})
            network = network or (result if "network" in result else {})
            inference_rows.append(_row([device, what, size], result, size, steps=False))
            if both:
                twice = _twice(result)
                inference_rows.append(_row([device, f"{what}, {TWICE}", size], twice, size, steps=False))
        for stage in stages:
            files = [str(CONFIGS / "train.yaml"), str(CONFIGS / f"stage_{stage}.yaml"), *overlays]
            both = stage in GATED_STAGES and _parser(files, None, "cpu").get_parsed_content("roie")
            print(f"{device}: training step of stage {stage}, batch {batch}", file=sys.stderr, flush=True)
            spec = {**shared, "kind": "training", "device": device, "batch": batch, "configs": files}
            result = run_isolated({**spec, "backbone": "both" if both else "once"})
            frozen = ", ".join(result.get("frozen", [])) or "-"
            about = [result.get("objective", "-"), frozen]
            about.append(f"{result['trained'] / 1e6:.2f}" if "trained" in result else "-")
            training_rows.append(_row([device, stage, *about, batch], result, batch, steps=True))
            if both:  # the gated pass as before N_S's backbone was shared, interleaved with the shared one
                twice = _twice(result)
                training_rows.append(
                    _row([device, f"{stage}, backbone twice", *about, batch], twice, batch, steps=True)
                )
    return inference_rows, training_rows, network


def report(
    command: str, configs: list[str], machine: list[str], rows: tuple[list, list, dict], runtimes: list[str] = ()
) -> str:
    """The markdown report: command, date, hardware, configs, network, the tables and what they measure."""
    inference_rows, training_rows, network = rows
    lines = [
        "# Performance of the Seg4Reg+ bundle",
        "",
        f"Measured {datetime.now().astimezone().isoformat(timespec='seconds')} with:",
        "",
        f"    {command}",
        "",
        *machine,
        f"- inference configs: {', '.join(map(_shown, configs))}",
        "- training configs: "
        + " + ".join(["bundle/configs/train.yaml", "bundle/configs/stage_<x>.yaml"])
        + "".join(f" + {_shown(name)}" for name in configs[1:]),
    ]
    if network:
        n = network["network"]
        lines.append(
            f"- network: input {network['spatial_size'][0]}x{network['spatial_size'][1]}; N_S PSPNet {_encoder(n)}, "
            f"output stride {n['segmenter_output_stride']}, pyramid {n['pyramid_channels']}, "
            f"skip decoder {n['skip_channels'] or 'off'}, ROIE {n['roie']}; N_R {n['regressor_backbone']}; "
            f"{network['parameters'] / 1e6:.2f} M parameters"
        )
    lines += ["", "## Inference", "", INFERENCE_HEADER, *inference_rows, ""]
    if runtimes:
        lines += ["## Runtimes (CPU, batch 1)", "", RUNTIME_HEADER, *runtimes, ""]
    if training_rows:
        lines += ["## Training step per stage", "", TRAINING_HEADER, *training_rows, ""]
    return "\n".join(lines) + "\n" + NOTES


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    inference_yaml = str(CONFIGS / "inference.yaml")
    parser.add_argument(
        "--config", nargs="+", default=[inference_yaml], metavar="FILE", help="inference config, then overlays"
    )
    parser.add_argument("--stages", default=STAGES, help="training stages to time (default abcde; '' for none)")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all", help="all: CPU, and CUDA if present")
    parser.add_argument(
        "--batch-size", type=int, help="throughput and training batch (default: the config's batch_size)"
    )
    parser.add_argument("--spatial-size", type=int, nargs=2, metavar=("H", "W"), help="network input size override")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument(
        "--runtimes", nargs="*", choices=RUNTIMES, default=[], help="also time the network under these runtimes"
    )
    parser.add_argument("--out", type=Path, help="markdown file to write as well (e.g. docs/performance.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the JSON spec of one measurement, run in this process
    args = parser.parse_args(argv)
    if args.one is not None:
        print(RESULT_TAG + json.dumps(measure(json.loads(args.one))), flush=True)
        return 0

    stages = args.stages.lower()
    if any(stage not in STAGES for stage in stages):
        parser.error(f"--stages takes letters of {STAGES!r}, got {args.stages!r}")
    if args.runs < 1 or args.warmup < 0 or (args.batch_size is not None and args.batch_size < 1):
        parser.error("need --runs >= 1, --warmup >= 0 and --batch-size >= 1")
    if args.spatial_size and min(args.spatial_size) < 32:
        parser.error(f"--spatial-size needs both sides >= 32, got {args.spatial_size}")
    missing = [name for name in args.config if not Path(name).is_file()]
    if missing:
        parser.error(f"config file(s) not found: {', '.join(missing)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    if args.out is not None and args.out.exists() and not args.overwrite:
        print(f"error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2

    all_devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    devices = all_devices if args.device == "all" else [args.device]
    configs = [str(Path(name).resolve()) for name in args.config]
    batch = args.batch_size or int(
        _parser([str(CONFIGS / "train.yaml"), *configs[1:]], None, "cpu").get_parsed_content("batch_size")
    )
    shared = {"spatial_size": args.spatial_size, "runs": args.runs, "warmup": args.warmup, "threads": args.threads}
    machine = hardware(args.threads)  # before measuring: the load average says how busy the machine was
    rows = collect(configs, stages, devices, batch, shared)
    runtimes = runtime_rows(configs, args.runtimes, shared) if args.runtimes else []
    text = report("python " + shlex.join(["scripts/benchmark.py", *argv]), configs, machine, rows, runtimes)
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with args.out.open("w" if args.overwrite else "x") as file:
                file.write(text)
        except FileExistsError:
            print(f"error: {args.out} appeared while measuring; pass --overwrite to replace it", file=sys.stderr)
            return 2
    failed = [row for row in rows[0] + rows[1] + runtimes if "| failed:" in row]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
