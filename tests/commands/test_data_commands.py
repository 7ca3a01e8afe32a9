# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The repository commands cobb_angles.py, check_dataset.py, mean_baseline.py and cross_validate.py, run as a person runs them."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "scripts" / script), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_cobb_angles_writes_the_rule_and_compares(phantom_root, tmp_path):
    out = tmp_path / "angles.csv"
    result = _run("cobb_angles.py", phantom_root, "--split", "training", "--out", out, "--compare")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["filename", "angle1", "angle2", "angle3"] and len(rows) == 13
    released = np.loadtxt(phantom_root / "labels" / "training" / "angles.csv", delimiter=",")
    np.testing.assert_allclose(np.array([r[1:] for r in rows[1:]], dtype=float), released, atol=0.01)
    assert "largest difference" in result.stdout and "SMAPE" in result.stdout


def test_cobb_angles_does_not_overwrite(phantom_root, tmp_path):
    out = tmp_path / "angles.csv"
    out.write_text("keep me")
    result = _run("cobb_angles.py", phantom_root, "--out", out)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert out.read_text() == "keep me"


def test_cobb_angles_names_a_broken_dataset(phantom_root, tmp_path):
    root = Path(shutil.copytree(phantom_root, tmp_path / "copy"))
    name = (root / "labels" / "training" / "filenames.csv").read_text().splitlines()[0]
    (root / "data" / "training" / name).unlink()
    result = _run("cobb_angles.py", root, "--out", tmp_path / "a.csv")
    assert result.returncode == 2 and name in result.stderr and "Traceback" not in result.stderr


def test_check_dataset_is_quiet_on_sound_labels_and_lists_problems(phantom_root, tmp_path):
    clean = _run("check_dataset.py", phantom_root)
    assert clean.returncode == 0 and "0 problem(s)" in clean.stdout
    root = Path(shutil.copytree(phantom_root, tmp_path / "copy"))
    labels = root / "labels" / "training"
    lines = (labels / "angles.csv").read_text().splitlines()
    lines[0] = "179,1,1"
    (labels / "angles.csv").write_text("\n".join(lines) + "\n")
    first, second = (labels / "filenames.csv").read_text().splitlines()[:2]
    image = root / "data" / "training" / second
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])  # truncated JPEG: the header reads, the pixels do not
    result = _run("check_dataset.py", root)
    assert result.returncode == 1
    assert f"{first}: angles.csv [179.0, 1.0, 1.0] disagrees with the rule" in result.stdout
    assert f"{second}: image cannot be decoded" in result.stdout


def test_rule_reproduces_released_angles_within_001(aasce_root, tmp_path):
    out = tmp_path / "angles.csv"
    result = _run("cobb_angles.py", aasce_root, "--out", out, "--compare")
    assert result.returncode == 0, result.stderr
    computed = np.array([r[1:] for r in list(csv.reader(out.open()))[1:]], dtype=float)
    released = np.loadtxt(aasce_root / "labels" / "training" / "angles.csv", delimiter=",")
    assert np.abs(computed - released).max() < 0.01


def test_a_missing_mat_file_is_a_finding_of_check_dataset(phantom_root, tmp_path):
    root = Path(shutil.copytree(phantom_root, tmp_path / "copy"))
    labels = root / "labels" / "training"
    name = (labels / "filenames.csv").read_text().splitlines()[0]
    (labels / f"{name}.mat").unlink()  # the reader falls back on landmarks.csv
    result = _run("check_dataset.py", root, "--no-decode")
    assert result.returncode == 1
    assert f"{labels / name}.mat: missing: its landmarks were read from landmarks.csv instead" in result.stdout


def test_cobb_angles_needs_angles_csv_only_to_compare(phantom_root, tmp_path):
    root = Path(shutil.copytree(phantom_root, tmp_path / "copy"))
    angles = root / "labels" / "training" / "angles.csv"
    lines = angles.read_text().splitlines()
    lines[1] = "nan,1,1"
    angles.write_text("\n".join(lines) + "\n")
    result = _run("cobb_angles.py", root, "--out", tmp_path / "rule.csv")
    assert result.returncode == 0, result.stderr
    assert len(list(csv.reader((tmp_path / "rule.csv").open()))) == 13  # every image, the one with the NaN row too
    compared = _run("cobb_angles.py", root, "--out", tmp_path / "again.csv", "--compare")
    assert compared.returncode == 2 and "angles.csv" in compared.stderr and "NaN" in compared.stderr


def test_check_dataset_finds_the_known_training_problems(aasce_root):
    result = _run("check_dataset.py", aasce_root, "--no-decode")
    assert result.returncode == 1
    files = {line.split(": ")[0] for line in result.stdout.splitlines() if ": " in line}
    assert 20 <= len(files) <= 40, files
    assert "sunhl-1th-30-Dec-2016-161 A AP.jpg" in files  # the 156-degree label
    assert "implausible angle 156.4" in result.stdout


