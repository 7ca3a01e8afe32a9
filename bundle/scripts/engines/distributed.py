# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Running the stages under ``torchrun``: process group, device, and which process writes files.

Every rank trains its shard and validates its share of the validation set (MONAI's metrics gather the results); only
rank 0 writes checkpoints, logs and records. Outside ``torchrun`` all of this reduces to one process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = [
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "local_device",
    "on_main_process",
    "release_process_group",
]

T = TypeVar("T")


def is_distributed() -> bool:
    """Whether a process group is running."""
    return dist.is_available() and dist.is_initialized()


def is_main_process() -> bool:
    """True on rank 0 and in a single process: the one process that writes files."""
    return not is_distributed() or dist.get_rank() == 0


# how many setups (the pipeline's, then each stage's) hold the process group this process created
_holders = 0


def init_distributed(backend: str | None = None) -> None:
    """Join the process group ``torchrun`` describes (once; later calls only count themselves as holders).

    Each call is matched by one :func:`release_process_group` (a bundle's ``initialize`` and ``finalize``); the group
    is destroyed when the last holder releases it, so the pipeline's stages share the group the pipeline joined.

    Args:
        backend: ``nccl`` on GPUs, ``gloo`` on CPUs; None picks by availability.

    Raises:
        RuntimeError: when not launched by ``torchrun`` (no ``RANK``/``WORLD_SIZE`` in the environment).
    """
    global _holders
    if not is_distributed():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise RuntimeError(
                "the multi-GPU overlay runs under torchrun (torchrun --nproc_per_node=<N> -m monai.bundle ...)."
            )
        dist.init_process_group(backend=backend or ("nccl" if torch.cuda.is_available() else "gloo"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_device())
        _holders = 0
    _holders += 1


def release_process_group() -> None:
    """Undo one :func:`init_distributed`: the last holder destroys the group. Without a group (one process) nothing."""
    global _holders
    if _holders == 0:
        return
    _holders -= 1
    if _holders == 0 and is_distributed():
        # every rank reaches this point before any rank tears the group down: a gloo group destroyed while another
        # rank still talks to it aborts the process ("terminate called without an active exception")
        dist.barrier()
        dist.destroy_process_group()


def local_device() -> torch.device:
    """This process's device: ``cuda:<LOCAL_RANK>`` on GPUs, else the CPU."""
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def on_main_process(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``function`` on rank 0 only and hand its result (or its error) to every rank.

    Used for what changes the file system (preparing a stage folder, recording a finished stage) so that ranks never
    race on one folder and all of them see the same outcome.
    """
    if not is_distributed():
        return function(*args, **kwargs)
    outcome: list[Any] = [None]
    if dist.get_rank() == 0:
        try:
            outcome[0] = ("ok", function(*args, **kwargs))
        except Exception as error:  # handed to the other ranks, then raised everywhere
            outcome[0] = ("error", error)
    dist.broadcast_object_list(outcome, src=0)
    status, value = outcome[0]
    if status == "error":
        raise value
    return value
