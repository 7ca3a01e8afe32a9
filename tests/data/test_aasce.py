# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from scripts.data.aasce import DatasetError, kfold_split, load_datalist, patient_id, scan_split
from scripts.data.cobb import cobb_angles


@pytest.fixture
def corrupt_root(phantom_root: Path, tmp_path: Path) -> Path:
    """A private copy of the phantom set, free to damage."""
    return Path(shutil.copytree(phantom_root, tmp_path / "copy"))


def _labels(root: Path) -> Path:
    return root / "labels" / "training"


def test_reads_every_record_with_pixels_and_sizes(phantom_root):
    records = load_datalist(phantom_root, "training")
    names = (_labels(phantom_root) / "filenames.csv").read_text().split()
    assert len(records) == 12
    assert " ".join(r["name"] for r in records) == " ".join(names)
    for record in records:
        assert Path(record["image"]).is_file() and " " in record["name"]
        assert record["landmarks"].shape == (68, 2) and record["landmarks"].dtype == np.float32
        expected = scipy.io.loadmat(_labels(phantom_root) / f"{record['name']}.mat")["p2"]
        np.testing.assert_array_equal(record["landmarks"], expected)
        np.testing.assert_allclose(cobb_angles(record["landmarks"], record["size"][0]), record["angles"], atol=0.01)


def test_missing_mat_falls_back_to_landmarks_csv(corrupt_root):
    first = load_datalist(corrupt_root)[0]
    (_labels(corrupt_root) / f"{first['name']}.mat").unlink()
    again = load_datalist(corrupt_root)[0]
    # landmarks.csv holds x / width and y / height with 8 significant digits
    np.testing.assert_allclose(again["landmarks"], first["landmarks"], atol=0.02)


def test_missing_image_is_named(corrupt_root):
    record = load_datalist(corrupt_root)[3]
    Path(record["image"]).unlink()
    with pytest.raises(DatasetError, match=f"{record['name']}: image file is missing"):
        load_datalist(corrupt_root)


def test_short_angles_csv_is_reported(corrupt_root):
    path = _labels(corrupt_root) / "angles.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    with pytest.raises(DatasetError, match=r"angles.csv: has 11 rows but filenames.csv lists 12 images"):
        load_datalist(corrupt_root)


def test_nan_angle_is_reported(corrupt_root):
    path = _labels(corrupt_root) / "angles.csv"
    lines = path.read_text().splitlines()
    lines[2] = "nan,1,2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"angles.csv: row 3 holds NaN"):
        load_datalist(corrupt_root)


def test_wrong_landmark_shape_and_unreadable_image(corrupt_root):
    records = load_datalist(corrupt_root)
    scipy.io.savemat(_labels(corrupt_root) / f"{records[0]['name']}.mat", {"p2": np.zeros((60, 2), np.uint16)})
    Path(records[1]["image"]).write_text("not an image")
    found, problems = scan_split(corrupt_root, "training")
    text = "\n".join(str(p) for p in problems)
    assert f"{records[0]['name']}.mat: p2 has shape (60, 2), expected (68, 2)" in text
    assert f"{records[1]['name']}: unreadable image" in text
    assert len(found) == 10


def test_missing_folders_are_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_datalist(tmp_path / "nowhere")
    (tmp_path / "data" / "training").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"labels/training does not exist"):
        load_datalist(tmp_path)


def test_any_split_name_works(tmp_path):
    from scripts.data.phantoms import make_phantoms

    root = make_phantoms(tmp_path, num=3, seed=1, split="test", size_scale=0.25)
    assert len(load_datalist(root, "test")) == 3


def test_patient_id_groups_visits():
    assert patient_id("sunhl-1th-03-Jan-2017-165 A AP.jpg") == patient_id("sunhl-1th-04-Jan-2017-165 B AP.jpg") == "165"
    assert patient_id("sunhl-1th-25-Jul-2016-52 c ap.jpg") == "52"
    assert patient_id("sunhl-1th-20-Jul-2016-coronal6.jpg") == "sunhl-1th-20-Jul-2016-coronal6.jpg"


def _records(names: list[str]) -> list[dict]:
    return [{"name": name} for name in names]


def test_kfold_is_deterministic_disjoint_and_grouped():
    names = [f"x-{p} {v} AP.jpg" for p in range(20) for v in "AB"]
    folds = [kfold_split(_records(names), num_folds=5, fold=f, seed=7) for f in range(5)]
    held_out = [sorted(r["name"] for r in val) for _, val in folds]
    assert sorted(name for fold in held_out for name in fold) == sorted(names)  # every image validated exactly once
    for train, val in folds:
        assert {patient_id(r["name"]) for r in train}.isdisjoint({patient_id(r["name"]) for r in val})
    shuffled = list(reversed(names))
    assert kfold_split(_records(shuffled), 5, 2, seed=7)[1] == folds[2][1]
    assert kfold_split(_records(names), 5, 2, seed=8)[1] != folds[2][1]


def test_kfold_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_folds"):
        kfold_split(_records(["a", "b"]), num_folds=1)
    with pytest.raises(ValueError, match="fold must be in"):
        kfold_split(_records(["a", "b"]), num_folds=2, fold=2)


def test_real_training_split_is_read_whole(aasce_root):
    records = load_datalist(aasce_root, "training")
    assert len(records) == 481
    train, val = kfold_split(records, 5, 0)
    assert len(train) + len(val) == 481 and 70 < len(val) < 120
