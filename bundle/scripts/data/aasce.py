# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Reader for the AASCE 2019 ("boostnet_labeldata") layout, and patient-grouped k-fold splits.

Layout under a dataset root, for any split name::

    data/<split>/<name>.jpg
    labels/<split>/<name>.jpg.mat          variable p2: (68, 2) landmark pixels (x, y)
    labels/<split>/filenames.csv           one name a row, no header
    labels/<split>/landmarks.csv           136 values a row: 68 x / width, then 68 y / height
    labels/<split>/angles.csv              3 angles in degrees a row

``filenames.csv`` fixes the order. Landmarks come from the ``.mat`` file, or from ``landmarks.csv`` scaled by the image size when
the ``.mat`` is missing. Every problem found is reported with the file it concerns; :func:`load_datalist` refuses a split that
has any, :func:`scan_split` returns them so that ``scripts/check_dataset.py`` can list them all.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, UnidentifiedImageError

from scripts.data.cobb import NUM_LANDMARKS

__all__ = [
    "DatasetError",
    "LabelProblem",
    "kfold_split",
    "load_datalist",
    "patient_id",
    "scan_split",
    "split_paths",
]

# "sunhl-1th-03-Jan-2017-165 A AP.jpg" and "sunhl-1th-04-Jan-2017-165 B AP.jpg" are two visits of patient 165.
_PATIENT = re.compile(r"-(\d+)[\s_-]*[a-z]?[\s_-]*ap", re.IGNORECASE)


@dataclass(frozen=True)
class LabelProblem:
    """One problem found in a split: the file concerned and what is wrong with it."""

    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


class DatasetError(ValueError):
    """A dataset split that cannot be used as it is; the message names the files and what is wrong."""


