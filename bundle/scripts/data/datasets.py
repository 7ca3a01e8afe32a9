# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Which dataset a workflow trains on, and its training and validation datalists.

With a ``dataset_dir`` the AASCE-layout folder is used as it is (and refused, naming the folder, when it is not one); with
none, the embedded synthetic phantom set is generated once under a cache folder and reused by every later run.

The cache survives a kill: the set is generated in a sibling folder ``<name>.partial-<pid>`` and renamed into place
only when complete, so ``<name>`` is either absent or complete. A partial folder left by a killed run is removed by the
next run (which logs it), and a set left incomplete by an older bundle version is generated again. Processes that
race for the cache (``torchrun`` ranks, which each resolve the config) take turns through a lock file beside it: the
first generates, the others find the finished set.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from scripts.data.aasce import DatasetError, kfold_split, load_datalist, split_paths
from scripts.data.phantoms import MANIFEST_NAME, complete_splits, make_phantoms, phantom_record
from scripts.file_lock import file_lock

__all__ = ["fold_datalists", "resolve_dataset_dir"]

logger = logging.getLogger(__name__)

_PARTIAL = ".partial-"  # <name>.partial-<pid>: a set being generated (or left by a killed run)
_STALE = ".stale-"  # <name>.stale-<pid>: a replaced set, about to be deleted


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
    return str(_cached_phantoms(root, num_phantoms, phantom_seed, split, phantom_scale))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_leftovers(root: Path) -> None:
    """Delete ``<name>.partial-*`` / ``<name>.stale-*`` folders: with the lock held no other process is writing them."""
    for pattern in (f"{root.name}{_PARTIAL}*", f"{root.name}{_STALE}*"):
        for leftover in sorted(root.parent.glob(pattern)):
            logger.warning("removing %s, left unfinished by an interrupted run", leftover)
            _remove(leftover)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # the files of a kept split are never rewritten, so sharing them is safe
    except OSError:
        shutil.copy2(source, target)


def _start_from_complete_splits(root: Path, partial: Path, split: str) -> None:
    """Seed ``partial`` with the other complete splits of ``root`` (linked, not copied), and only those."""
    kept = {name: record for name, record in complete_splits(root).items() if name != split}
    if any((root / part / split).exists() for part in ("data", "labels")):
        # left by a run killed before generation went through a partial folder (an older bundle version)
        logger.warning("%s holds an incomplete or outdated phantom set for split %s: generating it again", root, split)
    if not kept:
        return
    for name in kept:
        for part in ("data", "labels"):
            shutil.copytree(root / part / name, partial / part / name, copy_function=_link_or_copy)
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    manifest["splits"] = kept
    (partial / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _swap_into_place(partial: Path, root: Path) -> None:
    """Rename the finished ``partial`` to ``root``, moving an older ``root`` out of the way first."""
    stale = root.with_name(f"{root.name}{_STALE}{os.getpid()}")
    if root.exists() or root.is_symlink():
        os.replace(root, stale)  # a kill between these two renames leaves no root: the next run regenerates it
    os.replace(partial, root)
    _remove(stale)


def _cached_phantoms(root: Path, num: int, seed: int, split: str, size_scale: float) -> Path:
    """The phantom set ``root`` holding ``split``: reused when complete, else generated beside it and renamed in."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(root.parent / f".{root.name}.lock") as locked:
        if locked:  # without a lock another process may be writing its own partial folder right now
            _remove_leftovers(root)
        if complete_splits(root).get(split) == phantom_record(num, seed, size_scale):
            logger.info("phantoms already present in %s (split %s)", root, split)
            return root
        partial = root.with_name(f"{root.name}{_PARTIAL}{os.getpid()}")
        _remove(partial)
        try:
            partial.mkdir()
            _start_from_complete_splits(root, partial, split)
            make_phantoms(partial, num, seed=seed, split=split, size_scale=size_scale)
            _swap_into_place(partial, root)
        except BaseException:
            _remove(partial)  # Ctrl-C or an error: nothing is left behind (a SIGKILL is cleaned up by the next run)
            raise
    logger.info("phantom cache %s ready (split %s)", root, split)
    return root


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
