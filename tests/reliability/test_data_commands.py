# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The dataset commands on broken datasets: ``python scripts/check_dataset.py <root>`` and ``python
scripts/cobb_angles.py <root> --out angles.csv [--compare]`` (their ``main`` in-process; one subprocess shows the
exit status and the single ``error:`` line). Nothing in the dataset is changed, nothing already written is replaced.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reliability import REPO, snapshot


def _main(script: str):
    spec = importlib.util.spec_from_file_location(f"reliability_{script}", REPO / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def root(phantom_root, tmp_path) -> Path:
    """A copy of the 12-phantom dataset that a test may break."""
    return Path(shutil.copytree(phantom_root, tmp_path / "phantoms"))


def _labels(root: Path) -> Path:
    return root / "labels" / "training"


def test_check_dataset_reports_a_missing_mat_file(root, capsys):
    name = (_labels(root) / "filenames.csv").read_text().splitlines()[0]
    (_labels(root) / f"{name}.mat").unlink()
    before = snapshot(root)
    assert _main("check_dataset")([str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if ".mat" in line)
    print(line)
    assert line == f"{_labels(root) / name}.mat: missing: its landmarks were read from landmarks.csv instead"
    assert snapshot(root) == before


def test_check_dataset_lists_broken_labels_by_file(root, capsys):
    names = (_labels(root) / "filenames.csv").read_text().splitlines()
    rows = (_labels(root) / "landmarks.csv").read_text().splitlines()
    values = np.array(rows[1].split(","), dtype=float)
    values[:4] = values[:4][::-1]  # two corners of the first vertebra swapped
    rows[1] = ",".join(f"{value:g}" for value in values)
    (_labels(root) / "landmarks.csv").write_text("\n".join(rows) + "\n")
    for name in names[:2]:  # landmarks come from the .mat files first: use the CSV for these two
        (_labels(root) / f"{name}.mat").unlink()
    assert _main("check_dataset")([str(root), "--no-decode"]) == 1
    out = capsys.readouterr().out
    print(next(line for line in out.splitlines() if line.startswith(names[1])))
    assert any(line.startswith(f"{names[1]}: ") and ".mat" not in line for line in out.splitlines())


def test_check_dataset_names_a_truncated_image(root, capsys):
    name = (_labels(root) / "filenames.csv").read_text().splitlines()[3]
    image = root / "data" / "training" / name
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    assert _main("check_dataset")([str(root)]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(name))
    print(line)
    assert line.startswith(f"{name}: image cannot be decoded")


def test_cobb_angles_without_compare_does_not_need_angles_csv(root, tmp_path, capsys):
    (_labels(root) / "angles.csv").unlink()
    assert _main("cobb_angles")([str(root), "--out", str(tmp_path / "rule.csv")]) == 0
    print(capsys.readouterr().out.strip())
    assert len((tmp_path / "rule.csv").read_text().splitlines()) == 13


def test_cobb_angles_with_compare_names_the_missing_angles_csv(root, tmp_path, capsys):
    (_labels(root) / "angles.csv").unlink()
    assert _main("cobb_angles")([str(root), "--out", str(tmp_path / "rule.csv"), "--compare"]) == 2
    err = capsys.readouterr().err.strip()
    print(err)
    first, *listed = err.splitlines()
    assert first.startswith(f"error: split 'training' of {root} has 1 problem(s):")
    assert listed == [f"  {_labels(root) / 'angles.csv'}: missing"]
    assert not (tmp_path / "rule.csv").exists()


def test_cobb_angles_keeps_an_existing_output(phantom_root, tmp_path, capsys):
    (tmp_path / "angles.csv").write_text("keep me")
    assert _main("cobb_angles")([str(phantom_root), "--out", str(tmp_path / "angles.csv")]) == 2
    err = capsys.readouterr().err.strip()
    print(err)
    assert err == f"error: {tmp_path / 'angles.csv'} exists; pass --overwrite to replace it"
    assert (tmp_path / "angles.csv").read_text() == "keep me"


def test_a_missing_dataset_root_ends_with_one_error_line_and_status_2(tmp_path):
    command = [sys.executable, str(REPO / "scripts" / "check_dataset.py"), str(tmp_path / "absent")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    print(result.stderr.strip())
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "absent" in result.stderr
