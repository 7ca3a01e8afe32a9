# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the stage checkpoint: atomic epoch files, and a resume that survives a damaged newest file."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from scripts.handlers.atomic_saver import AtomicCheckpointSaver
from scripts.handlers.stage_checkpoint import StageCheckpoint

BATCHES = [torch.ones(2, 3), torch.full((2, 3), 2.0)]


def _trainer(folder: Path, resume_from: Path | None = None) -> tuple[Engine, list[int]]:
    """A tiny trainer with the handler attached, and the list of epochs its iterations ran in."""
    torch.manual_seed(0)
    network = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)

    def step(engine: Engine, batch: torch.Tensor) -> float:
        optimizer.zero_grad()
        loss = network(batch).pow(2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    trainer = Engine(step)
    epochs: list[int] = []
    trainer.add_event_handler(Events.ITERATION_STARTED, lambda engine: epochs.append(engine.state.epoch))
    StageCheckpoint(folder, network, optimizer, resume_from=resume_from).attach(trainer)
    return trainer, epochs


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_epoch_file_is_written_whole_and_alone(tmp_path):
    trainer, _ = _trainer(tmp_path)
    trainer.run(BATCHES, max_epochs=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]  # no temporary file left
    state = torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)
    assert set(state) == {"model", "optimizer", "trainer"} and state["trainer"]["iteration"] == 4


def test_resume_skips_a_truncated_newest_file(tmp_path, caplog):
    trainer, _ = _trainer(tmp_path)
    trainer.run(BATCHES, max_epochs=2)
    newest = tmp_path / "checkpoint_epoch=3.pt"  # as if a kill had torn the file of epoch 3
    shutil.copyfile(tmp_path / "checkpoint_epoch=2.pt", newest)
    _truncate(newest)
    with caplog.at_level(logging.WARNING, logger="scripts.handlers.stage_checkpoint"):
        resumed, epochs = _trainer(tmp_path, resume_from=newest)
    assert f"{newest} is damaged (truncated" in caplog.text
    assert f"resuming from the older epoch checkpoint {tmp_path / 'checkpoint_epoch=2.pt'}" in caplog.text
    resumed.run(BATCHES, max_epochs=4)
    assert epochs == [3, 3, 4, 4]  # epochs 1-2 came from the older file
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_epoch=4.pt"]


def test_resume_starts_afresh_when_every_file_is_damaged(tmp_path, caplog):
    trainer, _ = _trainer(tmp_path)
    trainer.run(BATCHES, max_epochs=2)
    only = tmp_path / "checkpoint_epoch=2.pt"
    _truncate(only)
    with caplog.at_level(logging.WARNING, logger="scripts.handlers.stage_checkpoint"):
        fresh, epochs = _trainer(tmp_path, resume_from=only)
    assert "no intact epoch checkpoint is left" in caplog.text
    fresh.run(BATCHES, max_epochs=1)
    assert epochs == [1, 1]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"]  # the damaged file is gone


def test_resume_from_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint_epoch=7\.pt"):
        _trainer(tmp_path, resume_from=tmp_path / "checkpoint_epoch=7.pt")


def test_best_model_saver_writes_atomically(tmp_path, monkeypatch):
    network = torch.nn.Linear(3, 1)
    saver = AtomicCheckpointSaver(
        str(tmp_path), {"model": network}, save_key_metric=True, key_metric_name="x", key_metric_filename="model.pt"
    )
    disk = saver._key_metric_checkpoint.save_handler
    assert disk._atomic  # MONAI builds it with atomic=False
    disk({"model": network.state_dict()}, "ignored.pt")
    before = (tmp_path / "model.pt").read_bytes()

    def killed_mid_write(obj, target, **kwargs):
        target.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        disk({"model": torch.nn.Linear(3, 1).state_dict()}, "ignored.pt")
    assert (tmp_path / "model.pt").read_bytes() == before  # the previous best model, whole
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pt"]
