# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A picture a radiologist can read at a glance: the radiograph, the spine mask, the CAM and the three angles, and,
from a vertebra-level N_S, the Cobb lines as drawn on the film: for each curve the upper endplate of its upper end
vertebra and the lower endplate of its lower end vertebra, extended to both sides, with the vertebrae's names and the
angle between the two lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CURVE_COLOURS", "cobb_lines", "render_overlay"]

_MASK_RGB = np.array([255.0, 64.0, 64.0])  # predicted spine: red tint
_LABEL_RGB = np.array([64, 255, 64], dtype=np.uint8)  # true spine outline: green
CURVE_COLOURS: tuple[tuple[int, int, int], ...] = ((0, 255, 255), (255, 0, 255), (255, 160, 0))  # angle1, 2, 3
_LINE_EXTENSION = 0.6  # each Cobb line reaches this many vertebra widths beyond the vertebra on both sides


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
    geometry: Mapping[str, Any] | None = None,
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
        verdict: the quality verdict (:mod:`scripts.inference.verdict`): ``review`` is written in red under the
            angles with its reasons, ``ok`` in green.

    Returns:
        (H, W, 3) uint8 RGB picture.
    """
    gray = np.asarray(image, dtype=np.float32)  # float32 throughout: a full-size radiograph is millions of pixels
    if gray.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {gray.shape}.")
    low, span = gray.min(), gray.max() - gray.min()
    gray = (gray - low) * np.float32(255.0 / span) if span > 0 else np.zeros_like(gray)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    if cam is not None:
        heat = np.clip(np.asarray(cam, dtype=np.float32), 0, 1)[..., None] * np.float32(alpha)
        rgb = rgb * (1 - heat) + heat * np.array([255.0, 220.0, 0.0], dtype=np.float32)
    if mask is not None:
        spine = np.asarray(mask) > 0.5
        rgb[spine] = (1 - alpha) * rgb[spine] + alpha * _MASK_RGB.astype(np.float32)
    picture = np.clip(rgb, 0, 255).astype(np.uint8)
    if true_mask is not None:
        picture[_outline(np.asarray(true_mask) > 0.5)] = _LABEL_RGB
    if geometry is not None:
        picture = _draw_cobb_lines(picture, geometry)
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


def cobb_lines(geometry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The two Cobb lines of each measured curve, as a reader draws them on the film.

    Args:
        geometry: ``curves`` (``angle_deg``, ``upper_end``, ``lower_end``) and ``vertebrae`` (``name``, ``corners``
            TL, TR, BL, BR) of :mod:`scripts.inference.geometry`.

    Returns:
        Per curve (in angle order): ``angle_deg``, ``upper`` and ``lower`` (``{"name", "start", "end"}``: the upper
        endplate TL-TR of the upper end vertebra and the lower endplate BL-BR of the lower one, each extended by
        :data:`_LINE_EXTENSION` of its length beyond both corners). Empty when the geometry has no curves.
    """
    corners = {v["name"]: np.asarray(v["corners"], dtype=np.float64) for v in geometry.get("vertebrae") or []}

    def line(name: str, first: int, second: int) -> dict[str, Any]:
        start, end = corners[name][first], corners[name][second]
        reach = _LINE_EXTENSION * (end - start)
        return {"name": name, "start": start - reach, "end": end + reach}

    return [
        {
            "angle_deg": float(curve["angle_deg"]),
            "upper": line(curve["upper_end"], 0, 1),
            "lower": line(curve["lower_end"], 2, 3),
        }
        for curve in geometry.get("curves") or []
        if curve["upper_end"] in corners and curve["lower_end"] in corners
    ]


def _draw_cobb_lines(picture: np.ndarray, geometry: Mapping[str, Any]) -> np.ndarray:
    """Draw :func:`cobb_lines` with the vertebra names at their right ends and the angle between them."""
    curves = cobb_lines(geometry)
    if not curves:
        return picture
    width = max(1, round(picture.shape[1] / 300))
    size = max(10, round(picture.shape[1] / 40))
    font = ImageFont.load_default(size=size)
    canvas = Image.fromarray(picture)
    draw = ImageDraw.Draw(canvas)
    for index, curve in enumerate(curves):
        colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]
        for side in ("upper", "lower"):
            line = curve[side]
            draw.line([tuple(line["start"]), tuple(line["end"])], fill=colour, width=width)
            x, y = line["end"]
            draw.text((x + 2 * width, y - size / 2), line["name"], fill=colour, font=font)
        # the angle beside the curve, left of the midpoint of the two lines' left ends, one row per curve
        x = 0.5 * (curve["upper"]["start"][0] + curve["lower"]["start"][0])
        y = 0.5 * (curve["upper"]["start"][1] + curve["lower"]["start"][1]) + index * (size + 2)
        text = f"{curve['angle_deg']:.1f}\N{DEGREE SIGN}"
        left = max(0.0, x - draw.textlength(text, font=font) - 2 * width)
        draw.text((left, y), text, fill=colour, font=font)
    return np.asarray(canvas)


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
