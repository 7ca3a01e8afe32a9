# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Command-line switches arrive as text (``--overwrite false``); read them strictly, never by Python truthiness."""

from __future__ import annotations

__all__ = ["as_flag"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def as_flag(value: object, name: str = "flag") -> bool:
    """``value`` as a bool: a bool, 0 / 1, or one of true/false, yes/no, on/off (any case).

    Raises:
        ValueError: naming ``name`` and the value, for anything else (``"flase"`` must not mean True).
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be true or false, got {value!r}.")
