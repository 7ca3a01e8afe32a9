# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Parameters, multiply-accumulates and CPU forward latency of the Seg4Reg+ networks at one input size.

    python scripts/benchmark_networks.py [--height 512] [--width 256] [--runs 5] [--warmup 2] [--threads N]

Prints a markdown table. Multiply-accumulates are those of the convolutions and matrix products (FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode``, divided by 2); normalisation, activations and resizing are not counted.
Latency is the median (and the minimum) wall time of ``--runs`` forward passes of one image under
``torch.inference_mode`` after ``--warmup`` passes, networks in eval mode, randomly initialised (weights do not change
the cost); the networks take turns, one pass each per round. On a machine shared with other work the minimum is the
better estimate of the network's own cost.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.pspnet import PSPNet
from scripts.networks.seg4reg import Seg4RegPlus

# name, input channels, builder
NETWORKS: list[tuple[str, int, Callable[[], nn.Module]]] = [
    ("PSPNet, ResNet-18 (N_S, CPU recipe)", 1, lambda: PSPNet(depth=18)),
    ("PSPNet, ResNet-50 (N_S, paper)", 1, lambda: PSPNet(depth=50)),
    ("CAMRegressor, ResNet-18 (N_R), 2 channels", 2, lambda: CAMRegressor("resnet18", in_channels=2)),
    ("CAMRegressor, EfficientNet-B1 (N_R), 2 channels", 2, lambda: CAMRegressor("efficientnet-b1", in_channels=2)),
    (
        "Seg4RegPlus: PSPNet-18 + ResNet-18",
        1,
        lambda: Seg4RegPlus(PSPNet(depth=18), CAMRegressor("resnet18", in_channels=2)),
    ),
    (
        "Seg4RegPlus: PSPNet-50 + ResNet-18 (inference.yaml)",
        1,
        lambda: Seg4RegPlus(PSPNet(depth=50), CAMRegressor("resnet18", in_channels=2)),
    ),
]


def count_macs(network: nn.Module, x: torch.Tensor) -> float:
    """Multiply-accumulates of one forward pass (convolutions and matrix products)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network(x)
    return counter.get_total_flops() / 2.0


def latencies(cases: list[tuple[nn.Module, torch.Tensor]], runs: int, warmup: int) -> list[list[float]]:
    """Seconds of each of ``runs`` forward passes of every network, after ``warmup`` passes of each.

    The networks take turns (one pass each, ``runs`` rounds), so that a burst of load from other processes on a
    shared machine slows one pass of every network rather than all passes of one.
    """
    times: list[list[float]] = [[] for _ in cases]
    with torch.inference_mode():
        for network, x in cases:
            for _ in range(warmup):
                network(x)
        for _ in range(runs):
            for index, (network, x) in enumerate(cases):
                start = time.perf_counter()
                network(x)
                times[index].append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512, help="input height (default 512)")
    parser.add_argument("--width", type=int, default=256, help="input width (default 256)")
    parser.add_argument("--runs", type=int, default=5, help="timed forward passes per network (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed forward passes first (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.height < 32 or args.width < 32 or args.runs < 1 or args.warmup < 0:
        parser.error("need --height and --width >= 32, --runs >= 1, --warmup >= 0")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"input 1 x C x {args.height} x {args.width}, batch 1, float32, eval mode, torch.inference_mode")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_name()}, Python {platform.python_version()}"
    )
    print(f"latency: median and minimum of {args.runs} runs after {args.warmup} warm-up runs\n")
    print("| network | parameters (M) | MACs (G) | CPU latency, median (s/image) | CPU latency, min (s/image) |")
    print("|---|---:|---:|---:|---:|")
    cases = [
        (build().eval(), torch.rand(1, in_channels, args.height, args.width)) for _, in_channels, build in NETWORKS
    ]
    all_times = latencies(cases, args.runs, args.warmup)
    for (name, _, _), (network, x), times in zip(NETWORKS, cases, all_times, strict=True):
        parameters = sum(p.numel() for p in network.parameters())
        macs = count_macs(network, x)
        row = f"| {name} | {parameters / 1e6:.2f} | {macs / 1e9:.2f} | {statistics.median(times):.3f} | {min(times):.3f} |"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
