# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Aspect-preserving resize and centred zero padding to a fixed size, invertible, for images, masks and landmarks.

Coordinates. Every geometric transform of this package works in continuous pixel coordinates ``(x, y)`` in which the
pixel ``[i, j]`` of a ``(C, H, W)`` array covers ``[j, j + 1) x [i, i + 1)``: the image spans ``[0, W] x [0, H]`` and
its centre is ``(W / 2, H / 2)``. Landmarks are points in these coordinates (``image[:, int(y), int(x)]`` is the pixel
under ``(x, y)``). With this convention an isotropic scale about the image centre maps the image height exactly onto
the output height, which keeps the official Cobb rule's height test (its step 7, the sum of two endplate heights against the image height) unchanged under resizing.

The resize is one isotropic scale ``s = min(H_out / H, W_out / W)`` followed by a shift that centres the scaled image
exactly, so the shift (``pad_top``, ``pad_left``) can be fractional: a point ``p`` maps to ``s * p + (pad_left,
pad_top)``, images are resampled through that same map (:func:`warp_affine`), and the map is inverted in closed form.
Cobb angles are invariant to it; they would not be to an anisotropic resize.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys, convert_to_dst_type, convert_to_tensor, ensure_tuple_rep

__all__ = [
    "INTERPOLATION_MODES",
    "ResizePad",
    "ResizePadGeometry",
    "ResizePadd",
    "index_affine",
    "map_points",
    "resize_pad_geometry",
    "restore_original_size",
    "warp_affine",
]

INTERPOLATION_MODES = ("bilinear", "nearest")


def _check_size(value: Sequence[int], name: str) -> tuple[int, int]:
    try:
        size = tuple(int(v) for v in value)
        valid = len(size) == 2 and min(size) > 0 and all(float(v) == s for v, s in zip(value, size, strict=True))
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"{name} must be two positive integers (H, W), got {value!r}.")
    return size  # type: ignore[return-value]


def _check_mode(mode: str) -> str:
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
    array = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if array.ndim < 1 or array.shape[-1] != 2:
        raise ValueError(f"points must have shape (..., 2), got {tuple(array.shape)}.")
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    xy = array.astype(np.float64)
    mapped = (xy @ m[:2, :2].T + m[:2, 2]).astype(dtype)
    if isinstance(points, torch.Tensor):
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


