# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Synthetic AP spine radiographs ("phantoms") written in the AASCE 2019 layout, with exactly consistent labels.

The bundle's embedded default dataset and the tests' data. :func:`make_phantoms` writes, under a root::

    data/<split>/<name>.jpg            8-bit grayscale JPEG, e.g. "phantom-0007 A AP.jpg"
    labels/<split>/<name>.jpg.mat      variable p2: (68, 2) uint16 corner pixels (x, y)
    labels/<split>/filenames.csv       one name a row (CRLF line ends, as in the released file), no header
    labels/<split>/landmarks.csv       136 values a row: the 68 x / width, then the 68 y / height
    labels/<split>/angles.csv          3 angles in degrees, from :func:`scripts.data.cobb.cobb_angles`
    phantoms.json                      what was generated (num, seed, size_scale, version per split)

Generative model of one phantom (every draw comes from a generator seeded by ``(seed, split, index)``, so phantom ``i`` is
the same whatever ``num`` is):

1. **Canvas.** Height ``H ~ U(900, 1600) * size_scale`` pixels, aspect ``H / W ~ U(2.2, 3.2)``; ``W`` grows (the aspect
   drops) only when a strongly curved spine would not fit inside 6% side margins.
2. **Centre line.** A curve parameterised by arc length ``s`` in [0, 1] (top of T1 to bottom of L5) whose tangent angle
   ``theta(s)`` (0 = vertical) is a sum of smooth steps, one per curve: over a curve from end vertebra ``a`` to end vertebra
   ``b`` the tangent turns by that curve's Cobb angle along a half cosine, so curvature peaks at the apex and the end
   vertebrae are the most tilted. Curve kinds: ``straight`` (no curve), ``C`` (one curve, 10-60 degrees, thoracic,
   thoracolumbar, lumbar or long), ``S`` (a major curve of 15-60 degrees and an opposite compensatory curve of 40-90% of
   it) and ``double`` (two opposite major curves of 20-60 degrees within 80% of each other). Above the first curve and below
   the last, where three or more vertebrae are left, an opposite compensatory bend of 15-50% of it is added with
   probability 0.7 each. A slow wobble of a few degrees is added, then the whole line is rotated so that its ends are balanced
   over each other up to a random lean (N(0, 2) degrees); a rotation leaves every Cobb angle unchanged.
3. **Vertebrae.** Seventeen bodies T1..L5 along the line with discs between them. Body heights grow from T1 to L5 by a
   factor 1.5-2.0, widths by 1.25-1.6 (T1 is 2.2-2.8 times as wide as tall); discs are 18-30% of the body above them,
   thicker in the lumbar spine. Each endplate is a segment of the body's width centred on the line and perpendicular to the
   local tangent (so bodies wedge where the spine bends), tilted further by a per-vertebra jitter (0.5-2 degrees) and a
   smaller per-endplate one, and every corner is jittered by 1-3.5% of the body height.
4. **Placement.** The labelled spine (corners included) spans from ``U(0.005, 0.07) H`` to ``U(0.87, 0.975) H``, its
   horizontal centre at ``U(0.42, 0.58) W``. The 68 corners are rounded to uint16 pixels and the three angles are computed
   from these rounded labels and ``H`` by the official rule, so ``angles.csv`` agrees with the ``.mat`` files exactly.
5. **Rendering** (additive layers, as attenuation adds up in a radiograph): a soft-tissue background (dark lung fields above
   a diaphragm step, brighter abdomen, a bright band along the spine, darker lateral edges, slow mottle), a heart shadow and
   dark abdominal gas bubbles, rib arcs from each thoracic vertebra on both sides (posterior arcs turning into fainter
   anterior ones), iliac wings with bright crests beside and below L5, a sacrum below L5 and two or three unlabelled cervical
   vertebrae above T1, the intervertebral discs as dimmer quadrilaterals, and the vertebral bodies as bright filled
   quadrilaterals with a brighter cortical rim, ring-shaped pedicles and a spinous process, blurred to soft edges. Then a
   random window (gain, offset, gamma), occasional bright burnt-in text-like marks, a Gaussian blur, Gaussian noise, and JPEG
   compression at a random quality.

Drawing is done by PIL (ImageDraw, ImageFilter), arithmetic by numpy and scipy.ndimage; 200 phantoms at the default size take
about 15 seconds on one core (34 MB), at ``size_scale=0.25`` about 2 seconds.

