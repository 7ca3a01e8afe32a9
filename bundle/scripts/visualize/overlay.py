# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A picture a radiologist can read at a glance: the radiograph, the spine mask, the CAM and the three angles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["render_overlay"]

_MASK_RGB = np.array([255.0, 64.0, 64.0])  # predicted spine: red tint
_LABEL_RGB = np.array([64, 255, 64], dtype=np.uint8)  # true spine outline: green


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def render_overlay(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    cam: np.ndarray | None = None,
    angles: Sequence[float] | None = None,
    true_mask: np.ndarray | None = None,
    true_angles: Sequence[float] | None = None,
    alpha: float = 0.35,
    verdict: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Blend a radiograph with its predicted mask, CAM and angles.

    Args:
        image: (H, W) grayscale in [0, 1] (any range is rescaled).
        mask: (H, W) predicted spine mask, tinted red.
        cam: (H, W) class activation map in [0, 1], added as a yellow heat layer.
        angles: the three predicted angles in degrees, written top left (font scaled to the image width).
        true_mask: (H, W) ground-truth mask, outlined in green.
        true_angles: the three true angles, written under the predicted ones.
        alpha: opacity of the mask tint and of the CAM.
        verdict: the quality verdict (:mod:`scripts.inference.quality`): ``review`` is written in red under the
            angles with its reasons, ``ok`` in green.

    Returns:
        (H, W, 3) uint8 RGB picture.
    """
    gray = np.asarray(image, dtype=np.float64)
    if gray.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {gray.shape}.")
    span = gray.max() - gray.min()
    gray = (gray - gray.min()) / span if span > 0 else np.zeros_like(gray)
    rgb = np.repeat(gray[..., None] * 255.0, 3, axis=2)
    if cam is not None:
        heat = np.clip(np.asarray(cam, dtype=np.float64), 0, 1)[..., None]
        rgb = rgb * (1 - alpha * heat) + alpha * heat * np.array([255.0, 220.0, 0.0])
    if mask is not None:
        spine = np.asarray(mask) > 0.5
        rgb[spine] = (1 - alpha) * rgb[spine] + alpha * _MASK_RGB
    picture = np.clip(rgb, 0, 255).astype(np.uint8)
    if true_mask is not None:
        picture[_outline(np.asarray(true_mask) > 0.5)] = _LABEL_RGB
    lines = []
    if angles is not None:
        lines.append("pred " + " / ".join(f"{a:.1f}" for a in angles))
    if true_angles is not None:
        lines.append("true " + " / ".join(f"{a:.1f}" for a in true_angles))
    colours = [(255, 255, 0)] * len(lines)
    if verdict is not None:
        checks = [reason["check"] for reason in verdict.get("reasons", [])]
        review = verdict.get("verdict") == "review"
        lines.append("REVIEW: " + ", ".join(checks) if review else "quality ok")
        colours.append((255, 64, 64) if review else (64, 255, 64))
    if lines:
        picture = _caption(picture, lines, colours)
    return picture


def _caption(
    picture: np.ndarray, lines: Sequence[str], colours: Sequence[tuple[int, int, int]] | None = None
) -> np.ndarray:
    """Write ``lines`` top left on black boxes (yellow unless ``colours`` says), font a 28th of the width."""
    size = max(10, round(picture.shape[1] / 28))
    font = ImageFont.load_default(size=size)
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    margin = max(2, size // 4)
    colours = colours or [(255, 255, 0)] * len(lines)
    for row, (text, colour) in enumerate(zip(lines, colours, strict=True)):
        xy = (margin * 2, margin * 2 + row * (size + margin * 2))
        left, top, right, bottom = draw.textbbox(xy, text, font=font)
        draw.rectangle((left - margin, top - margin, right + margin, bottom + margin), fill=(0, 0, 0))
        draw.text(xy, text, fill=colour, font=font)
    return np.asarray(canvas)
