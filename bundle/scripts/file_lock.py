# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One advisory lock file, so that processes writing one folder (``torchrun`` ranks, say) take turns."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no advisory file locks; writers are then not serialised
    fcntl = None

__all__ = ["file_lock"]


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created when missing); yields whether a lock is held at all.

    The kernel drops the lock when its holder dies (SIGKILL included), so a killed process never blocks the next one.
    """
    if fcntl is None:  # pragma: no cover
        yield False
        return
    with Path(path).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
