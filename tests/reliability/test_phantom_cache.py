# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The phantom cache (training without ``--dataset_dir``) after an interrupted generation.

Training resolves its data with ``scripts.data.datasets.resolve_dataset_dir`` (``dataset_dir`` in train.yaml); these
tests call it as the config does. A killed generation leaves a ``phantoms-….partial-<pid>`` folder beside the set:
the next run removes it, says so, and generates the whole set; the kill itself is the ``slow`` test.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reliability import REPO
from scripts.data.datasets import resolve_dataset_dir
from scripts.data.phantoms import complete_splits

NAME = "phantoms-n4-s0-x0.25"


def _resolve(cache: Path) -> Path:
    return Path(resolve_dataset_dir("", cache, num_phantoms=4, phantom_seed=0, phantom_scale=0.25))


def _whole(root: Path) -> bool:
    return root.name == NAME and "training" in complete_splits(root)


def test_a_partial_folder_left_by_a_killed_run_is_removed_and_the_set_generated(tmp_path, caplog):
    leftover = tmp_path / f"{NAME}.partial-999999"
    (leftover / "data" / "training").mkdir(parents=True)
    (leftover / "data" / "training" / "half.jpg").write_bytes(b"\xff\xd8 cut short")
    with caplog.at_level(logging.WARNING, logger="scripts.data.datasets"):
        root = _resolve(tmp_path)
    line = next(record.getMessage() for record in caplog.records if str(leftover) in record.getMessage())
    print(line)
    assert line == f"removing {leftover}, left unfinished by an interrupted run"
    assert _whole(root) and sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == [NAME]


def test_a_set_half_written_in_its_final_folder_is_generated_again(tmp_path, caplog):
    (tmp_path / NAME / "data" / "training").mkdir(parents=True)  # an older bundle version wrote in place
    (tmp_path / NAME / "data" / "training" / "half.jpg").write_bytes(b"\xff\xd8 cut short")
    with caplog.at_level(logging.WARNING, logger="scripts.data.datasets"):
        root = _resolve(tmp_path)
    line = next(record.getMessage() for record in caplog.records if "generating it again" in record.getMessage())
    print(line)
    assert str(tmp_path / NAME) in line and _whole(root)
    assert not (root / "data" / "training" / "half.jpg").exists()


def test_a_complete_set_is_reused_without_writing(tmp_path):
    root = _resolve(tmp_path)
    before = {path: path.stat().st_mtime_ns for path in root.rglob("*")}
    assert _resolve(tmp_path) == root and {path: path.stat().st_mtime_ns for path in root.rglob("*")} == before


@pytest.mark.slow
def test_a_generation_killed_part_way_recovers_on_the_next_run(tmp_path):
    code = (
        "from scripts.data.datasets import resolve_dataset_dir; "
        f"resolve_dataset_dir('', {str(tmp_path)!r}, num_phantoms=60, phantom_seed=0, phantom_scale=0.25)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle")}
    process = subprocess.Popen([sys.executable, "-c", code], env=env)
    partial = tmp_path / f"phantoms-n60-s0-x0.25.partial-{process.pid}" / "data" / "training"
    deadline = time.monotonic() + 300
    while not (partial.is_dir() and len(list(partial.iterdir())) >= 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert partial.is_dir() and not (tmp_path / "phantoms-n60-s0-x0.25").exists()  # killed mid-way, nothing final
    root = Path(resolve_dataset_dir("", tmp_path, num_phantoms=60, phantom_seed=0, phantom_scale=0.25))
    assert complete_splits(root)["training"] and len(list((root / "data" / "training").iterdir())) == 60
    assert not list(tmp_path.glob("*.partial-*"))
