# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One line, not a traceback: how the bundle's commands end on an error the bundle itself explains.

The bundle refuses bad input with messages that name the file and what is wrong. Under ``python -m monai.bundle run``
such a message arrives wrapped in MONAI's "Failed to evaluate ..." errors and about fifty lines of traceback, which
hide it. :func:`install_excepthook` (the first step of every ``run``/``training``/``inference``/``evaluate`` list)
makes an uncaught error whose root cause the bundle raised on purpose end the process with that message alone and
exit status 1. Any other error (a bug, an error inside a library) keeps Python's full traceback, and so does every
error when ``SEG4REG_DEBUG`` is set to a non-empty value other than ``0``.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

__all__ = ["DEBUG_VARIABLE", "explained_error", "install_excepthook"]

DEBUG_VARIABLE = "SEG4REG_DEBUG"
_SCRIPTS = Path(__file__).resolve().parent
# what the bundle raises to refuse input; a bug shows up as something else (AttributeError, KeyError, ...)
_REFUSALS = (ValueError, OSError, RuntimeError)


def _root_cause(error: BaseException) -> BaseException:
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        nxt = error.__cause__ or error.__context__
        if nxt is None:
            break
        error = nxt
    return error


def _raised_by_the_bundle(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(_SCRIPTS)


def explained_error(error: BaseException) -> BaseException | None:
    """The error the bundle raised on purpose at the root of ``error``, or None when there is none (a bug, say)."""
    root = _root_cause(error)
    if isinstance(root, _REFUSALS) and _raised_by_the_bundle(root):
        return root
    return None


def _debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def _hook(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    explained = None if _debugging() else explained_error(error)
    if explained is None:
        sys.__excepthook__(kind, error, tb)
        return
    print(f"ERROR: {explained} (set {DEBUG_VARIABLE}=1 for the traceback)", file=sys.stderr, flush=True)


def install_excepthook() -> None:
    """Make an uncaught, explained error end the process with its message alone (see the module docstring)."""
    sys.excepthook = _hook
