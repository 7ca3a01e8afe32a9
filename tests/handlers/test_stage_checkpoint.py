# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the stage checkpoint: atomic epoch files, a resume that survives a damaged newest file, and a resume that
continues the best-model record and draws the same random numbers as an uninterrupted run."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from monai.transforms import Compose, RandGaussianNoise

from scripts.handlers.atomic_saver import AtomicCheckpointSaver
from scripts.handlers.best_metrics import BestMetricsRecorder
from scripts.handlers.stage_checkpoint import RandomStates, StageCheckpoint

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
    assert set(state) == {"model", "optimizer", "trainer", "random"} and state["trainer"]["iteration"] == 4


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


def _draws(transforms: Compose) -> list[float]:
    """One number from every generator a stage draws from: torch, numpy, Python, and the transforms' own."""
    noise = transforms.transforms[0]
    return [torch.rand(1).item(), float(np.random.rand()), random.random(), float(noise.R.rand())]


def _drawing_trainer(folder: Path, resume_from: Path | None = None) -> tuple[Engine, list[list[float]]]:
    """A trainer that draws from every generator at each iteration, with the stage checkpoint attached."""
    transforms = Compose([RandGaussianNoise(prob=1.0)])
    transforms.set_random_state(seed=1)
    network = torch.nn.Linear(3, 1)
    draws: list[list[float]] = []
    trainer = Engine(lambda engine, batch: draws.append(_draws(transforms)))
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    StageCheckpoint(folder, network, optimizer, resume_from=resume_from, transforms=transforms).attach(trainer)
    return trainer, draws


def test_resumed_epochs_draw_the_numbers_of_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    whole, expected = _drawing_trainer(tmp_path / "whole")
    whole.run(BATCHES, max_epochs=4)

    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    killed, _ = _drawing_trainer(tmp_path / "killed")
    killed.run(BATCHES, max_epochs=2)
    torch.manual_seed(5), np.random.seed(5), random.seed(5)  # a new process: other states everywhere
    resumed, draws = _drawing_trainer(tmp_path / "killed", resume_from=tmp_path / "killed" / "checkpoint_epoch=2.pt")
    resumed.run(BATCHES, max_epochs=4)
    assert draws == expected[4:]  # epochs 3 and 4, each generator included
    assert len({tuple(d) for d in draws}) == len(draws)


def test_random_states_refuse_other_transforms():
    state = RandomStates(Compose([RandGaussianNoise()])).state_dict()  # the Compose has a generator of its own
    with pytest.raises(ValueError, match="hold 3 random generators, the checkpoint 2"):
        RandomStates(Compose([RandGaussianNoise(), RandGaussianNoise()])).load_state_dict(state)


class _Validator(Engine):
    """The parts of a MONAI evaluator the best-model record reads: ``best_metric`` and ``best_metric_epoch``."""

    def __init__(self) -> None:
        super().__init__(lambda engine, batch: None)
        self.state.best_metric, self.state.best_metric_epoch = -1.0, -1


def _scored_trainer(folder: Path, scores: list[float], resume_from: Path | None = None):
    """A trainer whose epoch ``n`` scores ``scores[n - 1]``, keeping the best model as the training config does."""
    network = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    validator, recorder = _Validator(), BestMetricsRecorder()
    saver = AtomicCheckpointSaver(str(folder), {"model": network}, save_key_metric=True, key_metric_name="val_dice",
                                  key_metric_filename="model.pt")  # fmt: skip

    def validate(engine: Engine) -> None:  # MONAI's evaluator, reduced to what the record depends on
        network.weight.data.fill_(float(engine.state.epoch))  # the weights tell the epochs apart
        validator.state.epoch, validator.state.metrics = (
            engine.state.epoch,
            {"val_dice": scores[engine.state.epoch - 1]},
        )
        if validator.state.best_metric_epoch == -1 or validator.state.metrics["val_dice"] > validator.state.best_metric:
            validator.state.best_metric = validator.state.metrics["val_dice"]
            validator.state.best_metric_epoch = engine.state.epoch
        recorder(validator)
        saver.metrics_completed(validator)

    trainer = Engine(lambda engine, batch: None)
    stage = StageCheckpoint(folder, network, optimizer, resume_from, validator=validator, best_model=saver,
                            best_metrics=recorder)  # fmt: skip
    stage.attach(trainer)  # before the validation, as in train.yaml: the epoch file must still hold its score
    trainer.add_event_handler(Events.EPOCH_COMPLETED, validate)
    return trainer, validator, recorder


def test_epoch_file_carries_the_best_model_record_after_the_epochs_validation(tmp_path):
    trainer, _, _ = _scored_trainer(tmp_path, [0.5, 0.9])
    trainer.run(BATCHES, max_epochs=2)
    state = torch.load(tmp_path / "checkpoint_epoch=2.pt", weights_only=True)
    assert state["validator"] == {"best_metric": 0.9, "best_metric_epoch": 2}
    assert state["best_metrics"] == {"metrics": {"val_dice": 0.9}, "epoch": 2}
    assert [score for score, _ in state["best_model"]["_saved"]] == [0.9]  # the saver's record of model.pt


def test_resume_keeps_the_best_model_of_the_epochs_before_the_kill(tmp_path):
    scores = [0.5, 0.9, 0.3, 0.4]  # the best epoch, 2, is before the kill; the epochs after it score worse
    killed, _, _ = _scored_trainer(tmp_path, scores)
    killed.run(BATCHES, max_epochs=2)
    resumed, validator, recorder = _scored_trainer(tmp_path, scores, resume_from=tmp_path / "checkpoint_epoch=2.pt")
    resumed.run(BATCHES, max_epochs=4)
    assert (validator.state.best_metric, validator.state.best_metric_epoch) == (0.9, 2)
    assert (recorder.metrics, recorder.epoch) == ({"val_dice": 0.9}, 2)
    assert torch.all(torch.load(tmp_path / "model.pt", weights_only=True)["weight"] == 2.0)  # epoch 2's weights
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint_epoch=4.pt", "model.pt"]


def test_resume_from_a_file_without_the_best_model_record_warns_and_continues(tmp_path, caplog):
    old, _ = _trainer(tmp_path)  # what the handler wrote before it kept the record: model, optimiser, trainer
    old.run(BATCHES, max_epochs=1)
    path = tmp_path / "checkpoint_epoch=1.pt"
    state = torch.load(path, weights_only=True)
    torch.save({name: state[name] for name in ("model", "optimizer", "trainer")}, path)
    resumed, _, recorder = _scored_trainer(tmp_path, [0.5, 0.9], resume_from=path)
    with caplog.at_level(logging.WARNING, logger="scripts.handlers.stage_checkpoint"):
        resumed.run(BATCHES, max_epochs=2)
    assert f"{path} was written without ['validator', 'best_model', 'best_metrics', 'random']" in caplog.text
    assert recorder.epoch == 2


def test_resume_from_a_file_that_is_no_epoch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "checkpoint_epoch=1.pt"
    torch.save({"model": torch.nn.Linear(3, 1).state_dict()}, path)
    trainer, _ = _trainer(tmp_path, resume_from=path)
    with pytest.raises(ValueError, match=r"checkpoint_epoch=1\.pt is not a stage epoch checkpoint: it lacks"):
        trainer.run(BATCHES, max_epochs=2)
