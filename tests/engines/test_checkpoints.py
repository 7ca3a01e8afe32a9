# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from scripts import BUNDLE_ROOT
from scripts.engines.checkpoint_files import (
    DamagedCheckpointError,
    checkpoint_damage,
    copy_atomically,
    load_checkpoint_file,
    replace_atomically,
)
from scripts.engines.checkpoints import (
    StageFinishedError,
    claim_stage_dir,
    load_weights,
    mark_done,
    prepare_stage_dir,
    read_done,
)
from scripts.networks.definition import default_settings

RUN = {"dataset": "/data/x", "fold": 0}
SETTINGS = default_settings(BUNDLE_ROOT)


def test_load_weights_hands_over_and_names_a_missing_file(tmp_path):
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    torch.save(source.state_dict(), tmp_path / "model.pt")
    assert load_weights(target, tmp_path / "model.pt", "b") is target
    assert torch.equal(target.weight, source.weight)
    assert load_weights(target, "", "a") is target  # stage a starts from scratch
    with pytest.raises(FileNotFoundError, match=r"stage_c/model.pt, which does not exist: train the previous stage"):
        load_weights(target, tmp_path / "stage_c" / "model.pt", "d")


def test_load_weights_refuses_another_network(tmp_path):
    torch.save(torch.nn.Linear(4, 2).state_dict(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="does not hold weights of this network"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "model.pt")


def test_truncated_model_is_named_by_load_weights(tmp_path):
    path = tmp_path / "stage_b" / "model.pt"
    path.parent.mkdir()
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    path.write_bytes(path.read_bytes()[:300])  # a copy or a save cut short
    with pytest.raises(DamagedCheckpointError, match=rf"^{path} is damaged \(truncated: .*\): train the stage"):
        load_weights(torch.nn.Linear(3, 2), path, "c")
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=rf"^{path} is damaged \(empty"):
        load_weights(torch.nn.Linear(3, 2), path, "c")


def test_checkpoint_damage_tells_intact_truncated_and_corrupted(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.arange(1000.0)}, path)
    intact = path.read_bytes()
    assert checkpoint_damage(path) is None
    flipped = bytearray(intact)
    flipped[len(intact) // 2] ^= 0xFF  # inside the tensor: torch.load would not notice
    path.write_bytes(bytes(flipped))
    assert checkpoint_damage(path).startswith("corrupted: member") and "CRC" in checkpoint_damage(path)
    path.write_bytes(intact[: len(intact) - 40])
    assert checkpoint_damage(path).startswith("truncated")
    path.write_bytes(b"not a checkpoint")
    assert checkpoint_damage(path).startswith("not a PyTorch checkpoint")


def test_a_load_failing_for_another_reason_keeps_its_own_error(tmp_path):
    path = tmp_path / "object.pt"
    torch.save({"odd": RUN.items}, path)  # an intact archive weights_only refuses to unpickle
    with pytest.raises(Exception) as caught:
        load_checkpoint_file(path)
    assert not isinstance(caught.value, DamagedCheckpointError)


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"old")
    source = tmp_path / "source.bin"
    source.write_bytes(b"new")
    assert copy_atomically(source, target) == target and target.read_bytes() == b"new"
    with pytest.raises(KeyboardInterrupt), replace_atomically(target) as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.pt", "source.bin"]  # no temporary file left


def _start(folder: Path, run: dict = RUN, **flags: object) -> str | None:
    """What a stage's run list does before training: check the folder, then (everything built) claim it."""
    resume = prepare_stage_dir(folder, run, **flags)
    claim_stage_dir(folder, run, SETTINGS, resume, flags.get("overwrite", False))
    return resume


def test_the_check_writes_nothing_and_the_claim_records_the_run(tmp_path):
    folder = tmp_path / "stage_a"
    assert prepare_stage_dir(folder, RUN) is None and not folder.exists()
    claim_stage_dir(folder, RUN, SETTINGS, None)
    assert json.loads((folder / "run.json").read_text()) == RUN
    assert json.loads((folder / "network.json").read_text()) == SETTINGS


def test_resume_picks_the_latest_epoch_and_the_claim_keeps_it(tmp_path):
    folder = tmp_path / "stage_b"
    _start(folder)
    for epoch in (3, 12, 7):
        (folder / f"checkpoint_epoch={epoch}.pt").write_bytes(b"x")
    assert _start(folder) == str(folder / "checkpoint_epoch=12.pt")
    assert (folder / "checkpoint_epoch=12.pt").is_file()


def test_another_runs_folder_is_refused_and_kept(tmp_path):
    folder = tmp_path / "stage_a"
    _start(folder)
    (folder / "checkpoint_epoch=1.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="holds checkpoints of another run"):
        prepare_stage_dir(folder, {**RUN, "fold": 1})
    with pytest.raises(ValueError, match="holds checkpoints of another run"):  # retraining is not replacing
        prepare_stage_dir(folder, {**RUN, "fold": 1}, retrain_finished=True)
    assert (folder / "checkpoint_epoch=1.pt").read_bytes() == b"weights"


def test_finished_stage_is_refused_unless_retrained_or_overwritten(tmp_path):
    folder = tmp_path / "stage_a"
    _start(folder)
    record = mark_done(folder, "a", "val_dice", {"val_dice": 0.9}, best_epoch=4, seconds=12.34)
    assert read_done(folder) == record and record["metrics"] == {"val_dice": 0.9} and record["seconds"] == 12.3
    with pytest.raises(StageFinishedError, match="--overwrite true"):
        prepare_stage_dir(folder, RUN)
    with pytest.raises(ValueError, match="another run"):  # another run is told so, not that the stage is done
        prepare_stage_dir(folder, {**RUN, "fold": 2})
    with pytest.raises(ValueError, match="overwrite must be true or false"):
        prepare_stage_dir(folder, RUN, overwrite="flase")
    assert prepare_stage_dir(folder, RUN, retrain_finished=True) is None
    assert read_done(folder) == record  # checking clears nothing
    assert _start(folder, overwrite="true") is None
    assert read_done(folder) is None