def warp_affine(
    img: Any,
    matrix: np.ndarray,
    spatial_size: Sequence[int],
    mode: str = "bilinear",
    antialias: bool = True,
) -> torch.Tensor:
    """Resample a channel-first 2D image through an affine map of pixel coordinates.

    Each output pixel takes the value of the input at the preimage of its centre: bilinear (``padding_mode="border"``
    inside the image, so edges are not darkened) or nearest; outside the input the output is 0. When the map shrinks
    the image by a factor ``k >= 2`` and ``antialias`` is set, bilinear resampling first averages ``k x k`` blocks (an
    exact scale by ``1 / k`` in these coordinates), so strong downsampling behaves like area interpolation.

    Args:
        img: (C, H, W) array or tensor.
        matrix: (3, 3) map from input (x, y, 1) to output (x, y, 1) pixel coordinates; the same matrix maps landmarks.
        spatial_size: output (H_out, W_out).
        mode: ``"bilinear"`` (images, probabilities, CAMs) or ``"nearest"`` (label masks).
        antialias: block-average before a strong bilinear downsampling.

    Returns:
        (C, H_out, W_out) plain tensor on the input's device; nearest keeps the input dtype, bilinear returns the input
        dtype when it is floating and float32 otherwise.

    Raises:
        ValueError: on an image that is not (C, H, W), an empty image, a bad mode or size, or a singular matrix.
    """
    mode = _check_mode(mode)
    out_h, out_w = _check_size(spatial_size, "spatial_size")
    tensor = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
    if tensor.ndim != 3 or min(tensor.shape) == 0:
        raise ValueError(f"img must be a non-empty (C, H, W) image, got shape {tuple(tensor.shape)}.")
    forward = np.asarray(matrix, dtype=np.float64)
    if forward.shape != (3, 3) or abs(np.linalg.det(forward[:2, :2])) < 1e-12:
        raise ValueError(f"matrix must be an invertible (3, 3) affine map, got {forward.tolist()}.")
    inverse = np.linalg.inv(forward)

    source = tensor.unsqueeze(0).to(torch.float64 if tensor.dtype == torch.float64 else torch.float32)
    extent_h, extent_w = float(tensor.shape[1]), float(tensor.shape[2])
    factor = math.floor(math.sqrt(abs(np.linalg.det(inverse[:2, :2]))) + 1e-9)
    if mode == "bilinear" and antialias and factor >= 2:
        pad_h, pad_w = (-tensor.shape[1]) % factor, (-tensor.shape[2]) % factor
        if pad_h or pad_w:
            source = F.pad(source, (0, pad_w, 0, pad_h), mode="replicate")
        source = F.avg_pool2d(source, factor)
        inverse = np.diag([1.0 / factor, 1.0 / factor, 1.0]) @ inverse
        extent_h, extent_w = extent_h / factor, extent_w / factor

    device = tensor.device
    rows = torch.arange(out_h, dtype=torch.float64, device=device) + 0.5
    cols = torch.arange(out_w, dtype=torch.float64, device=device) + 0.5
    y, x = torch.meshgrid(rows, cols, indexing="ij")
    a = [[float(v) for v in row] for row in inverse[:2]]
    src_x = a[0][0] * x + a[0][1] * y + a[0][2]
    src_y = a[1][0] * x + a[1][1] * y + a[1][2]
    inside = (src_x >= 0) & (src_x < extent_w) & (src_y >= 0) & (src_y < extent_h)
    height, width = source.shape[-2:]
    grid = torch.stack((2 * src_x / width - 1, 2 * src_y / height - 1), dim=-1).unsqueeze(0).to(source.dtype)
    warped = F.grid_sample(source, grid, mode=mode, padding_mode="border", align_corners=False)[0]
    warped = warped * inside.to(warped.dtype)
    if mode == "nearest":
        if tensor.dtype == torch.bool:
            return warped > 0.5
        if not tensor.dtype.is_floating_point:
            return warped.round().to(tensor.dtype)
        return warped.to(tensor.dtype)
    return warped.to(tensor.dtype) if tensor.dtype.is_floating_point else warped


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

    def restore(self, img: Any, mode: str = "nearest") -> torch.Tensor:
        """Map an output-sized (C, H_out, W_out) image (a predicted mask, a CAM) back to (C, H, W) of the original.

        Args:
            img: (C, H_out, W_out) array or tensor in the output geometry.
            mode: ``"nearest"`` for label masks, ``"bilinear"`` for probabilities and CAMs.

        Returns:
            (C, H, W) tensor; the padding is cut away.
        """
        return warp_affine(img, np.linalg.inv(self.matrix), self.original_size, mode=mode)


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
    h, w = _check_size(original_size, "original_size")
    out_h, out_w = _check_size(spatial_size, "spatial_size")
    # The dimension that fills the output gets no shift at all, so no rounding error creeps into it.
    if out_h / h <= out_w / w:
        scale = out_h / h
        pad_top, pad_left = 0.0, (out_w - scale * w) / 2
    else:
        scale = out_w / w
        pad_top, pad_left = (out_h - scale * h) / 2, 0.0
    return ResizePadGeometry((h, w), (out_h, out_w), float(scale), float(pad_top), float(pad_left))


def restore_original_size(
    img: Any, original_size: Sequence[int], spatial_size: Sequence[int] = (512, 256), mode: str = "nearest"
) -> torch.Tensor:
    """Map a (C, H_out, W_out) prediction made on a :class:`ResizePad` output back to the original resolution.

    This is what inference needs for "the mask at the original resolution" when the transform trace is not at hand; it
    only needs the original (H, W), which :class:`~scripts.data.loading.LoadGrayscale` records as ``original_size``.

    Args:
        img: (C, H_out, W_out) mask, probabilities or CAM.
        original_size: (H, W) of the original image.
        spatial_size: the (H_out, W_out) the transform produced.
        mode: ``"nearest"`` for label masks, ``"bilinear"`` for probabilities and CAMs.

    Returns:
        (C, H, W) tensor.
    """
    return resize_pad_geometry(original_size, spatial_size).restore(img, mode=mode)


