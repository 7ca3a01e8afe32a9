# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Training refusals that protect what is already written, and starts that fail without leaving anything behind.

``python -m monai.bundle run training --config_file "['bundle/configs/train.yaml', tiny.yaml]" --ckpt_dir models``
(the pipeline) and ``python -m monai.bundle run --config_file "['bundle/configs/train.yaml',
'bundle/configs/stage_<x>.yaml', tiny.yaml]"`` (one stage), in-process where they stop before training; one subprocess
shows the exit status and the one ``ERROR:`` line; the cases that train (a few tiny epochs) are ``slow``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigWorkflow
from tiny_bundle import CONFIGS, META, write_tiny_training_overlay

from reliability import bundle_command, error_line, snapshot


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An overlay that shrinks every stage to seconds (64x32 input, 12 small phantoms cached for the module)."""
    return write_tiny_training_overlay(tmp_path_factory.mktemp("tiny_training"))


def _workflow(tiny: Path, files: list[Path], run_id: str, tmp_path: Path, **overrides: object) -> ConfigWorkflow:
    workflow = ConfigWorkflow(
        config_file=[str(path) for path in (*files, tiny)],
        meta_file=str(META),
        logging_file=False,
        workflow_type="train",
        run_id=run_id,
        ckpt_dir=str(tmp_path / "models"),
        output_dir=str(tmp_path / "eval"),
        **overrides,
    )
    workflow.initialize()
    return workflow


def _pipeline(tiny: Path, tmp_path: Path, **overrides: object) -> ConfigWorkflow:
    return _workflow(tiny, [CONFIGS / "train.yaml"], "training", tmp_path, **overrides)


def _stage(tiny: Path, stage: str, tmp_path: Path, **overrides: object) -> ConfigWorkflow:
    return _workflow(tiny, [CONFIGS / "train.yaml", CONFIGS / f"stage_{stage}.yaml"], "run", tmp_path, **overrides)


def _another_runs_folder(folder: Path) -> None:
    """A stage folder as another run (other data, other fold) left it: its record, an epoch checkpoint, a model."""
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"dataset": "/data/elsewhere", "fold": 4}))
    (folder / "checkpoint_epoch=3.pt").write_bytes(b"another run's epoch")
    (folder / "model.pt").write_bytes(b"another run's model")


def test_the_pipeline_never_replaces_a_model_it_did_not_write(tiny, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"someone's model")
    before = snapshot(tmp_path / "models")
    line = error_line(_pipeline(tiny, tmp_path, stages=["a"]))
    print(line)
    assert line.startswith(
        f"ERROR: {tmp_path / 'models' / 'model.pt'} was not written by a training run of this bundle"
    )
    assert "--overwrite true" in line and snapshot(tmp_path / "models") == before


def test_retrain_true_does_not_clear_another_runs_folder(tiny, tmp_path):
    _another_runs_folder(tmp_path / "models" / "stage_a")
    before = snapshot(tmp_path / "models")
    line = error_line(_pipeline(tiny, tmp_path, stages=["a"], retrain="true"))
    print(line)
    assert line.startswith("ERROR: ") and "holds checkpoints of another run" in line
    assert str(tmp_path / "models" / "stage_a") in line and "--overwrite true" in line
    assert snapshot(tmp_path / "models") == before


def test_a_stage_alone_does_not_clear_another_runs_folder(tiny, tmp_path):
    _another_runs_folder(tmp_path / "models" / "stage_a")
    before = snapshot(tmp_path / "models")
    line = error_line(_stage(tiny, "a", tmp_path))
    print(line)
    assert "holds checkpoints of another run" in line and snapshot(tmp_path / "models") == before


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"regressor_backbone": "resnet99"}, "backbone must be one of"),
        ({"dataset_dir": "/nowhere/boostnet"}, "dataset root /nowhere/boostnet does not exist"),
    ],
    ids=["unknown-backbone", "missing-dataset"],
)
def test_a_failed_start_leaves_nothing_behind(tiny, tmp_path, override, message):
    line = error_line(_stage(tiny, "a", tmp_path, **override))
    print(line)
    assert line.startswith("ERROR: ") and message in line
    folder = tmp_path / "models" / "stage_a"
    assert not folder.exists() or not any(folder.iterdir())


def test_a_misspelt_id_is_named_before_anything_runs(tiny, tmp_path):
    line = error_line(_pipeline(tiny, tmp_path, stages=["a"], batch_szie=4))
    print(line)
    assert line.startswith("ERROR: ") and "batch_szie" in line
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_a_damaged_previous_model_is_named(tiny, tmp_path):
    previous = tmp_path / "models" / "stage_a" / "model.pt"
    previous.parent.mkdir(parents=True)
    torch.save({"weight": torch.zeros(1000)}, previous)
    previous.write_bytes(previous.read_bytes()[:300])  # a copy cut short
    line = error_line(_stage(tiny, "b", tmp_path))
    print(line)
    assert line.startswith(f"ERROR: {previous} is damaged (truncated")
    assert not (tmp_path / "models" / "stage_b").exists() or not any((tmp_path / "models" / "stage_b").iterdir())


def test_the_command_ends_with_one_error_line_and_status_1(tiny, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"someone's model")
    config = str([str(CONFIGS / "train.yaml"), str(tiny)])
    result = bundle_command("run", "training", "--config_file", config, "--ckpt_dir", str(tmp_path / "models"))
    last = result.stderr.rstrip().splitlines()[-1]
    print(last)
    assert result.returncode == 1 and "Traceback" not in result.log
    assert last.startswith("ERROR: ") and "was not written by a training run of this bundle" in last
    assert sum(line.startswith("ERROR:") for line in result.log.splitlines()) == 1
    assert (tmp_path / "models" / "model.pt").read_bytes() == b"someone's model"


@pytest.mark.slow
def test_a_corrected_start_runs_where_a_failed_one_stopped(tiny, tmp_path):
    error_line(_stage(tiny, "a", tmp_path, regressor_backbone="resnet99"))
    _stage(tiny, "a", tmp_path).run()
    assert (tmp_path / "models" / "stage_a" / "done.json").is_file()


@pytest.mark.slow
def test_overwrite_true_replaces_another_runs_folder(tiny, tmp_path):
    _another_runs_folder(tmp_path / "models" / "stage_a")
    _stage(tiny, "a", tmp_path, overwrite="true").run()
    folder = tmp_path / "models" / "stage_a"
    assert (folder / "done.json").is_file() and not (folder / "checkpoint_epoch=3.pt").exists()
    assert json.loads((folder / "run.json").read_text())["fold"] == 0


@pytest.mark.slow
def test_a_damaged_epoch_checkpoint_falls_back_to_the_previous_epoch(tiny, tmp_path, caplog):
    folder = tmp_path / "models" / "stage_a"
    _stage(tiny, "a", tmp_path).run()
    epoch_one = (folder / "checkpoint_epoch=1.pt").read_bytes()
    (folder / "done.json").unlink()  # as a kill during the next epoch leaves it
    _stage(tiny, "a", tmp_path, epochs={"a": 2}).run()
    # a kill between writing epoch 2 and removing epoch 1, then epoch 2's file damaged (a full disk, a bad copy)
    (folder / "checkpoint_epoch=1.pt").write_bytes(epoch_one)
    epoch_two = folder / "checkpoint_epoch=2.pt"
    epoch_two.write_bytes(epoch_two.read_bytes()[: epoch_two.stat().st_size // 2])
    (folder / "done.json").unlink()
    with caplog.at_level(logging.INFO):
        _stage(tiny, "a", tmp_path, epochs={"a": 3}).run()
    log = "\n".join(record.getMessage() for record in caplog.records)
    print(next(line for line in log.splitlines() if "checkpoint_epoch=2.pt" in line))
    assert f"{epoch_two}" in log and "damaged" in log and "checkpoint_epoch=1.pt" in log
    assert (folder / "done.json").is_file() and (folder / "checkpoint_epoch=3.pt").is_file()
    assert sorted(path.name for path in folder.glob("checkpoint_epoch=*.pt")) == ["checkpoint_epoch=3.pt"]
