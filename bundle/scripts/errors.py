# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""One line, not a traceback: how the bundle's commands end on an error the bundle itself explains.

The bundle refuses bad input with messages that name the file and what is wrong. Under ``python -m monai.bundle run``
such a message arrives wrapped in MONAI's "Failed to evaluate ..." errors and about fifty lines of traceback, which
hide it. :func:`install_excepthook` (the first step of every ``run``/``training``/``inference``/``evaluate`` list)
makes an uncaught error whose chain holds a refusal the bundle raised on purpose end the process with that message and
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


def _chain(error: BaseException) -> list[BaseException]:
    """``error``, its cause, the cause's cause, ... down to the root (each error once; ``raise ... from None`` ends it)."""
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        hidden = current.__suppress_context__ and current.__cause__ is None
        current = None if hidden else current.__cause__ or current.__context__
    return chain


def _raised_by_the_bundle(error: BaseException) -> bool:
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(_SCRIPTS)


def explained_error(error: BaseException) -> BaseException | None:
    """The outermost error of ``error``'s chain that the bundle raised on purpose, or None when there is none (a bug).

    Not the root: a refusal that names the file may wrap the library error it explains (a damaged checkpoint wraps
    torch's "failed reading zip archive"), and a refusal may wrap a narrower one of the bundle's to add advice; the
    outermost of the bundle's refusals (inside MONAI's "Failed to evaluate" wrappers) is the full message.
    """
    explained = [e for e in _chain(error) if isinstance(e, _REFUSALS) and _raised_by_the_bundle(e)]
    return explained[0] if explained else None


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
