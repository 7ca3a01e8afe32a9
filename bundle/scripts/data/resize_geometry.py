# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The geometry of the aspect-preserving resize-and-pad, and a numpy resampler through it.

Coordinates. Every geometric transform of this package works in continuous pixel coordinates ``(x, y)`` in which the
pixel ``[i, j]`` of a ``(C, H, W)`` array covers ``[j, j + 1) x [i, i + 1)``: the image spans ``[0, W] x [0, H]`` and
its centre is ``(W / 2, H / 2)``. Landmarks are points in these coordinates (``image[:, int(y), int(x)]`` is the pixel
under ``(x, y)``). With this convention an isotropic scale about the image centre maps the image height exactly onto
the output height, which keeps the official Cobb rule's height test (its step 7, the sum of two endplate heights against the image height) unchanged under resizing.

The resize is one isotropic scale ``s = min(H_out / H, W_out / W)`` followed by a shift that centres the scaled image
exactly, so the shift (``pad_top``, ``pad_left``) can be fractional: a point ``p`` maps to ``s * p + (pad_left,
pad_top)``, images are resampled through that same map, and the map is inverted in closed form. Cobb angles are
invariant to it; they would not be to an anisotropic resize.

Numpy only: the MONAI transforms (:mod:`scripts.data.resize_pad`) resample with torch (:func:`~scripts.data.resize_pad.
warp_affine`, on any device, in training too), and the fast single-image path (:mod:`scripts.inference.fast`), which
imports neither torch nor MONAI, resamples with :func:`warp_array`, the same arithmetic in numpy (equal within float32
rounding, tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "INTERPOLATION_MODES",
    "ResizePadGeometry",
    "WarpPlan",
    "check_mode",
    "check_size",
    "index_affine",
    "map_points",
    "plan_warp",
    "resize_pad_geometry",
    "warp_array",
]

INTERPOLATION_MODES = ("bilinear", "nearest")


def check_size(value: Sequence[int], name: str) -> tuple[int, int]:
    try:
        size = tuple(int(v) for v in value)
        valid = len(size) == 2 and min(size) > 0 and all(float(v) == s for v, s in zip(value, size, strict=True))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be two positive integers (H, W), got {value!r}.")
    return size  # type: ignore[return-value]


def check_mode(mode: str) -> str:
    if mode not in INTERPOLATION_MODES:
        raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}.")
    return mode


def map_points(points: Any, matrix: np.ndarray) -> Any:
    """Apply a (3, 3) affine map of pixel coordinates to points.

    Args:
        points: (..., 2) points (x, y), numpy array or torch tensor.
        matrix: (3, 3) map from input (x, y, 1) to output (x, y, 1) coordinates.

    Returns:
        The mapped points, same shape and container as ``points``; a floating dtype is kept, others become float64.

    Raises:
        ValueError: if ``points`` does not end in a dimension of size 2.
    """
    is_tensor = hasattr(points, "detach")  # a torch tensor (torch is imported only by whoever passes one)
    array = points.detach().cpu().numpy() if is_tensor else np.asarray(points)
    if array.ndim < 1 or array.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {tuple(array.shape)}.")
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    xy = array.astype(np.float64)
    mapped = (xy @ m[:2, :2].T + m[:2, 2]).astype(dtype)
    if is_tensor:
        import torch

        return torch.as_tensor(mapped, device=points.device)
    return mapped


def index_affine(matrix: np.ndarray) -> np.ndarray:
    """The (3, 3) map from output array indices (row, col) to input array indices, for a MetaTensor's affine.

    Args:
        matrix: (3, 3) map from input to output pixel coordinates (x, y), as used by :func:`warp_affine`.

    Returns:
        (3, 3) float64 matrix taking (row, col, 1) of the output to (row, col, 1) of the input (pixel centres at integers).
    """
    to_centre = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # index -> continuous coordinate
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # (x, y) <-> (row, col)
    xy_map = np.linalg.inv(to_centre) @ np.linalg.inv(np.asarray(matrix, dtype=np.float64)) @ to_centre
    return swap @ xy_map @ swap


