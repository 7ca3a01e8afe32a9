# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for the synthetic phantom generator: AASCE layout, label consistency, determinism, variety, refusal, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image, ImageDraw

from scripts.data.cobb import cobb_angles, cobb_details
from scripts.data.phantoms import MANIFEST_NAME, PHANTOM_KINDS, make_phantom, make_phantoms

REPO = Path(__file__).resolve().parents[2]
SMALL = 0.25
NUM = 40
SEED = 0
NAME = re.compile(r"^phantom-\d{4} [A-C] AP\.jpg$|^phantom-\d{4} [a-c] ap\.jpg$")


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantoms(tmp_path_factory.mktemp("phantoms") / "set", num=NUM, seed=SEED, size_scale=SMALL)


def _names(root: Path, split: str = "training") -> list[str]:
    return (root / "labels" / split / "filenames.csv").read_text().splitlines()


def _rows(path: Path) -> np.ndarray:
    # float() on every cell: a header or any non-numeric cell fails here.
    return np.array([[float(cell) for cell in line.split(",")] for line in path.read_text().splitlines()])


def _p2(root: Path, name: str) -> np.ndarray:
    return scipy.io.loadmat(root / "labels" / "training" / f"{name}.mat")["p2"]


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_layout_names_and_dtypes(phantom_root: Path) -> None:
    names = _names(phantom_root)
    assert len(names) == NUM
    assert all(NAME.match(name) for name in names), names
    assert len(set(names)) == NUM
    assert (phantom_root / "labels" / "training" / "filenames.csv").read_bytes().count(b"\r\n") == NUM
    assert sorted(path.name for path in (phantom_root / "data" / "training").iterdir()) == sorted(names)
    labels = phantom_root / "labels" / "training"
    assert sorted(path.name for path in labels.iterdir()) == sorted(
        [f"{name}.mat" for name in names] + ["angles.csv", "filenames.csv", "landmarks.csv"]
    )
    for name in names:
        with Image.open(phantom_root / "data" / "training" / name) as image:
            assert image.format == "JPEG" and image.mode == "L"
            width, height = image.size
        assert 900 * SMALL <= height <= 1600 * SMALL
        assert 1.5 <= height / width <= 3.2 + 1e-6
        variables = scipy.io.whosmat(labels / f"{name}.mat")
        assert [(variable[0], variable[1]) for variable in variables] == [("p2", (68, 2))]
        points = _p2(phantom_root, name)
        assert points.dtype == np.uint16 and points.shape == (68, 2)
        assert points[:, 0].max() < width and points[:, 1].max() < height
    assert _rows(labels / "landmarks.csv").shape == (NUM, 136)
    assert _rows(labels / "angles.csv").shape == (NUM, 3)


def test_landmarks_csv_matches_mat(phantom_root: Path) -> None:
    rows = _rows(phantom_root / "labels" / "training" / "landmarks.csv")
    for name, row in zip(_names(phantom_root), rows, strict=True):
        with Image.open(phantom_root / "data" / "training" / name) as image:
            width, height = image.size
        points = _p2(phantom_root, name).astype(np.float64)
        np.testing.assert_allclose(row[:68] * width, points[:, 0], atol=1e-3)
        np.testing.assert_allclose(row[68:] * height, points[:, 1], atol=1e-3)


def test_angles_follow_the_official_rule(phantom_root: Path) -> None:
    angles = _rows(phantom_root / "labels" / "training" / "angles.csv")
    for name, row in zip(_names(phantom_root), angles, strict=True):
        with Image.open(phantom_root / "data" / "training" / name) as image:
            height = image.size[1]
        np.testing.assert_allclose(row, cobb_angles(_p2(phantom_root, name), height), atol=0.01)


def test_vertebrae_are_ordered_and_fill_the_height(phantom_root: Path) -> None:
    for name in _names(phantom_root):
        with Image.open(phantom_root / "data" / "training" / name) as image:
            height = image.size[1]
        corners = _p2(phantom_root, name).astype(np.float64).reshape(17, 4, 2)
        assert np.all(corners[:, 1, 0] > corners[:, 0, 0]) and np.all(corners[:, 3, 0] > corners[:, 2, 0])
        assert np.all(corners[:, 2, 1] > corners[:, 0, 1]) and np.all(corners[:, 3, 1] > corners[:, 1, 1])
        assert np.all(np.diff(corners[:, :, 1].mean(axis=1)) > 0)
        widths = np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)
        heights = np.linalg.norm(corners[:, 2] - corners[:, 0], axis=1)
        assert widths[-3:].mean() > widths[:3].mean() and heights[-3:].mean() > heights[:3].mean()
        assert np.ptp(corners[:, :, 1]) > 0.75 * height


