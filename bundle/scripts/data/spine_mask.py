# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The spine mask: the 17 vertebra quadrilaterals of the landmarks, filled, as a binary segmentation target.

Each vertebra's corners (TL, TR, BL, BR in the landmark order) are joined as the polygon TL, TR, BR, BL. A pixel is
foreground when its centre lies inside a polygon (even-odd rule, no anti-aliasing). Pixel ``[i, j]`` has its centre at
``(x, y) = (j + 0.5, i + 0.5)``: the convention of :mod:`scripts.data.resize_pad`, so a mask rendered from transformed
landmarks and a transformed rendered mask agree.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform
from monai.transforms.utils import convert_applied_interp_mode
from monai.utils import ensure_tuple

from scripts.data.cobb import NUM_LANDMARKS, NUM_VERTEBRAE

__all__ = ["RenderSpineMask", "RenderSpineMaskd", "render_spine_mask", "render_vertebra_labels"]

_POLYGON_ORDER = (0, 1, 3, 2)  # TL, TR, BR, BL out of the landmark order TL, TR, BL, BR


def _check_landmarks(landmarks: Any) -> np.ndarray:
    array = landmarks.detach().cpu().numpy() if isinstance(landmarks, torch.Tensor) else np.asarray(landmarks)
    if array.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape ({NUM_LANDMARKS}, 2), got {tuple(array.shape)}.")
    points = array.astype(np.float64)
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks contain NaN or infinite values.")
    return points


def _check_size(spatial_size: Any) -> tuple[int, int]:
    try:
        size = tuple(int(v) for v in spatial_size)
        valid = len(size) == 2 and min(size) > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(f"spatial_size must be two positive integers (H, W), got {spatial_size!r}.")
    return size  # type: ignore[return-value]


def render_vertebra_labels(landmarks: Any, spatial_size: Sequence[int]) -> np.ndarray:
    """Fill each of the 17 vertebra quadrilaterals with its own label: 1 (T1) .. 17 (L5), 0 background.

    Where two quadrilaterals overlap (ragged annotations), the lower vertebra's label wins.

    Args:
        landmarks: (68, 2) corner points (x, y) in pixels, 4 per vertebra in the order TL, TR, BL, BR.
        spatial_size: (H, W) of the label map.

    Returns:
        (H, W) uint8 array of labels 0..17. Parts of vertebrae outside the image are cut off.

    Raises:
        ValueError: on landmarks that are not a finite (68, 2) array or a size that is not two positive integers.
    """
    points = _check_landmarks(landmarks)
    height, width = _check_size(spatial_size)
    labels = np.zeros((height, width), dtype=np.uint8)
    for vertebra in range(NUM_VERTEBRAE):
        polygon = points[4 * vertebra : 4 * vertebra + 4][list(_POLYGON_ORDER)]
        # only pixel centres inside the bounding box can be inside the polygon
        col0 = max(int(np.floor(polygon[:, 0].min() - 0.5)), 0)
        col1 = min(int(np.ceil(polygon[:, 0].max() - 0.5)) + 1, width)
        row0 = max(int(np.floor(polygon[:, 1].min() - 0.5)), 0)
        row1 = min(int(np.ceil(polygon[:, 1].max() - 0.5)) + 1, height)
        if col0 >= col1 or row0 >= row1:
            continue
        cy, cx = np.meshgrid(np.arange(row0, row1) + 0.5, np.arange(col0, col1) + 0.5, indexing="ij")
        inside = np.zeros(cx.shape, dtype=bool)
        for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
            if y0 == y1:
                continue  # a horizontal edge never crosses the horizontal ray from a centre
            crosses = (y0 > cy) != (y1 > cy)
            x_at = x0 + (cy - y0) * (x1 - x0) / (y1 - y0)
            inside ^= crosses & (cx < x_at)
        labels[row0:row1, col0:col1][inside] = vertebra + 1
    return labels


def render_spine_mask(landmarks: Any, spatial_size: Sequence[int]) -> np.ndarray:
    """Fill the 17 vertebra quadrilaterals: the union of :func:`render_vertebra_labels`.

    Args:
        landmarks: (68, 2) corner points (x, y) in pixels, 4 per vertebra in the order TL, TR, BL, BR.
        spatial_size: (H, W) of the mask.

    Returns:
        (H, W) uint8 array of 0 and 1. Parts of vertebrae outside the image are cut off.

    Raises:
        ValueError: on landmarks that are not a finite (68, 2) array or a size that is not two positive integers.
    """
    return (render_vertebra_labels(landmarks, spatial_size) > 0).astype(np.uint8)