class ResizePad(InvertibleTransform):
    """Resize keeping the aspect ratio so the image fits ``spatial_size``, then zero-pad it, centred, to that size.

    ``(C, H, W) -> (C, H_out, W_out)``. See the module docstring for the coordinate convention. With metadata tracking
    on, the output is a MetaTensor whose ``applied_operations`` record the original size, scale and padding, so
    :meth:`inverse` (and MONAI's ``Invertd``) bring a prediction back to (C, H, W); its ``affine`` is updated too.

    Args:
        spatial_size: (H_out, W_out), (512, 256) by default as in the paper.
        mode: ``"bilinear"`` for images (block-averaged before strong downsampling, i.e. area-like) or ``"nearest"``
            for masks.
        antialias: block-average before a strong bilinear downsampling.

    Raises:
        ValueError: on a bad size or mode, or an image that is not (C, H, W).
    """

    def __init__(
        self, spatial_size: Sequence[int] = (512, 256), mode: str = "bilinear", antialias: bool = True
    ) -> None:
        self.spatial_size = _check_size(spatial_size, "spatial_size")
        self.mode = _check_mode(mode)
        self.antialias = antialias

    def geometry(self, original_size: Sequence[int]) -> ResizePadGeometry:
        """The geometry this transform applies to an image of ``original_size`` (H, W)."""
        return resize_pad_geometry(original_size, self.spatial_size)

    def __call__(self, img: Any, mode: str | None = None) -> torch.Tensor:
        """Args:
            img: (C, H, W) image or mask.
            mode: overrides the interpolation mode of this call.

        Returns:
            (C, H_out, W_out) MetaTensor (plain tensor when metadata tracking is off).
        """
        mode = _check_mode(mode or self.mode)
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        if img_t.ndim != 3:
            raise ValueError(f"img must be a (C, H, W) image, got shape {tuple(img_t.shape)}.")
        original_size = (int(img_t.shape[1]), int(img_t.shape[2]))
        geometry = self.geometry(original_size)
        warped = warp_affine(img_t, geometry.matrix, self.spatial_size, mode=mode, antialias=self.antialias)
        out, *_ = convert_to_dst_type(warped, img_t)
        if not isinstance(out, MetaTensor):
            return out
        extra = {"scale": geometry.scale, "pad_top": geometry.pad_top, "pad_left": geometry.pad_left, "mode": mode}
        return self.push_transform(out, orig_size=original_size, extra_info=extra, affine=index_affine(geometry.matrix))

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Undo the most recent :class:`ResizePad` recorded on ``data``: (C, H_out, W_out) -> (C, H, W).

        Args:
            data: MetaTensor produced by this transform, or a prediction carrying its ``applied_operations``.

        Returns:
            MetaTensor at the original size, resampled with the recorded mode (nearest for masks).
        """
        transform = self.pop_transform(data)
        original_size = tuple(int(v) for v in transform[TraceKeys.ORIG_SIZE])
        geometry = self.geometry(original_size)
        mode = transform[TraceKeys.EXTRA_INFO]["mode"]
        restored = geometry.restore(data, mode=mode)
        out, *_ = convert_to_dst_type(restored, data)
        with self.trace_transform(False):
            return self.push_transform(out, affine=index_affine(np.linalg.inv(geometry.matrix)))


class ResizePadd(MapTransform, InvertibleTransform):
    """Dictionary wrapper of :class:`ResizePad` that also maps a landmarks key.

    All image keys must share one spatial size; the landmarks (``(68, 2)`` points (x, y), numpy or torch) are mapped
    by the same scale and shift. A missing landmarks key is skipped (inference has none).

    Args:
        keys: image and mask keys to resample.
        spatial_size: (H_out, W_out).
        mode: one mode for every key, or one per key in order; the default suits keys ``(image, mask)``, and modes
            beyond the number of keys are ignored (so ``keys="image"`` alone gets bilinear).
        landmarks_key: key of the landmarks to map, or None.
        antialias: block-average before a strong bilinear downsampling.
        allow_missing_keys: skip absent image keys instead of raising.

    Raises:
        ValueError: when the image keys differ in size, or landmarks are present without any image key.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int] = (512, 256),
        mode: str | Sequence[str] = ("bilinear", "nearest"),
        landmarks_key: Hashable | None = "landmarks",
        antialias: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if len(modes) > 1 and len(modes) < len(self.keys):
            raise ValueError(f"mode must be one mode or one per key ({len(self.keys)} keys), got {mode!r}.")
        self.mode = ensure_tuple_rep(modes[0], len(self.keys)) if len(modes) == 1 else modes[: len(self.keys)]
        for item in self.mode:
            _check_mode(item)
        self.landmarks_key = landmarks_key
        self.resizer = ResizePad(spatial_size, antialias=antialias)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        size = _common_size(d, self.key_iterator(d))
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.resizer(d[key], mode=mode)
        if self.landmarks_key is not None and self.landmarks_key in d:
            if size is None:
                raise ValueError(
                    f"landmarks {self.landmarks_key!r} cannot be mapped: none of the keys {self.keys} is present."
                )
            d[self.landmarks_key] = self.resizer.geometry(size).to_output(d[self.landmarks_key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        original_size = None
        for key in self.key_iterator(d):
            record = self.resizer.get_most_recent_transform(d[key])
            original_size = tuple(int(v) for v in record[TraceKeys.ORIG_SIZE])
            d[key] = self.resizer.inverse(d[key])
        if self.landmarks_key is not None and self.landmarks_key in d and original_size is not None:
            d[self.landmarks_key] = self.resizer.geometry(original_size).to_original(d[self.landmarks_key])
        return d


def _common_size(d: Mapping[Hashable, Any], keys: Any) -> tuple[int, int] | None:
    sizes = {key: tuple(int(v) for v in d[key].shape[-2:]) for key in keys}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"all keys must share one spatial size, got {sizes}.")
    return next(iter(sizes.values()), None)