def test_angles_are_spread_with_s_curves(phantom_root: Path) -> None:
    angles = _rows(phantom_root / "labels" / "training" / "angles.csv")
    assert angles[:, 0].min() < 10 and angles[:, 0].max() > 30
    assert len(np.unique(np.minimum(angles[:, 0] // 15, 3))) >= 3  # at least three of 0-15, 15-30, 30-45, 45+
    assert np.all(angles[:, 0] < 90)
    s_shaped = 0
    for name, row in zip(_names(phantom_root), angles, strict=True):
        with Image.open(phantom_root / "data" / "training" / name) as image:
            height = image.size[1]
        s_shaped += cobb_details(_p2(phantom_root, name), height).s_curve and row[1] > 5 and row[2] > 5
    assert s_shaped >= 1


def test_spine_is_brighter_than_beside_it(phantom_root: Path) -> None:
    for name in _names(phantom_root):
        with Image.open(phantom_root / "data" / "training" / name) as image:
            pixels = np.asarray(image, dtype=np.float64)
        height, width = pixels.shape
        corners = _p2(phantom_root, name).astype(np.float64).reshape(17, 4, 2)
        drawn = Image.new("L", (width, height), 0)
        for quad in corners:
            ImageDraw.Draw(drawn).polygon([tuple(quad[i]) for i in (0, 1, 3, 2)], fill=1)
        mask = np.asarray(drawn).astype(bool)
        shift = round(1.5 * np.median(np.linalg.norm(corners[:, 1] - corners[:, 0], axis=1)))
        beside = np.zeros_like(mask)
        beside[:, shift:] |= mask[:, :-shift]
        beside[:, :-shift] |= mask[:, shift:]
        beside &= ~mask
        assert mask.sum() > 0.05 * mask.size and beside.sum() > 0.05 * mask.size
        assert pixels[mask].mean() > pixels[beside].mean() + 20, name


def test_same_seed_gives_identical_files_and_prefixes(phantom_root: Path, tmp_path: Path) -> None:
    first = _file_bytes(make_phantoms(tmp_path / "a", num=3, seed=SEED, size_scale=SMALL))
    second = _file_bytes(make_phantoms(tmp_path / "b", num=3, seed=SEED, size_scale=SMALL))
    assert first == second
    # Phantom i does not depend on num: these three are the first three of the 40-phantom set.
    names = _names(tmp_path / "a")
    assert names == _names(phantom_root)[:3]
    for name in names:
        assert (
            first[f"labels/training/{name}.mat"] == (phantom_root / "labels" / "training" / f"{name}.mat").read_bytes()
        )
    other = make_phantoms(tmp_path / "c", num=3, seed=SEED + 1, size_scale=SMALL)
    assert (other / "labels/training/landmarks.csv").read_bytes() != first["labels/training/landmarks.csv"]
    test_split = make_phantoms(tmp_path / "d", num=3, seed=SEED, split="test", size_scale=SMALL)
    assert (test_split / "labels/test/landmarks.csv").read_bytes() != first["labels/training/landmarks.csv"]


def test_make_phantom_default_size_and_kinds() -> None:
    phantom = make_phantom(np.random.default_rng(5))
    height, width = phantom.image.shape
    assert phantom.image.dtype == np.uint8 and phantom.landmarks.dtype == np.uint16
    assert 900 <= height <= 1600 and 1.5 <= height / width <= 3.2 + 1e-6
    assert phantom.kind in PHANTOM_KINDS
    np.testing.assert_allclose(phantom.angles, cobb_angles(phantom.landmarks, height), atol=1e-9)
    straight = [make_phantom(np.random.default_rng(i), SMALL, kind="straight").angles[0] for i in range(6)]
    double = [make_phantom(np.random.default_rng(i), SMALL, kind="double").angles[0] for i in range(6)]
    assert max(straight) < 20 and min(double) > 15
    with pytest.raises(ValueError, match="kind"):
        make_phantom(np.random.default_rng(0), kind="zigzag")


def test_rerun_with_same_arguments_changes_nothing(phantom_root: Path) -> None:
    before = {path: path.stat().st_mtime_ns for path in phantom_root.rglob("*") if path.is_file()}
    assert make_phantoms(phantom_root, num=NUM, seed=SEED, size_scale=SMALL) == phantom_root
    assert {path: path.stat().st_mtime_ns for path in phantom_root.rglob("*") if path.is_file()} == before


def test_refuses_to_overwrite_a_different_dataset(phantom_root: Path, tmp_path: Path) -> None:
    before = _file_bytes(phantom_root)
    for changed in ({"seed": SEED + 1}, {"num": NUM - 1}, {"size_scale": 0.3}):
        arguments = {"num": NUM, "seed": SEED, "size_scale": SMALL} | changed
        with pytest.raises(ValueError, match=re.escape(str(phantom_root))):
            make_phantoms(phantom_root, **arguments)
    assert _file_bytes(phantom_root) == before

    foreign = tmp_path / "aasce"
    (foreign / "data" / "training").mkdir(parents=True)
    (foreign / "data" / "training" / "someone 1 A AP.jpg").write_bytes(b"not ours")
    with pytest.raises(ValueError, match=re.escape(str(foreign))):
        make_phantoms(foreign, num=2, size_scale=SMALL, split="test")
    assert sorted(str(path.relative_to(foreign)) for path in foreign.rglob("*")) == [
        "data",
        "data/training",
        "data/training/someone 1 A AP.jpg",
    ]

    # An unfinished split (files but no manifest entry) is not overwritten either.
    partial = make_phantoms(tmp_path / "partial", num=1, size_scale=SMALL)
    (partial / "labels" / "test").mkdir(parents=True)
    (partial / "labels" / "test" / "filenames.csv").write_text("x.jpg\r\n")
    with pytest.raises(ValueError, match="labels"):
        make_phantoms(partial, num=1, size_scale=SMALL, split="test")


def test_another_split_is_added_beside(tmp_path: Path) -> None:
    root = make_phantoms(tmp_path / "set", num=2, seed=1, size_scale=SMALL)
    training = _file_bytes(root / "labels" / "training")
    make_phantoms(root, num=3, seed=1, split="test", size_scale=SMALL)
    assert _file_bytes(root / "labels" / "training") == training
    assert len(_names(root, "test")) == 3
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    assert manifest["splits"]["training"]["num"] == 2 and manifest["splits"]["test"]["num"] == 3


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"num": 0}, ValueError),
        ({"num": 2.5}, TypeError),
        ({"seed": -1}, ValueError),
        ({"split": "../escape"}, ValueError),
        ({"split": ""}, ValueError),
        ({"size_scale": 0.0}, ValueError),
    ],
)
def test_rejects_bad_arguments(tmp_path: Path, arguments: dict, error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(arguments))):
        make_phantoms(tmp_path / "set", **({"num": 1, "size_scale": SMALL} | arguments))
    assert not (tmp_path / "set").exists()


