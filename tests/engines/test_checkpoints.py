# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json

import pytest
import torch

from scripts.engines.checkpoints import (
    StageFinishedError,
    load_weights,
    mark_done,
    prepare_stage_dir,
    read_done,
)

RUN = {"dataset": "/data/x", "fold": 0}


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


def test_fresh_folder_records_the_run(tmp_path):
    assert prepare_stage_dir(tmp_path / "stage_a", RUN) is None
    assert json.loads((tmp_path / "stage_a" / "run.json").read_text()) == RUN


def test_resume_picks_the_latest_epoch(tmp_path):
    folder = tmp_path / "stage_b"
    prepare_stage_dir(folder, RUN)
    for epoch in (3, 12, 7):
        (folder / f"checkpoint_epoch={epoch}.pt").write_bytes(b"x")
    assert prepare_stage_dir(folder, RUN) == str(folder / "checkpoint_epoch=12.pt")


def test_another_runs_folder_is_refused_and_kept(tmp_path):
    folder = tmp_path / "stage_a"
    prepare_stage_dir(folder, RUN)
    (folder / "checkpoint_epoch=1.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="holds checkpoints of another run"):
        prepare_stage_dir(folder, {**RUN, "fold": 1})
    assert (folder / "checkpoint_epoch=1.pt").read_bytes() == b"weights"


def test_finished_stage_is_refused_unless_overwritten(tmp_path):
    folder = tmp_path / "stage_a"
    prepare_stage_dir(folder, RUN)
    record = mark_done(folder, "a", "val_dice", {"val_dice": 0.9}, best_epoch=4, seconds=12.34)
    assert read_done(folder) == record and record["metrics"] == {"val_dice": 0.9} and record["seconds"] == 12.3
    with pytest.raises(StageFinishedError, match="--overwrite true"):
        prepare_stage_dir(folder, RUN)
    with pytest.raises(ValueError, match="another run"):  # another run is told so, not that the stage is done
        prepare_stage_dir(folder, {**RUN, "fold": 2})
    with pytest.raises(ValueError, match="overwrite must be true or false"):
        prepare_stage_dir(folder, RUN, overwrite="flase")
    assert prepare_stage_dir(folder, RUN, overwrite="true") is None
    assert read_done(folder) is None
