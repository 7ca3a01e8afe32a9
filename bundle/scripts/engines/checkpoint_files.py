# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Checkpoint files that survive a kill: damaged files are named, and files are replaced only when complete.

``torch.save`` writes a zip archive (stored, not compressed, with a CRC-32 per member). A file cut short by a kill, a
full disk or an interrupted copy loses the archive's end record, and ``torch.load`` then fails with miniz's "failed
finding central directory" and no file name; a flipped byte inside a tensor is not even noticed by ``torch.load``.
:func:`checkpoint_damage` tells both apart from an intact archive, :func:`load_checkpoint_file` turns a failed load of a
damaged file into a :class:`DamagedCheckpointError` that names it, and :func:`replace_atomically` /
:func:`copy_atomically` write a file beside its destination first and rename it into place, so a reader sees either the
old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DamagedCheckpointError",
    "checkpoint_damage",
    "copy_atomically",
    "damaged_error",
    "epoch_checkpoints",
    "load_checkpoint_file",
    "replace_atomically",
]

_ZIP_MAGIC = b"PK\x03\x04"
_EPOCH_FILE = re.compile(r"^checkpoint_epoch=(\d+)\.pt$")  # the name StageCheckpoint's saver gives each epoch
_DEFAULT_ADVICE = "it was cut short (a kill, a full disk, an interrupted copy) or corrupted; write it again"


class DamagedCheckpointError(ValueError):
    """A checkpoint file exists but cannot be read back: truncated or corrupted."""


def checkpoint_damage(path: str | Path) -> str | None:
    """Why ``path`` is not an intact ``torch.save`` archive, or None when it is.

    Every member's CRC-32 is checked, so this reads the whole file (about a second for 1 GB).

    Args:
        path: the checkpoint file.

    Returns:
        A short reason (``"truncated: ..."``, ``"corrupted: ..."``, ...), or None for an intact archive.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(len(_ZIP_MAGIC))
        if size == 0:
            return "empty: 0 bytes"
        if not zipfile.is_zipfile(path):
            if head == _ZIP_MAGIC:
                return f"truncated: the archive has no end record, {size} bytes"
            return f"not a PyTorch checkpoint archive, {size} bytes"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
        return f"unreadable archive: {error}"
    return f"corrupted: member {bad!r} fails its CRC check" if bad is not None else None


def damaged_error(path: str | Path, reason: str, advice: str = "") -> DamagedCheckpointError:
    """The error that names a damaged checkpoint, what is wrong with it and what to do."""
    return DamagedCheckpointError(f"{path} is damaged ({reason}): {advice or _DEFAULT_ADVICE}.")


def load_checkpoint_file(
    path: str | Path, map_location: Any = "cpu", weights_only: bool = True, advice: str = ""
) -> Any:
    """``torch.load`` that names the file when the load fails because the file is damaged.

    The archive is checked only after a failed load, so an intact file costs nothing extra; a load that fails for
    another reason (e.g. an object ``weights_only`` refuses) raises torch's own error unchanged.

    Args:
        path: the checkpoint file.
        map_location: as for ``torch.load``.
        weights_only: as for ``torch.load``.
        advice: what the user should do about a damaged file (ends the message).

    Returns:
        What ``torch.load`` returns.

    Raises:
        DamagedCheckpointError: ``"<path> is damaged (<reason>): <advice>."``
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as error:
        reason = checkpoint_damage(path)
        if reason is None:
            raise
        raise damaged_error(path, reason, advice) from error


@contextlib.contextmanager
def replace_atomically(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block completes it replaces ``path`` in one rename.

    The temporary file lives in the destination's folder because ``os.replace`` is atomic only within one file
    system; when the block raises (Ctrl-C included) the temporary file is removed and ``path`` is left as it was.
    A SIGKILL can leave a ``.<name>.*.tmp`` file behind, never a torn ``path``.

    Args:
        path: the destination file.

    Yields:
        The temporary path to write.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        # mkstemp creates the file readable by its owner only; give it the permissions a plain write would have
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_atomically(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` through a temporary file and a rename (see :func:`replace_atomically`).

    Returns:
        ``target`` as a Path.
    """
    with replace_atomically(target) as temporary:
        shutil.copyfile(source, temporary)
    return Path(target)


def epoch_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """The ``checkpoint_epoch=<n>.pt`` files of a stage folder as ``(n, path)``, newest epoch first."""
    found = [
        (int(m.group(1)), p) for p in Path(folder).glob("checkpoint_epoch=*.pt") if (m := _EPOCH_FILE.match(p.name))
    ]
    return sorted(found, reverse=True)
