# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The reduction argument shared by the project's metrics."""

from __future__ import annotations

from monai.utils import MetricReduction

__all__ = ["check_reduction"]


def check_reduction(reduction: MetricReduction | str) -> MetricReduction:
    """``reduction`` as a :class:`MetricReduction`, or a ValueError naming the argument."""
    try:
        return MetricReduction(reduction)
    except ValueError:
        options = [mode.value for mode in MetricReduction]
        raise ValueError(f"reduction must be one of {options}, got {reduction!r}.") from None
