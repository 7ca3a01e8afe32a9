# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Cosine learning-rate decay over a stage, computed from the epoch number so that a resumed stage continues it."""

from __future__ import annotations

import math

import torch
from ignite.engine import Engine, Events

__all__ = ["CosineEpochLR"]


class CosineEpochLR:
    """Set each parameter group's learning rate at the start of every epoch to a cosine decay of its base rate.

    Epoch e of E (1-based) runs at ``min_lr + (base - min_lr) * (1 + cos(pi * (e - 1) / E)) / 2``: the base rate in the
    first epoch, near ``min_lr`` in the last. The rate depends only on ``engine.state.epoch``, so a stage resumed from an
    epoch checkpoint gets the rate it would have had (a ``torch`` scheduler's own state is not in the checkpoint).

    Args:
        optimizer: the trainer's optimiser; its groups' ``lr`` at construction are the base rates.
        min_lr: the rate the decay approaches, >= 0.
        enabled: False leaves the rates constant (the paper's recipe).

    Raises:
        ValueError: on a negative ``min_lr``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, min_lr: float = 0.0, enabled: bool = True) -> None:
        if not float(min_lr) >= 0:
            raise ValueError(f"min_lr must be >= 0, got {min_lr!r}.")
        self.optimizer = optimizer
        self.min_lr = float(min_lr)
        self.enabled = bool(enabled)
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]

    def attach(self, engine: Engine) -> None:
        if self.enabled:
            engine.add_event_handler(Events.EPOCH_STARTED, self)

    def rate(self, base_lr: float, epoch: int, max_epochs: int) -> float:
        """The rate of 1-based ``epoch`` of ``max_epochs``."""
        progress = (epoch - 1) / max(max_epochs, 1)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def __call__(self, engine: Engine) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = self.rate(base_lr, engine.state.epoch, engine.state.max_epochs)