@dataclass(frozen=True)
class ResizePadGeometry:
    """The scale and (fractional) padding that fit an ``original_size`` image into ``spatial_size``.

    Attributes:
        original_size: (H, W) of the image before the transform.
        spatial_size: (H_out, W_out) after it.
        scale: the isotropic scale ``min(H_out / H, W_out / W)``.
        pad_top: vertical shift in output pixels (0 along the dimension that fills the output).
        pad_left: horizontal shift in output pixels.
    """

    original_size: tuple[int, int]
    spatial_size: tuple[int, int]
    scale: float
    pad_top: float
    pad_left: float

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) map from original to output pixel coordinates (x, y, 1)."""
        s = self.scale
        return np.array([[s, 0.0, self.pad_left], [0.0, s, self.pad_top], [0.0, 0.0, 1.0]])

    def to_output(self, points: Any) -> Any:
        """Map (..., 2) points (x, y) from the original image to the output."""
        return map_points(points, self.matrix)

    def to_original(self, points: Any) -> Any:
        """Map (..., 2) points (x, y) from the output back to the original image (e.g. predicted landmarks)."""
        return map_points(points, np.linalg.inv(self.matrix))

    @property
    def inverse(self) -> np.ndarray:
        """(3, 3) map from output back to original pixel coordinates: what restores a prediction to (H, W)."""
        return np.linalg.inv(self.matrix)


def resize_pad_geometry(original_size: Sequence[int], spatial_size: Sequence[int] = (512, 256)) -> ResizePadGeometry:
    """The geometry of :class:`ResizePad` for one image size.

    Args:
        original_size: (H, W) of the image.
        spatial_size: (H_out, W_out) to fit into.

    Returns:
        The scale and the centring shifts.

    Raises:
        ValueError: if either size is not two positive integers.
    """
    h, w = check_size(original_size, "original_size")
    out_h, out_w = check_size(spatial_size, "spatial_size")
    # The dimension that fills the output gets no shift at all, so no rounding error creeps into it.
    if out_h / h <= out_w / w:
        scale = out_h / h
        pad_top, pad_left = 0.0, (out_w - scale * w) / 2
    else:
        scale = out_w / w
        pad_top, pad_left = (out_h - scale * h) / 2, 0.0
    return ResizePadGeometry((h, w), (out_h, out_w), float(scale), float(pad_top), float(pad_left))


@dataclass(frozen=True)
class WarpPlan:
    """What a resampling through an affine map does, whichever library runs it (:func:`plan_warp`).

    Attributes:
        mode: ``"bilinear"`` or ``"nearest"``.
        spatial_size: the output (H_out, W_out).
        inverse: (3, 3) map from output to (block-averaged) input pixel coordinates.
        factor: ``k`` of the ``k x k`` block average taken first (1: none).
    """

    mode: str
    spatial_size: tuple[int, int]
    inverse: np.ndarray
    factor: int


def plan_warp(
    shape: Sequence[int], matrix: np.ndarray, spatial_size: Sequence[int], mode: str, antialias: bool
) -> WarpPlan:
    """Check a resampling's arguments and plan it: the inverse map, and the block average of a strong bilinear shrink.

    Args:
        shape: the input's (C, H, W).
        matrix: (3, 3) map from input (x, y, 1) to output (x, y, 1) pixel coordinates.
        spatial_size: output (H_out, W_out).
        mode: ``"bilinear"`` or ``"nearest"``.
        antialias: block-average before a shrink by ``k >= 2`` (bilinear only).

    Raises:
        ValueError: on an image that is not (C, H, W), an empty image, a bad mode or size, or a singular matrix.
    """
    mode = check_mode(mode)
    size = check_size(spatial_size, "spatial_size")
    if len(shape) != 3 or min(shape) == 0:
        raise ValueError(f"img must be a non-empty (C, H, W) image, got shape {tuple(shape)}.")
    forward = np.asarray(matrix, dtype=np.float64)
    if forward.shape != (3, 3) or abs(np.linalg.det(forward[:2, :2])) < 1e-12:
        raise ValueError(f"matrix must be an invertible (3, 3) affine map, got {forward.tolist()}.")
    inverse = np.linalg.inv(forward)
    factor = math.floor(math.sqrt(abs(np.linalg.det(inverse[:2, :2]))) + 1e-9)
    if mode != "bilinear" or not antialias or factor < 2:
        return WarpPlan(mode, size, inverse, 1)
    return WarpPlan(mode, size, np.diag([1.0 / factor, 1.0 / factor, 1.0]) @ inverse, factor)


def warp_array(
    img: np.ndarray,
    matrix: np.ndarray,
    spatial_size: Sequence[int],
    mode: str = "bilinear",
    antialias: bool = True,
) -> np.ndarray:
    """Numpy twin of :func:`scripts.data.resize_pad.warp_affine`: the same resampling, without torch.

    Each output pixel takes the input's value at the preimage of its centre (bilinear between the four nearest pixel
    centres, coordinates clamped to the image as ``grid_sample``'s ``padding_mode="border"`` does, or the nearest
    pixel, halves rounded to even); outside the input the output is 0. A bilinear shrink by ``k >= 2`` first averages
    ``k x k`` blocks (edge rows and columns repeated to fill the last block) when ``antialias`` is set.

    Args:
        img: (C, H, W) array.
        matrix: (3, 3) map from input (x, y, 1) to output (x, y, 1) pixel coordinates.
        spatial_size: output (H_out, W_out).
        mode: ``"bilinear"`` or ``"nearest"``.
        antialias: block-average before a strong bilinear downsampling.

    Returns:
        (C, H_out, W_out) array: nearest keeps the input dtype (booleans and integers exact), bilinear returns float64
        for float64 input and float32 otherwise.

    Raises:
        ValueError: on an image that is not (C, H, W), an empty image, a bad mode or size, or a singular matrix.
    """
    array = np.asarray(img)
    plan = plan_warp(array.shape, matrix, spatial_size, mode, antialias)
    mode, (out_h, out_w), inverse, factor = plan.mode, plan.spatial_size, plan.inverse, plan.factor
    source = array.astype(np.float64 if array.dtype == np.float64 else np.float32)
    extent_h, extent_w = array.shape[1] / factor, array.shape[2] / factor
    if factor > 1:
        pad_h, pad_w = (-array.shape[1]) % factor, (-array.shape[2]) % factor
        if pad_h or pad_w:
            source = np.pad(source, ((0, 0), (0, pad_h), (0, pad_w)), mode="edge")
        c, h, w = source.shape
        source = source.reshape(c, h // factor, factor, w // factor, factor).mean(axis=(2, 4), dtype=source.dtype)

    height, width = source.shape[-2:]
    if inverse[0, 1] == 0 and inverse[1, 0] == 0:  # axis-aligned (every resize-and-pad): rows and columns apart
        src_y = inverse[1, 1] * (np.arange(out_h) + 0.5) + inverse[1, 2]
        src_x = inverse[0, 0] * (np.arange(out_w) + 0.5) + inverse[0, 2]
        inside = ((src_y >= 0) & (src_y < extent_h))[:, None] & ((src_x >= 0) & (src_x < extent_w))[None, :]
        warped = _sample_separable(source, src_y, src_x, mode)
    else:
        y, x = np.meshgrid(np.arange(out_h) + 0.5, np.arange(out_w) + 0.5, indexing="ij")
        src_x = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
        src_y = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
        inside = (src_x >= 0) & (src_x < extent_w) & (src_y >= 0) & (src_y < extent_h)
        # pixel centres sit at integers; border padding clamps the sampling point to the outermost centres
        col = np.clip(src_x - 0.5, 0.0, width - 1.0)
        row = np.clip(src_y - 0.5, 0.0, height - 1.0)
        if mode == "nearest":
            warped = source[:, np.rint(row).astype(np.intp), np.rint(col).astype(np.intp)]
        else:
            row0, col0 = np.floor(row).astype(np.intp), np.floor(col).astype(np.intp)
            row1, col1 = np.minimum(row0 + 1, height - 1), np.minimum(col0 + 1, width - 1)
            fy, fx = (row - row0).astype(source.dtype), (col - col0).astype(source.dtype)
            top = source[:, row0, col0] * (1 - fx) + source[:, row0, col1] * fx
            bottom = source[:, row1, col0] * (1 - fx) + source[:, row1, col1] * fx
            warped = top * (1 - fy) + bottom * fy
    warped = warped * inside
    if mode == "nearest":
        if array.dtype == np.bool_:
            return warped > 0.5
        if not np.issubdtype(array.dtype, np.floating):
            return np.rint(warped).astype(array.dtype)
        return warped.astype(array.dtype)
    return warped.astype(array.dtype) if np.issubdtype(array.dtype, np.floating) else warped.astype(np.float32)


def _sample_separable(source: np.ndarray, src_y: np.ndarray, src_x: np.ndarray, mode: str) -> np.ndarray:
    """Sample ``(C, h, w)`` at the rows ``src_y`` ``(H_out,)`` times the columns ``src_x`` ``(W_out,)`` (continuous
    coordinates), interpolating along the rows, then the columns: the bilinear weights of an axis-aligned map."""
    height, width = source.shape[-2:]
    row = np.clip(src_y - 0.5, 0.0, height - 1.0)
    col = np.clip(src_x - 0.5, 0.0, width - 1.0)
    if mode == "nearest":
        return source[:, np.rint(row).astype(np.intp)][:, :, np.rint(col).astype(np.intp)]
    row0, col0 = np.floor(row).astype(np.intp), np.floor(col).astype(np.intp)
    row1, col1 = np.minimum(row0 + 1, height - 1), np.minimum(col0 + 1, width - 1)
    fy = (row - row0).astype(source.dtype)[:, None]
    fx = (col - col0).astype(source.dtype)
    rows = source[:, row0] * (1 - fy) + source[:, row1] * fy  # (C, H_out, w)
    return rows[:, :, col0] * (1 - fx) + rows[:, :, col1] * fx
