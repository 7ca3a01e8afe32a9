# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the training datalists (the held-out fold, the inner validation part, the mean predictor's floor) and of
the phantom cache, which survives a killed run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scripts.data.phantoms as phantoms_module
from scripts.data.aasce import patient_id
from scripts.data.datasets import fold_datalists, resolve_dataset_dir
from scripts.data.phantoms import complete_splits
from scripts.metrics.angles import mean_predictor_scores

REPO = Path(__file__).resolve().parents[2]
CACHE_ARGS = {"split": "training", "num_phantoms": 3, "phantom_seed": 1, "phantom_scale": 0.25}
CACHE_NAME = "phantoms-n3-s1-x0.25"


def _patients(records: list[dict]) -> set[str]:
    return {patient_id(record["name"]) for record in records}


def test_inner_validation_never_touches_the_held_out_fold(phantom_root):
    plain = fold_datalists(phantom_root, num_folds=3, fold=1)
    inner = fold_datalists(phantom_root, num_folds=3, fold=1, inner_val_folds=2)
    assert set(plain) == {"train", "val"} and set(inner) == {"train", "val", "test"}
    assert [r["name"] for r in inner["test"]] == [r["name"] for r in plain["val"]]  # the scored fold is the same
    parts = [_patients(inner[key]) for key in ("train", "val", "test")]
    assert all(not a & b for i, a in enumerate(parts) for b in parts[i + 1 :])  # patients never on two sides
    names = sorted(r["name"] for key in ("train", "val") for r in inner[key])
    assert names == sorted(r["name"] for r in plain["train"])  # the inner split divides the training part


def test_too_few_patients_for_the_inner_split_is_named(phantom_root):
    with pytest.raises(ValueError, match="cannot be split into num_folds=20"):
        fold_datalists(phantom_root, num_folds=2, fold=0, inner_val_folds=20)


def test_mean_predictor_scores_by_hand():
    train = [{"angles": [30.0, 10.0, 20.0]}, {"angles": [10.0, 30.0, 0.0]}]  # mean (20, 20, 10)
    val = [{"angles": [20.0, 10.0, 10.0]}]
    scores = mean_predictor_scores(train, val)
    # |0| + |10| + |0| over (40 + 30 + 20): 100 * 10 / 90
    np.testing.assert_allclose(scores["val_smape"], 100 * 10 / 90)
    np.testing.assert_allclose(scores["val_mae"], 10 / 3)
    assert scores["val_mae_angle2"] == 10.0 and scores["val_mae_angle1"] == 0.0
    assert mean_predictor_scores(train, []) is None
    assert mean_predictor_scores(train, [{"image": "x.png", "label": "x_mask.png"}]) is None  # MONAI Label pairs


def _cache_files(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_ino) for p in root.rglob("*") if p.is_file()}


def _entries(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.iterdir() if not path.name.endswith(".lock"))


def test_complete_cache_is_reused_untouched(tmp_path):
    root = Path(resolve_dataset_dir("", tmp_path, **CACHE_ARGS))
    assert root == tmp_path / CACHE_NAME and complete_splits(root)["training"]["num"] == 3
    before = _cache_files(root)
    assert resolve_dataset_dir(None, tmp_path, **CACHE_ARGS) == str(root)
    assert _cache_files(root) == before  # nothing rewritten, nothing added
    assert _entries(tmp_path) == [CACHE_NAME]


def test_generation_killed_halfway_leaves_nothing_in_place(tmp_path, monkeypatch):
    made = []
    real = phantoms_module.make_phantom

    def dies_at_the_second(*args, **kwargs):
        if made:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the set
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(phantoms_module, "make_phantom", dies_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        resolve_dataset_dir("", tmp_path, **CACHE_ARGS)
    assert _entries(tmp_path) == []  # neither the set nor its partial folder
    monkeypatch.undo()
    root = Path(resolve_dataset_dir("", tmp_path, **CACHE_ARGS))
    assert complete_splits(root)["training"]["num"] == 3


def test_partial_folder_of_a_killed_run_is_removed(tmp_path, caplog):
    # what a SIGKILL during generation leaves: a partial folder, half full
    partial = tmp_path / f"{CACHE_NAME}.partial-999999"
    (partial / "data" / "training").mkdir(parents=True)
    (partial / "data" / "training" / "phantom-0000 A AP.jpg").write_bytes(b"half")
    with caplog.at_level(logging.WARNING, logger="scripts.data.datasets"):
        root = Path(resolve_dataset_dir("", tmp_path, **CACHE_ARGS))
    assert f"removing {partial}" in caplog.text
    assert _entries(tmp_path) == [CACHE_NAME] and complete_splits(root)["training"]["num"] == 3


def test_incomplete_set_of_an_older_version_is_generated_again(tmp_path, caplog):
    # what an interrupted run of the bundle before atomic caching left: the set's own folder, half written
    root = tmp_path / CACHE_NAME
    (root / "data" / "training").mkdir(parents=True)
    (root / "data" / "training" / "phantom-0000 A AP.jpg").write_bytes(b"half")
    (root / ".phantoms.lock").touch()
    with caplog.at_level(logging.WARNING, logger="scripts.data.datasets"):
        assert resolve_dataset_dir("", tmp_path, **CACHE_ARGS) == str(root)
    assert "incomplete or outdated phantom set for split training" in caplog.text
    assert complete_splits(root)["training"]["num"] == 3
    assert (root / "data" / "training" / "phantom-0000 A AP.jpg").read_bytes() != b"half"
    assert _entries(tmp_path) == [CACHE_NAME]


def test_another_split_is_added_and_the_first_kept(tmp_path):
    root = Path(resolve_dataset_dir("", tmp_path, **CACHE_ARGS))
    training = {name: path.read_bytes() for name, path in _named_files(root / "labels" / "training")}
    resolve_dataset_dir("", tmp_path, **(CACHE_ARGS | {"split": "test"}))
    assert set(complete_splits(root)) == {"training", "test"}
    assert {name: path.read_bytes() for name, path in _named_files(root / "labels" / "training")} == training
    assert _entries(tmp_path) == [CACHE_NAME]


def _named_files(folder: Path) -> list[tuple[str, Path]]:
    return [(path.name, path) for path in sorted(folder.iterdir())]


def test_racing_processes_share_one_set(tmp_path):
    # two torchrun ranks resolve the config at once: one generates, the other waits and reuses the finished set
    code = (
        "import sys; from scripts.data.datasets import resolve_dataset_dir; "
        "print(resolve_dataset_dir('', sys.argv[1], 'training', 6, 1, 0.25))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle")}
    ranks = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [rank.communicate(timeout=120)[0].strip() for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0, 0]
    assert outputs == [str(tmp_path / "phantoms-n6-s1-x0.25")] * 2
    assert complete_splits(outputs[0])["training"]["num"] == 6
    assert _entries(tmp_path) == ["phantoms-n6-s1-x0.25"]