def test_command_line(tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "scripts" / "make_phantoms.py"), str(tmp_path / "cli"), "--num", "2"]
    done = subprocess.run(
        [*command, "--seed", "1", "--small"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1 and "2 phantoms" in done.stdout
    expected = make_phantoms(tmp_path / "api", num=2, seed=1, size_scale=SMALL)
    for file in ("filenames.csv", "landmarks.csv", "angles.csv"):
        assert (tmp_path / "cli/labels/training" / file).read_bytes() == (
            expected / "labels/training" / file
        ).read_bytes()
    refused = subprocess.run(
        [*command, "--seed", "2", "--small"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert refused.returncode == 1 and str(tmp_path / "cli") in refused.stderr


def test_concurrent_writers_share_one_set(tmp_path: Path) -> None:
    # As distributed ranks generating the default dataset at once: one writes, the others wait and find it finished.
    command = [
        sys.executable,
        str(REPO / "scripts" / "make_phantoms.py"),
        str(tmp_path / "set"),
        "--num",
        "6",
        "--small",
    ]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [error for _, error in outputs]
    assert len(_names(tmp_path / "set")) == 6


def test_aasce_reader_reads_phantoms(phantom_root: Path) -> None:
    aasce = pytest.importorskip("scripts.data.aasce")
    records = aasce.load_datalist(phantom_root, "training")
    names = _names(phantom_root)
    assert [record["name"] for record in records] == names
    angles = _rows(phantom_root / "labels" / "training" / "angles.csv")
    for record, name, row in zip(records, names, angles, strict=True):
        np.testing.assert_array_equal(record["landmarks"], _p2(phantom_root, name).astype(np.float32))
        np.testing.assert_allclose(record["angles"], row, atol=1e-4)
        with Image.open(record["image"]) as image:
            assert record["size"] == [image.size[1], image.size[0]]
    train, val = aasce.kfold_split(records, num_folds=5, fold=0)
    assert len(train) + len(val) == NUM and len(val) > 0
