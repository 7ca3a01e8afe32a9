# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Aspect-preserving resize and centred zero padding to a fixed size, invertible, for images, masks and landmarks.

The geometry (coordinate convention, scale and fractional centring shift) is :mod:`scripts.data.resize_geometry`'s;
this module resamples through it with torch (:func:`warp_affine`, any device) and wraps it in MONAI transforms whose
trace lets ``Invertd`` bring a prediction back to the original size.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import TraceKeys, convert_to_dst_type, convert_to_tensor, ensure_tuple_rep

from scripts.data.resize_geometry import (
    INTERPOLATION_MODES,
    ResizePadGeometry,
    check_mode,
    check_size,
    index_affine,
    map_points,
    plan_warp,
    resize_pad_geometry,
)

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
    tensor = img.as_tensor() if isinstance(img, MetaTensor) else torch.as_tensor(img)
    plan = plan_warp(tuple(tensor.shape), matrix, spatial_size, mode, antialias)
    mode, (out_h, out_w), inverse, factor = plan.mode, plan.spatial_size, plan.inverse, plan.factor
    source = tensor.unsqueeze(0).to(torch.float64 if tensor.dtype == torch.float64 else torch.float32)
    extent_h, extent_w = tensor.shape[1] / factor, tensor.shape[2] / factor
    if factor > 1:
        pad_h, pad_w = (-tensor.shape[1]) % factor, (-tensor.shape[2]) % factor
        if pad_h or pad_w:
            source = F.pad(source, (0, pad_w, 0, pad_h), mode="replicate")
        source = F.avg_pool2d(source, factor)

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
    geometry = resize_pad_geometry(original_size, spatial_size)
    return warp_affine(img, geometry.inverse, geometry.original_size, mode=mode)


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
        self.spatial_size = check_size(spatial_size, "spatial_size")
        self.mode = check_mode(mode)
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
        mode = check_mode(mode or self.mode)
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
        restored = warp_affine(data, geometry.inverse, original_size, mode=mode)
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
            check_mode(item)
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
