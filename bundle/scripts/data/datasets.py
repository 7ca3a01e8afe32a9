# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Which dataset a workflow trains on, and its training and validation datalists.

With a ``dataset_dir`` the AASCE-layout folder is used as it is (and refused, naming the folder, when it is not one); with
none, the embedded synthetic phantom set is generated once under a cache folder and reused by every later run.
"""

from __future__ import annotations

from pathlib import Path

from scripts.data.aasce import DatasetError, kfold_split, load_datalist, split_paths
from scripts.data.phantoms import make_phantoms

__all__ = ["fold_datalists", "resolve_dataset_dir"]


def resolve_dataset_dir(
    dataset_dir: str | Path | None,
    cache_dir: str | Path,
    split: str = "training",
    num_phantoms: int = 120,
    phantom_seed: int = 0,
    phantom_scale: float = 0.5,
) -> str:
    """The dataset root a workflow reads.

    Args:
        dataset_dir: an AASCE-layout root (``boostnet_labeldata``), or empty / None for the embedded phantoms.
        cache_dir: where the phantoms are generated (once; later runs find them there).
        split: the split that must exist under the root.
        num_phantoms: how many phantoms to generate.
        phantom_seed: their seed.
        phantom_scale: their size relative to AASCE-like radiographs (heights 900-1600 pixels at 1.0).

    Returns:
        The root as a string.

    Raises:
        DatasetError: when ``dataset_dir`` is given but is not an AASCE-layout folder holding ``split``.
    """
    if dataset_dir:
        image_dir, _ = split_paths(dataset_dir, split)
        if not any(image_dir.iterdir()):
            raise DatasetError(f"{image_dir} holds no images.")
        return str(Path(dataset_dir).expanduser())
    root = Path(cache_dir).expanduser() / f"phantoms-n{num_phantoms}-s{phantom_seed}-x{phantom_scale:g}"
    return str(make_phantoms(root, num_phantoms, seed=phantom_seed, split=split, size_scale=phantom_scale))


def fold_datalists(
    dataset_dir: str | Path,
    split: str = "training",
    num_folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    inner_val_folds: int = 0,
) -> dict[str, list[dict]]:
    """The training and validation datalists of one patient-grouped fold of a split.

    Args:
        dataset_dir: the AASCE-layout root.
        split: the split folder.
        num_folds: patient-grouped folds of the split.
        fold: the held-out fold.
        seed: shuffles the patients into folds.
        inner_val_folds: 0: validate (choose epochs) on the held-out fold itself. N >= 2: the held-out fold is left
            out of training entirely (``"test"``), and validation is one of N patient-grouped parts of the remaining
            patients, so a score on the held-out fold was never used to choose anything (cross-validation).

    Returns:
        ``{"train": [...], "val": [...]}`` and, with ``inner_val_folds``, ``"test"`` (the held-out fold); records as
        :func:`scripts.data.aasce.load_datalist` gives them.

    Raises:
        ValueError: on bad fold numbers, or too few patients for the folds asked for (the message says how many).
    """
    train, held_out = kfold_split(load_datalist(dataset_dir, split), num_folds=num_folds, fold=fold, seed=seed)
    if not inner_val_folds:
        return {"train": train, "val": held_out}
    inner_train, inner_val = kfold_split(train, num_folds=inner_val_folds, fold=0, seed=seed + 1)
    return {"train": inner_train, "val": inner_val, "test": held_out}
