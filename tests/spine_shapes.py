# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Procedural spines for tests that need landmarks without data (``pythonpath`` puts this folder on ``sys.path``)."""

from __future__ import annotations

import numpy as np

__all__ = ["sine_spine"]


def sine_spine(height: float, width: float, amplitude: float, phase: float, cycles: float = 1.0) -> np.ndarray:
    """(68, 2) landmarks of 17 rectangles centred on x = W/2 + A sin(2 pi cycles y / H + phase), tilted along it."""
    y = np.linspace(0.12, 0.9, 17) * height
    k = 2 * np.pi * cycles / height
    centre = np.stack([width / 2 + amplitude * np.sin(k * y + phase), y], axis=1)
    down = np.stack([amplitude * k * np.cos(k * y + phase), np.ones(17)], axis=1)
    down /= np.linalg.norm(down, axis=1, keepdims=True)
    right = np.stack([down[:, 1], -down[:, 0]], axis=1)
    half_width, half_height = 0.09 * width, 0.35 * (y[1] - y[0])
    corners = [(-1, -1), (-1, 1), (1, -1), (1, 1)]  # (vertical, horizontal) signs of TL, TR, BL, BR
    return np.array(
        [centre[v] + h * half_width * right[v] + s * half_height * down[v] for v in range(17) for s, h in corners]
    )