def split_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    """The image and label folders of ``split`` under ``root``.

    Raises:
        DatasetError: when ``root`` or either folder does not exist.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} does not exist or is not a folder.")
    image_dir, label_dir = root / "data" / split, root / "labels" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise DatasetError(
                f"{folder} does not exist: expected the AASCE layout data/<split>/ and labels/<split>/ under {root}."
            )
    return image_dir, label_dir


def _read_rows(path: Path, problems: list[LabelProblem]) -> list[list[str]] | None:
    if not path.is_file():
        problems.append(LabelProblem(str(path), "missing"))
        return None
    with path.open(newline="") as handle:
        return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]


def _numeric_rows(
    path: Path, rows: list[list[str]] | None, width: int, problems: list[LabelProblem]
) -> list[np.ndarray | None]:
    parsed: list[np.ndarray | None] = []
    for number, row in enumerate(rows or [], start=1):
        try:
            values = np.array([float(cell) for cell in row], dtype=np.float64)
        except ValueError:
            problems.append(LabelProblem(str(path), f"row {number} is not numeric: {','.join(row)[:80]}"))
            parsed.append(None)
            continue
        if values.size != width:
            problems.append(LabelProblem(str(path), f"row {number} has {values.size} values, expected {width}"))
            parsed.append(None)
        elif not np.all(np.isfinite(values)):
            problems.append(LabelProblem(str(path), f"row {number} holds NaN or infinite values"))
            parsed.append(None)
        else:
            parsed.append(values)
    return parsed


def _image_size(path: Path, problems: list[LabelProblem]) -> tuple[int, int] | None:
    if not path.is_file():
        problems.append(LabelProblem(str(path), "image file is missing"))
        return None
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        problems.append(LabelProblem(str(path), f"unreadable image ({error})"))
        return None
    if width < 2 or height < 2:
        problems.append(LabelProblem(str(path), f"image is {width}x{height} pixels"))
        return None
    return height, width


def _mat_landmarks(path: Path, problems: list[LabelProblem]) -> np.ndarray | None:
    try:
        content = scipy.io.loadmat(path)
    except Exception as error:  # scipy raises several unrelated types on corrupt files
        problems.append(LabelProblem(str(path), f"unreadable .mat file ({type(error).__name__}: {error})"))
        return None
    if "p2" not in content:
        problems.append(
            LabelProblem(str(path), f"has no variable p2 (found {sorted(k for k in content if k[0] != '_')})")
        )
        return None
    points = np.asarray(content["p2"], dtype=np.float64)
    if points.shape != (NUM_LANDMARKS, 2):
        problems.append(LabelProblem(str(path), f"p2 has shape {points.shape}, expected ({NUM_LANDMARKS}, 2)"))
        return None
    if not np.all(np.isfinite(points)):
        problems.append(LabelProblem(str(path), "p2 holds NaN or infinite values"))
        return None
    return points


def scan_split(
    root: str | Path, split: str = "training", require_angles: bool = True
) -> tuple[list[dict], list[LabelProblem]]:
    """Read a split, collecting every record that could be read and every problem met on the way.

    Args:
        root: the dataset root (the folder holding ``data/`` and ``labels/``).
        split: the split folder name (``training``, ``test``, or any other in the same layout).
        require_angles: leave out a record whose ``angles.csv`` row is unusable; False keeps it with ``angles``
            None (for tools that compute the angles themselves; the row's problem is still reported).

    Returns:
        The records (see :func:`load_datalist`) and the problems, each naming its file.

    Raises:
        DatasetError: when the split's folders do not exist at all.
    """
    image_dir, label_dir = split_paths(root, split)
    problems: list[LabelProblem] = []
    name_rows = _read_rows(label_dir / "filenames.csv", problems)
    if name_rows is None:
        return [], problems
    names = [row[0].strip() for row in name_rows]
    landmark_file, angle_file = label_dir / "landmarks.csv", label_dir / "angles.csv"
    landmark_rows = _read_rows(landmark_file, problems)
    angle_rows = _read_rows(angle_file, problems)
    for path, rows in ((landmark_file, landmark_rows), (angle_file, angle_rows)):
        if rows is not None and len(rows) != len(names):
            problems.append(
                LabelProblem(str(path), f"has {len(rows)} rows but filenames.csv lists {len(names)} images")
            )
    landmarks_csv = _numeric_rows(landmark_file, landmark_rows, 2 * NUM_LANDMARKS, problems)
    angles_csv = _numeric_rows(angle_file, angle_rows, 3, problems)

    records = []
    for index, name in enumerate(names):
        image_path = image_dir / name
        size = _image_size(image_path, problems)
        angles = angles_csv[index] if index < len(angles_csv) else None
        mat_path = label_dir / f"{name}.mat"
        if mat_path.is_file():
            points = _mat_landmarks(mat_path, problems)
        elif index < len(landmarks_csv) and landmarks_csv[index] is not None and size is not None:
            row = landmarks_csv[index]
            points = np.stack([row[:NUM_LANDMARKS] * size[1], row[NUM_LANDMARKS:] * size[0]], axis=1)
        else:
            problems.append(LabelProblem(str(mat_path), "missing, and landmarks.csv gives no usable row for it"))
            points = None
        if size is None or points is None or (angles is None and require_angles):
            continue
        records.append(
            {
                "image": str(image_path),
                "name": name,
                "landmarks": points.astype(np.float32),
                "angles": None if angles is None else angles.astype(np.float32),
                "size": [size[0], size[1]],
            }
        )
    return records, problems


def load_datalist(root: str | Path, split: str = "training", require_angles: bool = True) -> list[dict]:
    """A MONAI datalist of one split, refusing a split with any problem.

    Args:
        root: the dataset root (the folder holding ``data/`` and ``labels/``).
        split: the split folder name.
        require_angles: False for a caller that does not read ``angles.csv`` (the Cobb rule computes them): its
            problems are not refused, and a record without a usable row has ``angles`` None.

    Returns:
        One dict per image in ``filenames.csv`` order: ``image`` (path), ``name``, ``landmarks`` (68, 2) float32 pixels (x, y),
        ``angles`` (3,) float32 degrees, ``size`` [H, W].

    Raises:
        DatasetError: naming every file with a problem (run ``scripts/check_dataset.py`` for the full label audit).
    """
    records, problems = scan_split(root, split, require_angles)
    if not require_angles:  # what angles.csv holds does not matter to the caller
        angle_file = str(split_paths(root, split)[1] / "angles.csv")
        problems = [problem for problem in problems if problem.file != angle_file]
    if problems:
        listed = "\n  ".join(str(problem) for problem in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DatasetError(f"split {split!r} of {root} has {len(problems)} problem(s):\n  {listed}{more}")
    if not records:
        raise DatasetError(f"split {split!r} of {root} holds no images (filenames.csv is empty).")
    return records


def patient_id(name: str) -> str:
    """The patient a file belongs to (visits A, B, ... of one patient share it); the name itself when no id is found."""
    match = _PATIENT.search(name)
    return match.group(1) if match else name


def kfold_split(
    datalist: Sequence[dict], num_folds: int = 5, fold: int = 0, seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """Deterministic k-fold split grouped by patient, so that no patient is on both sides.

    Args:
        datalist: records with a ``name`` key.
        num_folds: number of folds (at least 2).
        fold: which fold is held out for validation, ``0 <= fold < num_folds``.
        seed: shuffles the patients; the result depends only on the names, not on the input order.

    Returns:
        (train, validation) lists of the same records.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds must be at least 2, got {num_folds}.")
    if not 0 <= fold < num_folds:
        raise ValueError(f"fold must be in [0, {num_folds}), got {fold}.")
    groups = sorted({patient_id(record["name"]) for record in datalist})
    if len(groups) < num_folds:
        raise ValueError(f"{len(groups)} patients cannot be split into num_folds={num_folds} folds.")
    order = np.random.default_rng(seed).permutation(len(groups))
    held_out = {groups[i] for i in order[fold::num_folds]}
    ordered = sorted(datalist, key=lambda record: record["name"])
    train = [record for record in ordered if patient_id(record["name"]) not in held_out]
    val = [record for record in ordered if patient_id(record["name"]) in held_out]
    return train, val