@pytest.mark.parametrize("script", ["cobb_angles.py", "check_dataset.py"])
def test_missing_dataset_root_is_a_clear_error(script, tmp_path):
    args = ["--out", str(tmp_path / "x.csv")] if script == "cobb_angles.py" else []
    result = _run(script, tmp_path / "nowhere", *args)
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_mean_baseline_scores_the_training_mean_on_the_held_out_fold(phantom_root):
    result = _run("mean_baseline.py", phantom_root, "--fold", "1")
    assert result.returncode == 0, result.stderr
    assert "training fold 1" in result.stdout and "| SMAPE % | MAE deg | MAE angle1 |" in result.stdout
    smape_value, mae_value, *per_angle = (float(c) for c in result.stdout.splitlines()[-1].strip("| ").split(" | "))
    assert 0 < smape_value < 100 and mae_value == pytest.approx(np.mean(per_angle), abs=0.01)


def test_mean_baseline_names_a_missing_root(tmp_path):
    result = _run("mean_baseline.py", tmp_path / "nowhere")
    assert result.returncode == 2 and "nowhere" in result.stderr


def test_cross_validation_refuses_more_folds_than_patients(phantom_root, tmp_path):
    result = _run("cross_validate.py", phantom_root, "--folds", "0", "--num-folds", "20", "--out", tmp_path / "cv")
    assert result.returncode == 2
    assert "12 patients, fewer than --num-folds 20" in result.stderr and str(phantom_root) in result.stderr
    assert not (tmp_path / "cv").exists()  # nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--folds", "5"], "--folds must be distinct numbers in [0, 5)"),
        (["--folds", "1", "1"], "--folds must be distinct"),
        (["--folds", "0", "--inner-val-folds", "1"], "--inner-val-folds must be at least 2"),
        (["--folds", "0", "--set", "epochs"], "--set takes ID=VALUE"),
        (["--folds", "0", "--recipe", "nowhere.yaml"], "recipe overlay not found: nowhere.yaml"),
    ],
)
def test_cross_validation_refuses_bad_settings(phantom_root, tmp_path, args, message):
    result = _run("cross_validate.py", phantom_root, "--out", tmp_path / "cv", *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "cv").exists()


def test_cross_validation_names_a_missing_dataset(tmp_path):
    result = _run("cross_validate.py", tmp_path / "nowhere", "--folds", "0", "--out", tmp_path / "cv")
    assert result.returncode == 2 and "nowhere" in result.stderr


def test_cross_validation_tables_the_geometry_of_a_vertebra_recipe():
    spec = importlib.util.spec_from_file_location("cross_validate", REPO / "scripts" / "cross_validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.geometry_scores({"smape": 10.0}) == {}  # a spine-mask N_S has no geometry
    metrics = {
        "vertebra_dice": 0.6,
        "geometry": {"num_images": 10, "measured": 8, "smape_geometric": 12.0, "smape_combined": 11.0},
    }
    scores = module.geometry_scores(metrics)
    assert scores == {"smape_geometric": 12.0, "smape_combined": 11.0, "geometry_measured": 0.8, "vertebra_dice": 0.6}
    per_fold = {1: scores, 2: {**scores, "smape_geometric": 14.0}}
    table = module.format_table(per_fold, module.summarise(per_fold), module.GEOMETRY_COLUMNS).splitlines()
    assert table[-2].startswith("| mean | 0.6 | 0.8 | 13 |") and "| - |" in table[-2]  # unmeasured columns: dashes


def test_quality_review_rate_counts_reasons_and_recounts_with_other_limits(tmp_path):
    def record(name: str, flip: float, agreement: float | None) -> dict:
        reasons = [{"check": "flip_disagreement", "value": flip, "limit": 15.6}] if flip > 15.6 else []
        geometry = {"status": "measured" if agreement is not None else "not_measured"}
        return {
            "name": name,
            "quality": {"verdict": "review" if reasons else "ok", "reasons": reasons, "flip_difference_deg": flip},
            "geometry": geometry,
            "agreement": None if agreement is None else {"max_abs_deg": agreement},
        }

    for index, (flip, agreement) in enumerate([(3.0, 2.0), (20.0, 4.0), (5.0, 30.0), (4.0, None)]):
        (tmp_path / f"{index}.json").write_text(json.dumps(record(f"{index}.jpg", flip, agreement)))
    (tmp_path / "summary.json").write_text("{}")  # no verdict: not a prediction
    result = _run("quality_review_rate.py", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 of 4 predictions marked review (25.0%)" in result.stdout and "flip_disagreement: 1" in result.stdout
    assert "geometry measured on 3 of 4 images" in result.stdout and "max 30.00" in result.stdout
    recounted = _run("quality_review_rate.py", tmp_path, "--flip-limit", "25", "--geometry-limit", "10")
    assert "1 of 4 predictions marked review" in recounted.stdout and "geometry_disagreement: 1" in recounted.stdout
    assert "flip_disagreement" not in recounted.stdout.split("review")[-1].split("flip difference")[0]
