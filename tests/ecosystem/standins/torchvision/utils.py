# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Stand-in for ``torchvision.utils``: monailabel imports ``make_grid`` and ``save_image``; neither may be called."""

from __future__ import annotations

__all__ = ["make_grid", "save_image"]


def make_grid(*args: object, **kwargs: object) -> None:
    """Refuse: the real torchvision is absent (its wheel for torch 2.13 is a CUDA build; docs/monai_label.md)."""
    raise RuntimeError("torchvision.utils.make_grid is a stand-in (tests/ecosystem/standins): torchvision is absent")


def save_image(*args: object, **kwargs: object) -> None:
    """Refuse: the real torchvision is absent (its wheel for torch 2.13 is a CUDA build; docs/monai_label.md)."""
    raise RuntimeError("torchvision.utils.save_image is a stand-in (tests/ecosystem/standins): torchvision is absent")
