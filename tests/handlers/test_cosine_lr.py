# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the cosine learning-rate decay: the rates per epoch, resuming mid-stage, the constant switch."""

from __future__ import annotations

import math

import pytest
import torch
from ignite.engine import Engine

from scripts.handlers.cosine_lr import CosineEpochLR


def _run(handler_kwargs: dict, max_epochs: int, start_epoch: int = 0) -> tuple[list[float], torch.optim.Optimizer]:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    seen: list[float] = []
    engine = Engine(lambda engine, batch: seen.append(optimizer.param_groups[0]["lr"]))
    CosineEpochLR(optimizer, **handler_kwargs).attach(engine)
    if start_epoch:  # as a resumed stage: the checkpoint restored the epoch counter
        engine.state.epoch, engine.state.max_epochs = start_epoch, max_epochs
        engine.state.iteration = start_epoch
    engine.run([0], max_epochs=max_epochs)
    return seen, optimizer


def test_rates_follow_the_cosine_from_the_base_rate():
    seen, _ = _run({}, max_epochs=4)
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert seen == pytest.approx(expected)
    assert seen[0] == pytest.approx(0.1) and seen[-1] < 0.02


def test_a_resumed_stage_gets_the_rates_it_would_have_had():
    full, _ = _run({"min_lr": 0.01}, max_epochs=5)
    resumed, _ = _run({"min_lr": 0.01}, max_epochs=5, start_epoch=2)
    assert resumed == pytest.approx(full[2:])


def test_disabled_keeps_the_rate_and_bad_min_lr_is_refused():
    seen, _ = _run({"enabled": False}, max_epochs=3)
    assert seen == [0.1, 0.1, 0.1]
    with pytest.raises(ValueError, match="min_lr"):
        CosineEpochLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), min_lr=-1)
