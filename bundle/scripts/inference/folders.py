# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The radiographs of a folder, as inference reads them: which files are images, their order and their output stems.

Shared by the bundle's inference workflow (``configs/inference.yaml``'s ``dataset``) and the fast single-image path
(:mod:`scripts.inference.fast`); pathlib only.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from scripts.data.decode import DICOM_SUFFIXES, is_dicom
from scripts.flags import as_flag

__all__ = ["IMAGE_SUFFIXES", "list_images"]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", *DICOM_SUFFIXES)
"""File suffixes taken as images (any case); files without a suffix are taken when they are DICOM."""


def _walk(root: Path, recursive: bool, exclude: Path | None) -> tuple[list[Path], list[str], list[str]]:
    """Image files under ``root`` (sorted, depth first), other files and skipped subfolders (relative names)."""
    images: list[Path] = []
    others: list[str] = []
    subfolders: list[str] = []
    seen: set[Path] = set()

    def visit(folder: Path) -> None:
        seen.add(folder.resolve())
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):  # hidden files and folders (.git, .DS_Store, a writer's temporary file)
                continue
            if path.is_dir():
                real = path.resolve()
                if not recursive or real in seen or real == exclude:
                    subfolders.append(path.relative_to(root).as_posix())
                else:
                    visit(path)
                continue
            suffix = path.suffix.lower()
            if path.is_file() and (suffix in IMAGE_SUFFIXES or (not suffix and is_dicom(path))):
                images.append(path)
            elif path.is_file():
                others.append(path.relative_to(root).as_posix())

    visit(root)
    return images, others, subfolders


def list_images(
    folder: str | Path | None, recursive: bool | str = True, exclude: str | Path | None = None
) -> list[dict[str, str]]:
    """The image files of a folder and, when ``recursive``, of its subfolders, as records for the bundle's ``dataset``.

    Files are sorted by name within each folder, a folder's subfolders walked where they fall in that order; hidden
    files and folders (a name starting with ``.``) are skipped silently, files with other suffixes (notes, csv) with
    one log line. ``name`` is the path relative to ``folder`` (``a.png``, ``left/a.png``) and ``stem`` the output
    stem, that path without its suffix (``left/a``): the outputs mirror the subfolders under ``output_dir``, so two
    ``a.png`` in different subfolders never collide. Two files of one folder with one stem (``a.jpg`` and ``a.png``)
    would write the same outputs: such files keep their whole name in the stem (``left/a.jpg``).

    Args:
        folder: the folder, or empty / None (then no records: the workflow asks for ``--dataset_dir`` when it runs).
        recursive: walk the subfolders (strict flag); when false, the skipped subfolders are named in one log line.
        exclude: a folder never walked (the run's ``output_dir`` when it lies inside ``folder``: its pngs are outputs,
            not radiographs); it is named with the skipped subfolders.

    Returns:
        ``[{"image": path, "name": relative path, "stem": output stem}, ...]``.

    Raises:
        FileNotFoundError: when ``folder`` is given but is not a folder.
        ValueError: on a ``recursive`` that is not true/false.
    """
    recursive = as_flag(recursive, "recursive")
    if not folder:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset_dir {root} does not exist or is not a folder.")
    excluded = Path(exclude).expanduser().resolve() if exclude else None
    images, others, subfolders = _walk(root, recursive, excluded)
    if others:
        logger.info("%s: skipped %d file(s) that are not images by suffix: %s", root, len(others), ", ".join(others))
    if subfolders:
        why = "recursive is false" if not recursive else "the output folder, or a link to a folder already walked"
        logger.info("%s: skipped %d subfolder(s) (%s): %s", root, len(subfolders), why, ", ".join(subfolders))
    stems = Counter((path.parent, path.stem) for path in images)
    records = []
    for path in images:
        relative = path.relative_to(root)
        stem = relative.with_suffix("") if stems[(path.parent, path.stem)] == 1 else relative
        records.append({"image": str(path), "name": relative.as_posix(), "stem": stem.as_posix()})
    return records
