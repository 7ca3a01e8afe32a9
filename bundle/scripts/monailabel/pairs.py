# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Stage (a) data from ``{image, label}`` file pairs, as MONAI Label's datastore hands them to a training task.

The bundle's own stage configs read the AASCE layout and render the spine mask from the 68 landmarks. A MONAI Label
datastore has none of that: it holds radiographs and the spine masks annotators drew, one mask file per image
(any file :func:`scripts.data.decode.read_grayscale` reads; any non-zero pixel is spine). :func:`pair_preprocessing`
builds the transforms that make such a pair look like a stage (a) record: ``image`` and ``label`` ``(1, h, w)``
resized and padded like the bundle's, and ``angles`` unknown (NaN: stage (a) never reads them, and a NaN would show at
once if anything did).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection
from monai.transforms import Compose, EnsureTyped, MapTransform, SelectItemsd

from scripts.data.loading import LoadGrayscaled
from scripts.data.resize_pad import ResizePadd

__all__ = ["SpineLabeld", "UnknownAnglesd", "pair_preprocessing"]


class SpineLabeld(MapTransform):
    """Turn a loaded annotation ``(1, H, W)`` into the stage (a) label map: 1 where spine (any non-zero pixel), else 0.

    Args:
        keys: the label keys, loaded by :class:`~scripts.data.loading.LoadGrayscaled`.
        ref_key: the image key the label must match in size.
        allow_missing_keys: skip absent keys.

    Raises:
        ValueError: in a call, naming the label file when its size differs from its image's.
    """

    def __init__(
        self, keys: KeysCollection = "label", ref_key: str = "image", allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            label = d[key]
            if self.ref_key in d and tuple(label.shape[-2:]) != tuple(d[self.ref_key].shape[-2:]):
                name = (getattr(label, "meta", {}) or {}).get("filename_or_obj", key)
                image = (getattr(d[self.ref_key], "meta", {}) or {}).get("filename_or_obj", self.ref_key)
                raise ValueError(
                    f"label {str(name)!r} is {tuple(label.shape[-2:])} pixels (H, W) but its image {str(image)!r} is "
                    f"{tuple(d[self.ref_key].shape[-2:])}: a spine mask must have its radiograph's size."
                )
            d[key] = (label > 0).to(torch.float32)
        return d


class UnknownAnglesd(MapTransform):
    """Add ``angles`` = three NaNs to a record that has no angle labels (stage (a) trains on the mask alone).

    ``scripts.engines.objectives.prepare_stage_batch`` hands every stage ``(image, label, angles)``; stage (a)'s
    objective ignores the angles and its validation does not regress, so unknown angles are never read.

    Args:
        keys: the key to add (``angles``); a record that already has it keeps its values.
    """

    def __init__(self, keys: KeysCollection = "angles") -> None:
        super().__init__(keys, allow_missing_keys=True)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.keys:
            d.setdefault(key, torch.full((3,), float("nan")))
        return d


def pair_preprocessing(spatial_size: Sequence[int], augmentation: Callable | None = None) -> Compose:
    """Transforms of a stage (a) record from ``{"image": path, "label": path}``.

    Args:
        spatial_size: the network input (H, W) (``spatial_size`` of the config).
        augmentation: the stage's random transform on ``image`` and ``label`` (``train#augmentation``), or None
            (validation).

    Returns:
        A ``Compose`` giving ``image`` ``(1, H, W)`` in [0, 1], ``label`` ``(1, H, W)`` in {0, 1}, ``angles`` ``(3,)`` NaN.
    """
    transforms: list[Callable] = [
        LoadGrayscaled(keys=["image", "label"]),
        SpineLabeld(keys="label", ref_key="image"),
        ResizePadd(
            keys=["image", "label"], spatial_size=spatial_size, mode=["bilinear", "nearest"], landmarks_key=None
        ),
    ]
    if augmentation is not None:
        transforms.append(augmentation)
    transforms += [
        UnknownAnglesd(keys="angles"),
        SelectItemsd(keys=["image", "label", "angles"]),
        EnsureTyped(keys=["image", "label", "angles"], dtype=torch.float32, track_meta=False),
    ]
    return Compose(transforms)