class RenderSpineMask(Transform):
    """Render the spine mask of one set of landmarks: ``(68, 2) -> (1, H, W)``.

    Args:
        spatial_size: default (H, W) of the mask; a call may pass its own.
        dtype: torch dtype of the mask (float32 {0, 1} by default, uint8 also useful).
        per_vertebra: label each vertebra 1 (T1) .. 17 (L5) instead of 1 for the whole spine
            (:func:`render_vertebra_labels`).

    Raises:
        ValueError: on bad landmarks, or when no size is given at all.
    """

    def __init__(
        self, spatial_size: Sequence[int] | None = None, dtype: torch.dtype = torch.float32, per_vertebra: bool = False
    ) -> None:
        self.spatial_size = None if spatial_size is None else _check_size(spatial_size)
        self.dtype = dtype
        self.render = render_vertebra_labels if per_vertebra else render_spine_mask

    def __call__(self, landmarks: Any, spatial_size: Sequence[int] | None = None) -> torch.Tensor:
        """Args:
            landmarks: (68, 2) points (x, y) in pixels.
            spatial_size: (H, W), overriding the one given at construction.

        Returns:
            (1, H, W) tensor of 0 and 1 (0..17 with ``per_vertebra``).
        """
        size = spatial_size if spatial_size is not None else self.spatial_size
        if size is None:
            raise ValueError("spatial_size must be given, at construction or at call time, got None.")
        return torch.from_numpy(self.render(landmarks, size)).to(self.dtype).unsqueeze(0)


class RenderSpineMaskd(MapTransform):
    """Dictionary wrapper of :class:`RenderSpineMask`: writes the mask of each landmarks key under a mask key.

    The mask size comes from the reference image (its last two dimensions), or from ``spatial_size`` when there is no
    reference. When the reference is a MetaTensor the mask is one too, with a copy of the image's metadata and
    ``applied_operations`` (interpolation modes set to nearest): it shares the image's geometry, so the image's
    transforms invert on it as well, as a mask.

    Args:
        keys: landmarks keys.
        mask_keys: where to write each mask (one per landmarks key).
        ref_key: image key whose size the mask takes, or None to use ``spatial_size``.
        spatial_size: (H, W) when ``ref_key`` is None.
        dtype: torch dtype of the mask.
        per_vertebra: a label per vertebra, 1 (T1) .. 17 (L5), instead of the binary spine mask.
        allow_missing_keys: skip absent landmarks keys (e.g. at inference) instead of raising.

    Raises:
        ValueError: on mismatched key counts, on no size source, or bad landmarks.
    """

    def __init__(
        self,
        keys: KeysCollection = "landmarks",
        mask_keys: KeysCollection = "label",
        ref_key: Hashable | None = "image",
        spatial_size: Sequence[int] | None = None,
        dtype: torch.dtype = torch.float32,
        per_vertebra: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        names = ensure_tuple(mask_keys)
        if len(names) != len(self.keys):
            raise ValueError(f"mask_keys must name one output per landmarks key {self.keys}, got {mask_keys!r}.")
        self.mask_keys = names
        if ref_key is None and spatial_size is None:
            raise ValueError("give ref_key or spatial_size, got neither.")
        self.ref_key = ref_key
        self.renderer = RenderSpineMask(spatial_size, dtype=dtype, per_vertebra=per_vertebra)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        reference = None
        if self.ref_key is not None:
            if self.ref_key not in d:
                raise KeyError(f"reference key {self.ref_key!r} is missing from the data.")
            reference = d[self.ref_key]
        for key, mask_key in self.key_iterator(d, self.mask_keys):
            size = tuple(reference.shape[-2:]) if reference is not None else None
            mask = self.renderer(d[key], size)
            if isinstance(reference, MetaTensor):
                mask = MetaTensor(
                    mask,
                    meta=copy.deepcopy(reference.meta),
                    applied_operations=convert_applied_interp_mode(copy.deepcopy(reference.applied_operations)),
                )
            d[mask_key] = mask
        return d