Measured on 200 phantoms: the largest angle spans 3-61 degrees (median 33; the AASCE training labels: 37), about two thirds
pass the rule's S-curve test, and the second and third angles are smaller than in AASCE (medians 10 and 7, against 19 and
16), since real spines bend in more places than this model.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from scripts.data.cobb import NUM_LANDMARKS, NUM_VERTEBRAE, cobb_angles
from scripts.file_lock import file_lock

__all__ = [
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "PHANTOM_KINDS",
    "Phantom",
    "complete_splits",
    "make_phantom",
    "make_phantoms",
    "phantom_record",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
MANIFEST_NAME = "phantoms.json"
PHANTOM_KINDS = ("straight", "C", "S", "double")

_KIND_PROBABILITIES = (0.2, 0.35, 0.3, 0.15)
_HEIGHT_RANGE = (900.0, 1600.0)
_ASPECT_RANGE = (2.2, 3.2)
_SIDE_MARGIN = 0.06
_SIZE_SCALE_RANGE = (0.1, 4.0)
_CURVE_SAMPLES = 400
_NUM_THORACIC = 12
_LOCK_NAME = ".phantoms.lock"
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# scipy stamps the creation time into the 116-byte MAT header text; a fixed text keeps the files byte-identical by seed.
_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: scripts.data.phantoms".ljust(116, b" ")


@dataclass(frozen=True)
class Phantom:
    """One synthetic radiograph and its labels.

    Attributes:
        image: (H, W) uint8 grayscale image.
        landmarks: (68, 2) uint16 corner pixels (x, y), T1..L5, corners TL, TR, BL, BR.
        angles: (3,) official Cobb angles in degrees of ``landmarks`` (column 0 the largest).
        kind: the curve kind drawn, one of :data:`PHANTOM_KINDS`.
    """

    image: np.ndarray
    landmarks: np.ndarray
    angles: np.ndarray
    kind: str


@dataclass(frozen=True)
class _Geometry:
    """The spine in image pixels: (17, 4, 2) corners (TL, TR, BL, BR), (N, 2) centre line, (17,) body sizes."""

    corners: np.ndarray
    centre: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    height: int
    width: int


def _smooth_step(u: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def _sample_curves(rng: np.random.Generator, kind: str) -> list[tuple[float, float, float]]:
    """Curves as (start, end, signed Cobb angle in degrees); positions in vertebra units (0 = top of T1, 17 = bottom of L5)."""
    sign = float(rng.choice((-1.0, 1.0)))
    if kind == "straight":
        return []
    if kind == "C":
        regions = (
            ((2.0, 5.0), (10.0, 13.0)),
            ((5.0, 8.0), (13.0, 16.0)),
            ((9.0, 12.0), (15.5, 17.0)),
            ((0.5, 4.0), (13.0, 17.0)),
        )
        start, end = (rng.uniform(*bounds) for bounds in regions[rng.integers(len(regions))])
        return _compensate(rng, [(start, end, sign * rng.uniform(10.0, 60.0))])
    if kind == "S":
        major = rng.uniform(15.0, 60.0)
        minor = major * rng.uniform(0.4, 0.9)
        upper, lower = (major, minor) if rng.random() < 0.5 else (minor, major)
        middle = rng.uniform(8.5, 12.0)
        return _compensate(
            rng, [(rng.uniform(1.0, 5.0), middle, sign * upper), (middle, rng.uniform(13.5, 17.0), -sign * lower)]
        )
    # double major, often under a small proximal thoracic curve
    first = rng.uniform(20.0, 60.0)
    second = first * rng.uniform(0.8, 1.0)
    top, middle = rng.uniform(3.5, 6.0), rng.uniform(9.0, 12.0)
    curves = [(top, middle, sign * first), (middle, rng.uniform(14.0, 17.0), -sign * second)]
    return _compensate(rng, curves)


def _compensate(rng: np.random.Generator, curves: list[tuple[float, float, float]]) -> list[tuple[float, float, float]]:
    """Add, each with probability 0.7, an opposite bend of 15-50% above the first curve and below the last where there is room."""
    start, _, first = curves[0]
    _, end, last = curves[-1]
    if start > 2.0 and rng.random() < 0.7:
        curves.insert(0, (rng.uniform(0.0, start - 1.5), start, -first * rng.uniform(0.15, 0.5)))
    if end < 15.5 and rng.random() < 0.7:
        curves.append((end, rng.uniform(end + 1.5, 17.0), -last * rng.uniform(0.15, 0.5)))
    return curves


def _integrate(theta: np.ndarray, step: float) -> np.ndarray:
    """(N, 2) points (x, y) of the unit-speed curve with tangent angle ``theta`` (y grows downwards)."""
    direction = np.stack([np.sin(theta), np.cos(theta)], axis=1)
    increments = 0.5 * (direction[1:] + direction[:-1]) * step
    return np.concatenate([np.zeros((1, 2)), np.cumsum(increments, axis=0)])


def _normal(theta: np.ndarray) -> np.ndarray:
    """Unit vectors perpendicular to the tangent, pointing to the image right when the spine is vertical."""
    return np.stack([np.cos(theta), -np.sin(theta)], axis=-1)


def _sample_geometry(rng: np.random.Generator, kind: str, size_scale: float) -> _Geometry:
    height = round(rng.uniform(*_HEIGHT_RANGE) * size_scale)
    aspect = rng.uniform(*_ASPECT_RANGE)

    # Body sizes relative to the T1 body height, then arc-length layout body, disc, body, ..., body.
    level = np.arange(NUM_VERTEBRAE) / (NUM_VERTEBRAE - 1)
    heights = (1.0 + (rng.uniform(1.5, 2.0) - 1.0) * level ** rng.uniform(0.8, 1.4)) * rng.uniform(
        0.95, 1.05, NUM_VERTEBRAE
    )
    widths = rng.uniform(2.2, 2.8) * (1.0 + (rng.uniform(1.25, 1.6) - 1.0) * level)
    widths = widths * rng.uniform(0.97, 1.03, NUM_VERTEBRAE)
    discs = (
        heights[:-1] * rng.uniform(0.18, 0.3) * (1.0 + 0.3 * level[:-1]) * rng.uniform(0.85, 1.15, NUM_VERTEBRAE - 1)
    )
    pieces = np.empty(2 * NUM_VERTEBRAE - 1)
    pieces[0::2], pieces[1::2] = heights, discs
    edges = np.concatenate([[0.0], np.cumsum(pieces)])
    total = edges[-1]
    edges, heights, widths = edges / total, heights / total, widths / total
    tops, bottoms = edges[0::2][:NUM_VERTEBRAE], edges[1::2]

    # Tangent angle along the arc length: smooth steps per curve, a slow wobble, then balance and lean.
    s = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
    v = np.interp(s, np.append(tops, 1.0), np.arange(NUM_VERTEBRAE + 1))
    theta_deg = np.zeros_like(s)
    for start, end, angle in _sample_curves(rng, kind):
        theta_deg += angle * _smooth_step((v - start) / (end - start))
    wobble = rng.uniform(0.5, 3.0) if kind == "straight" else rng.uniform(0.0, 1.5)
    for _ in range(2):
        theta_deg += wobble * np.sin(2.0 * np.pi * rng.uniform(0.3, 1.5) * s + rng.uniform(0.0, 2.0 * np.pi))
    theta = np.radians(theta_deg)
    step = 1.0 / (_CURVE_SAMPLES - 1)
    chord = _integrate(theta, step)[-1]
    theta = theta - np.arctan2(chord[0], chord[1]) + np.radians(rng.normal(0.0, 2.0))
    centre = _integrate(theta, step)

    # Endplates perpendicular to the local tangent, plus per-vertebra and per-endplate tilt jitter and corner jitter.
    tilt_sigma = np.radians(rng.uniform(0.5, 2.0))
    jitter = rng.normal(0.0, tilt_sigma, (NUM_VERTEBRAE, 1)) + rng.normal(0.0, tilt_sigma / 2.0, (NUM_VERTEBRAE, 2))
    plate_s = np.stack([tops, bottoms], axis=1)  # (17, 2)
    plate_theta = np.interp(plate_s, s, theta) + jitter
    plate_centre = np.stack([np.interp(plate_s, s, centre[:, 0]), np.interp(plate_s, s, centre[:, 1])], axis=-1)
    half = _normal(plate_theta) * (widths[:, None, None] / 2.0)  # (17, 2, 2)
    top, bottom = plate_centre[:, 0], plate_centre[:, 1]
    corners = np.stack([top - half[:, 0], top + half[:, 0], bottom - half[:, 1], bottom + half[:, 1]], axis=1)
    corners = corners + rng.normal(0.0, rng.uniform(0.01, 0.035), corners.shape) * heights[:, None, None]

    # Place it: vertical span from the corners, width grown only if the curve would not fit inside the side margins.
    low, high = corners.reshape(-1, 2).min(axis=0), corners.reshape(-1, 2).max(axis=0)
    top_fraction, bottom_fraction = rng.uniform(0.005, 0.07), rng.uniform(0.87, 0.975)
    scale = (bottom_fraction - top_fraction) * height / (high[1] - low[1])
    width = max(round(height / aspect), 16)
    extent = scale * (high[0] - low[0])
    if extent > width * (1.0 - 2.0 * _SIDE_MARGIN):
        width = int(np.ceil(extent / (1.0 - 2.0 * _SIDE_MARGIN))) + 1
    x_shift = width * rng.uniform(0.42, 0.58) - scale * (low[0] + high[0]) / 2.0
    x_shift = np.clip(x_shift, _SIDE_MARGIN * width - scale * low[0], (1.0 - _SIDE_MARGIN) * width - scale * high[0])
    offset = np.array([x_shift, top_fraction * height - scale * low[1]])
    return _Geometry(
        corners=corners * scale + offset,
        centre=centre * scale + offset,
        heights=heights * scale,
        widths=widths * scale,
        height=height,
        width=width,
    )


def _blurred(layer: Image.Image, radius: float) -> np.ndarray:
    """The layer blurred by a Gaussian of ``radius`` pixels, as float32 in [0, 1]."""
    if radius > 0.3:
        layer = layer.filter(ImageFilter.GaussianBlur(float(radius)))
    return np.asarray(layer, dtype=np.float32) / 255.0


def _quad(points: np.ndarray) -> list[tuple[float, float]]:
    """Polygon order TL, TR, BR, BL of (4, 2) corners given as TL, TR, BL, BR."""
    return [(float(points[i, 0]), float(points[i, 1])) for i in (0, 1, 3, 2)]


def _tissue(rng: np.random.Generator, geo: _Geometry, diaphragm: float) -> np.ndarray:
    """(H, W) float32 soft-tissue background."""
    rows = (np.arange(geo.height, dtype=np.float32) + 0.5) / geo.height
    cols = np.arange(geo.width, dtype=np.float32) + 0.5
    lung = rng.uniform(0.03, 0.18)
    abdomen = lung + rng.uniform(0.12, 0.35)
    vertical = lung + (abdomen - lung) / (1.0 + np.exp(-(rows - diaphragm) / rng.uniform(0.02, 0.06)))
    spine_x = np.interp(np.arange(geo.height) + 0.5, geo.centre[:, 1], geo.centre[:, 0]).astype(np.float32)
    spread = rng.uniform(0.12, 0.25) * geo.width
    band = rng.uniform(0.05, 0.2) * np.exp(-0.5 * ((cols[None, :] - spine_x[:, None]) / spread) ** 2)
    edges = rng.uniform(0.0, 0.15) * np.abs(2.0 * cols / geo.width - 1.0) ** 4
    coarse = rng.normal(0.0, rng.uniform(0.01, 0.05), (8, 4)).astype(np.float32)
    mottle = np.asarray(Image.fromarray(coarse, mode="F").resize((geo.width, geo.height), Image.Resampling.BILINEAR))
    return vertical[:, None] + band - edges[None, :] + mottle


def _soft_blobs(rng: np.random.Generator, geo: _Geometry, diaphragm: float) -> np.ndarray:
    """(H, W) heart shadow (positive) minus abdominal gas bubbles; drawn at a quarter of the size, as both are blurry."""
    factor = 4.0
    size = (max(1, round(geo.width / factor)), max(1, round(geo.height / factor)))
    heart, gas = Image.new("L", size, 0), Image.new("L", size, 0)
    y_diaphragm = diaphragm * geo.height
    x_spine = float(np.interp(y_diaphragm, geo.centre[:, 1], geo.centre[:, 0]))
    cx, cy = x_spine + rng.uniform(0.05, 0.2) * geo.width, y_diaphragm - rng.uniform(0.05, 0.12) * geo.height
    rx, ry = rng.uniform(0.15, 0.3) * geo.width, rng.uniform(0.06, 0.1) * geo.height
    box = np.array([cx - rx, cy - ry, cx + rx, cy + ry]) / factor
    ImageDraw.Draw(heart).ellipse(box.tolist(), fill=int(rng.integers(150, 256)))
    draw = ImageDraw.Draw(gas)
    for _ in range(rng.integers(0, 5)):
        cx, cy = rng.uniform(0.1, 0.9) * geo.width, rng.uniform(diaphragm + 0.05, 1.0) * geo.height
        rx, ry = rng.uniform(0.04, 0.12) * geo.width, rng.uniform(0.01, 0.04) * geo.height
        box = np.array([cx - rx, cy - ry, cx + rx, cy + ry]) / factor
        draw.ellipse(box.tolist(), fill=int(rng.integers(120, 256)))
    field = rng.uniform(0.05, 0.15) * _blurred(heart, 0.03 * geo.height / factor)
    field -= rng.uniform(0.05, 0.15) * _blurred(gas, 0.006 * geo.height / factor)
    resized = Image.fromarray(field, mode="F").resize((geo.width, geo.height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def _ribs(rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    """(H, W) rib arcs from the sides of T1..T12, in [0, 1]."""
    layer = Image.new("L", (geo.width, geo.height), 0)
    draw = ImageDraw.Draw(layer)
    sweep = np.linspace(0.0, 1.0, 16)
    for v in range(_NUM_THORACIC):
        quad = geo.corners[v]
        middle = quad.mean(axis=0)
        across = (quad[1] + quad[3] - quad[0] - quad[2]) / 2.0
        across = across / np.linalg.norm(across)
        for side in (-1.0, 1.0):
            start = middle + side * across * geo.widths[v] * 0.55
            reach = geo.width * rng.uniform(0.45, 0.75)
            # Beyond a quarter turn the arc comes back inwards: the posterior rib turning into the anterior one.
            angle = sweep * rng.uniform(1.7, 2.4)
            drop = rng.uniform(0.6, 1.0) + 0.4 * v / (_NUM_THORACIC - 1)
            xs = start[0] + side * reach * np.sin(angle)
            ys = start[1] + reach * (drop * (1.0 - np.cos(angle)) - 0.1 * np.sin(angle))
            thickness = max(1, round(geo.heights[v] * rng.uniform(0.25, 0.4)))
            draw.line(
                list(zip(xs.tolist(), ys.tolist(), strict=True)),
                fill=int(rng.integers(140, 256)),
                width=thickness,
                joint="curve",
            )
    return _blurred(layer, 0.12 * geo.heights[0])


def _pelvis(rng: np.random.Generator, geo: _Geometry) -> np.ndarray:
    """(H, W) iliac wings with bright crests beside and below L5, in [0, 1]."""
    layer = Image.new("L", (geo.width, geo.height), 0)
    draw = ImageDraw.Draw(layer)
    last = geo.corners[-1]
    bottom, centre_x, body = float(last[2:, 1].max()), float(last[:, 0].mean()), geo.widths[-1]
    for side in (-1.0, 1.0):
        rx, ry = body * rng.uniform(1.2, 2.0), geo.heights[-1] * rng.uniform(2.5, 4.5)
        cx = centre_x + side * (body * rng.uniform(0.7, 1.0) + rx)
        cy = bottom - geo.heights[-1] * rng.uniform(0.5, 2.0) + ry
        draw.ellipse(
            (cx - rx, cy - ry, cx + rx, cy + ry),
            fill=int(rng.integers(90, 150)),
            outline=int(rng.integers(200, 256)),
            width=max(1, round(0.25 * geo.heights[-1])),
        )
    return _blurred(layer, 0.1 * geo.heights[-1])


def _spine(rng: np.random.Generator, geo: _Geometry, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) discs and (H, W) bony parts (labelled bodies, cervical vertebrae, sacrum), both in [0, 1]."""
    size = (geo.width, geo.height)
    discs, bones = Image.new("L", size, 0), Image.new("L", size, 0)
    disc_draw, bone_draw = ImageDraw.Draw(discs), ImageDraw.Draw(bones)
    for v in range(NUM_VERTEBRAE - 1):
        disc_draw.polygon(
            _quad(np.stack([corners[v, 2], corners[v, 3], corners[v + 1, 0], corners[v + 1, 1]])), fill=255
        )

    # Unlabelled cervical vertebrae above T1, shrinking upwards, and a sacrum below L5: the model must find T1 and L5.
    first = corners[0]
    up = (first[0] + first[1] - first[2] - first[3]) / 2.0
    up = up / np.linalg.norm(up)
    gap = geo.heights[0] * rng.uniform(0.2, 0.3)
    previous, shift = first, np.zeros(2)
    for _ in range(int(rng.integers(2, 4))):
        middle = previous.mean(axis=0)
        shrunk = middle + (previous - middle) * 0.85
        shift = up * (np.ptp(previous @ up) * 0.5 + gap + np.ptp(shrunk @ up) * 0.5)
        cervical = shrunk + shift
        disc_draw.polygon(_quad(np.stack([cervical[2], cervical[3], previous[0], previous[1]])), fill=255)
        bone_draw.polygon(_quad(cervical), fill=int(rng.integers(150, 220)))
        previous = cervical
    last = corners[-1]
    down = (last[2] + last[3] - last[0] - last[1]) / 2.0
    down = down / np.linalg.norm(down)
    across = last[3] - last[2]
    top_left = last[2] + down * geo.heights[-1] * rng.uniform(0.25, 0.4) - across * 0.05
    top_right = top_left + across * 1.1
    depth = down * geo.heights[-1] * rng.uniform(2.0, 3.0)
    sacrum = np.stack([top_left, top_right, top_left + across * 0.3 + depth, top_right - across * 0.3 + depth])
    bone_draw.polygon(_quad(sacrum), fill=int(rng.integers(120, 190)))

    for v in range(NUM_VERTEBRAE):
        quad = corners[v]
        value = int(rng.integers(170, 231))
        rim = max(1, round(0.05 * geo.widths[v]))
        bone_draw.polygon(_quad(quad), fill=value, outline=min(255, value + int(rng.integers(15, 41))), width=rim)
        top_left, across, down = quad[0], quad[1] - quad[0], quad[2] - quad[0]
        rx, ry = 0.09 * geo.widths[v], 0.14 * geo.heights[v]
        for fraction in (0.22, 0.78):
            cx, cy = top_left + across * fraction + down * 0.35
            bone_draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=min(255, value + 10), outline=255, width=rim)
        cx, cy = top_left + across * 0.5 + down * 0.65
        bone_draw.ellipse((cx - 0.6 * rx, cy - 1.2 * ry, cx + 0.6 * rx, cy + 1.2 * ry), fill=min(255, value + 20))
    soft_edge = rng.uniform(0.03, 0.07) * geo.heights[0]
    return _blurred(discs, soft_edge * 2.0), _blurred(bones, soft_edge)


# Segments of a 2x2-cell glyph grid (corners (0..1, 0..2)): the seven of a seven-segment display and two diagonals.
_GLYPH_SEGMENTS = (
    ((0, 0), (1, 0)),
    ((0, 0), (0, 1)),
    ((1, 0), (1, 1)),
    ((0, 1), (1, 1)),
    ((0, 1), (0, 2)),
    ((1, 1), (1, 2)),
    ((0, 2), (1, 2)),
    ((0, 0), (1, 2)),
    ((1, 0), (0, 2)),
)


def _marks(rng: np.random.Generator, height: int, width: int) -> np.ndarray | None:
    """(H, W) bright text-like marks near a corner, in [0, 1], or None (most phantoms have none)."""
    if rng.random() >= 0.35:
        return None
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    glyph = rng.uniform(0.012, 0.03) * height
    stroke = max(1, round(glyph / 6.0))
    left = rng.random() < 0.5
    x = rng.uniform(0.03, 0.15) * width if left else rng.uniform(0.7, 0.85) * width
    y = rng.uniform(0.02, 0.1) * height if rng.random() < 0.5 else rng.uniform(0.85, 0.95) * height
    for _ in range(int(rng.integers(1, 5))):
        chosen = rng.choice(len(_GLYPH_SEGMENTS), size=int(rng.integers(2, 6)), replace=False)
        for index in chosen:
            (x0, y0), (x1, y1) = _GLYPH_SEGMENTS[index]
            scale = glyph / 2.0
            draw.line((x + x0 * scale, y + y0 * scale, x + x1 * scale, y + y1 * scale), fill=255, width=stroke)
        x += glyph * 0.8
    return np.asarray(layer, dtype=np.float32) / 255.0


def _render(rng: np.random.Generator, geo: _Geometry, corners: np.ndarray) -> np.ndarray:
    """(H, W) uint8 radiograph of the spine whose labelled corners (17, 4, 2) are ``corners``."""
    diaphragm = rng.uniform(0.38, 0.62)
    image = _tissue(rng, geo, diaphragm)
    image += _soft_blobs(rng, geo, diaphragm)
    discs, bones = _spine(rng, geo, corners)
    image += rng.uniform(0.08, 0.2) * _ribs(rng, geo) + rng.uniform(0.1, 0.25) * _pelvis(rng, geo)
    image += rng.uniform(0.06, 0.14) * discs + rng.uniform(0.2, 0.4) * bones

    image = np.clip(image * rng.uniform(0.8, 1.3) + rng.uniform(-0.05, 0.1), 0.0, 1.0) ** rng.uniform(0.75, 1.35)
    marks = _marks(rng, geo.height, geo.width)
    if marks is not None:
        image = np.maximum(image, marks * rng.uniform(0.85, 1.0))
    sigma = rng.uniform(0.0, 1.5) * geo.height / 1250.0
    if sigma > 0.3:
        image = ndimage.gaussian_filter(image, sigma)
    image += rng.standard_normal(image.shape, dtype=np.float32) * rng.uniform(0.01, 0.05)
    return np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def make_phantom(rng: np.random.Generator, size_scale: float = 1.0, kind: str | None = None) -> Phantom:
    """Draw one phantom (see the module docstring for the generative model).

    Args:
        rng: the random generator every draw comes from.
        size_scale: multiplies the image height range (900-1600 pixels); 0.25 gives fast test images 225-400 pixels tall.
        kind: the curve kind, one of :data:`PHANTOM_KINDS`; drawn at random (20/35/30/15%) when None.

    Returns:
        The image, its uint16 landmarks and their official Cobb angles.

    Raises:
        ValueError: when ``size_scale`` is outside [0.1, 4] or ``kind`` is unknown.
    """
    _check_size_scale(size_scale)
    if kind is None:
        kind = str(rng.choice(PHANTOM_KINDS, p=_KIND_PROBABILITIES))
    elif kind not in PHANTOM_KINDS:
        raise ValueError(f"kind must be one of {PHANTOM_KINDS} or None, got {kind!r}.")
    geo = _sample_geometry(rng, kind, size_scale)
    upper = np.array([geo.width - 1, geo.height - 1])
    landmarks = np.clip(np.rint(geo.corners.reshape(NUM_LANDMARKS, 2)), 0, upper).astype(np.uint16)
    image = _render(rng, geo, landmarks.reshape(NUM_VERTEBRAE, 4, 2).astype(np.float64))
    return Phantom(image=image, landmarks=landmarks, angles=cobb_angles(landmarks, geo.height), kind=kind)


def _check_size_scale(size_scale: float) -> None:
    if isinstance(size_scale, bool) or not isinstance(size_scale, int | float):
        raise TypeError(f"size_scale must be a number, got {type(size_scale).__name__}.")
    low, high = _SIZE_SCALE_RANGE
    if not low <= size_scale <= high:
        raise ValueError(f"size_scale must be in [{low}, {high}], got {size_scale}.")


def _check_arguments(num: int, seed: int, split: str, size_scale: float) -> None:
    for label, value, minimum in (("num", num, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{label} must be an integer, got {type(value).__name__}.")
        if value < minimum:
            raise ValueError(f"{label} must be at least {minimum}, got {value}.")
    if not isinstance(split, str) or not _SPLIT_NAME.match(split):
        raise ValueError(f"split must be a plain folder name (letters, digits, '_', '-', '.'), got {split!r}.")
    _check_size_scale(size_scale)


def _phantom_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode()), index]))


def _phantom_name(rng: np.random.Generator, index: int) -> str:
    """A name shaped like the released ones: a visit letter, then the view, sometimes all lower case."""
    visit, view = str(rng.choice(("A", "B", "C"), p=(0.75, 0.2, 0.05))), "AP"
    if rng.random() < 0.15:
        visit, view = visit.lower(), view.lower()
    return f"phantom-{index:04d} {visit} {view}.jpg"


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"{path} is not a readable phantom manifest ({error}); refusing to write into {root}."
        ) from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("splits"), dict):
        raise ValueError(f"{path} is not a phantom manifest (no 'splits' table); refusing to write into {root}.")
    return manifest


def _is_complete(root: Path, split: str, num: int) -> bool:
    names_file = root / "labels" / split / "filenames.csv"
    if not names_file.is_file():
        return False
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    return len(names) == num and all(
        (root / "data" / split / name).is_file() and (root / "labels" / split / f"{name}.mat").is_file()
        for name in names
    )


def phantom_record(num: int, seed: int, size_scale: float) -> dict:
    """What the manifest records for a split generated with these arguments (by this generator version)."""
    return {"num": int(num), "seed": int(seed), "size_scale": float(size_scale), "version": GENERATOR_VERSION}


def complete_splits(root: str | Path) -> dict[str, dict]:
    """The splits under ``root`` that its manifest records and whose files are all there, with their records.

    Args:
        root: a folder :func:`make_phantoms` wrote (or any folder: then the answer is empty).

    Returns:
        ``{split: record}`` (see :func:`phantom_record`); empty when ``root`` holds no readable manifest.
    """
    root = Path(root).expanduser()
    try:
        manifest = _read_manifest(root) if root.is_dir() else None
    except ValueError:
        return {}
    if manifest is None:
        return {}
    return {
        split: record
        for split, record in manifest["splits"].items()
        if isinstance(record, dict)
        and isinstance(split, str)
        and _SPLIT_NAME.match(split)
        and isinstance(record.get("num"), int)
        and _is_complete(root, split, record["num"])
    }


def _has_content(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _refuse_if_occupied(root: Path, split: str, manifest: dict | None) -> None:
    """Raise when writing ``split`` under ``root`` could overwrite or mix with a different dataset."""
    others = [path.name for path in root.iterdir() if path.name != _LOCK_NAME]
    if manifest is None and others:
        raise ValueError(
            f"{root} already holds a different dataset (found {sorted(others)[:5]} and no {MANIFEST_NAME}); "
            "refusing to write phantoms into it: choose an empty or new folder."
        )
    if manifest is not None and split in manifest["splits"]:
        raise ValueError(
            f"{root} already holds a different phantom set for split {split!r} ({manifest['splits'][split]}); "
            "refusing to overwrite it: delete that folder or choose another one."
        )
    for folder in (root / "data" / split, root / "labels" / split):
        if _has_content(folder):
            raise ValueError(
                f"{folder} already holds files not recorded in {root / MANIFEST_NAME} (an interrupted run?); "
                "refusing to overwrite them: delete that folder or choose another one."
            )


def _mat_bytes(landmarks: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"p2": landmarks}, format="5", do_compression=False)
    data = bytearray(buffer.getvalue())
    data[: len(_MAT_HEADER)] = _MAT_HEADER
    return bytes(data)


def _number(value: float) -> str:
    return f"{value:.8g}"


def make_phantoms(
    out_root: str | Path, num: int, seed: int = 0, split: str = "training", size_scale: float = 1.0
) -> Path:
    """Write ``num`` phantoms of one split in the AASCE layout (see the module docstring).

    Re-running with the same arguments finds the finished set and returns at once; a different set is never overwritten.
    Concurrent calls on one root (distributed ranks) are serialised by a lock file where the platform has ``fcntl``.

    Args:
        out_root: the dataset root; created when missing. Other splits generated here before are kept.
        num: number of phantoms (at least 1). Phantom ``i`` does not depend on ``num``.
        seed: non-negative seed; the same (seed, split, size_scale) gives byte-identical files.
        split: the split folder name (``training``, ``test``, ...).
        size_scale: multiplies the image sizes (default heights 900-1600 pixels); 0.25 for fast tests.

    Returns:
        ``out_root`` as a Path.

    Raises:
        ValueError: on a bad argument, or when ``out_root`` already holds a different dataset (the message names the folder).
        TypeError: when ``num``, ``seed`` or ``size_scale`` has the wrong type.
    """
    _check_arguments(num, seed, split, size_scale)
    root = Path(out_root).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"out_root {root} exists and is not a folder.")
    if root.is_dir() and not (root / _LOCK_NAME).exists() and _read_manifest(root) is None:
        _refuse_if_occupied(root, split, None)  # a foreign folder: refuse before leaving even a lock file in it
    root.mkdir(parents=True, exist_ok=True)
    record = phantom_record(num, seed, size_scale)
    with file_lock(root / _LOCK_NAME):  # distributed ranks generating the default set at once
        manifest = _read_manifest(root)
        if manifest is not None and manifest["splits"].get(split) == record and _is_complete(root, split, num):
            logger.info("phantoms already present in %s (split %s, %s)", root, split, record)
            return root
        _refuse_if_occupied(root, split, manifest)

        image_dir, label_dir = root / "data" / split, root / "labels" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        names, landmark_rows, angle_rows = [], [], []
        for index in range(num):
            rng = _phantom_rng(seed, split, index)
            name = _phantom_name(rng, index)
            phantom = make_phantom(rng, size_scale)
            height, width = phantom.image.shape
            Image.fromarray(phantom.image).save(image_dir / name, format="JPEG", quality=int(rng.integers(80, 96)))
            (label_dir / f"{name}.mat").write_bytes(_mat_bytes(phantom.landmarks))
            relative = phantom.landmarks.astype(np.float64) / np.array([width, height])
            names.append(name)
            landmark_rows.append(",".join(_number(value) for value in np.concatenate([relative[:, 0], relative[:, 1]])))
            angle_rows.append(",".join(_number(value) for value in phantom.angles))
        # The released filenames.csv ends its lines with CRLF and the two numeric files with LF; readers must cope with both.
        (label_dir / "filenames.csv").write_bytes("".join(f"{name}\r\n" for name in names).encode())
        (label_dir / "landmarks.csv").write_bytes("".join(f"{row}\n" for row in landmark_rows).encode())
        (label_dir / "angles.csv").write_bytes("".join(f"{row}\n" for row in angle_rows).encode())

        manifest = manifest or {"generator": __name__, "splits": {}}
        manifest["splits"][split] = record
        # the manifest is what marks the split finished: written beside and renamed, so it is never half written
        partial_manifest = root / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
        partial_manifest.write_bytes((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        os.replace(partial_manifest, root / MANIFEST_NAME)
    logger.info("wrote %d phantoms to %s (split %s, seed %d, size_scale %g)", num, root, split, seed, size_scale)
    return root
