# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Load a radiograph of any common file type as a (1, H, W) float32 grayscale MetaTensor in [0, 1].

Layout: channel first, rows are image y and columns image x, so the landmark ``(x, y)`` lies in pixel ``[:, y, x]`` (unlike
MONAI's ``LoadImage``, whose PIL reader returns the transposed (W, H) layout). The file types, the intensity scaling
and the metadata are those of :func:`scripts.data.decode.read_grayscale`, which these MONAI transforms wrap; the
metadata goes on the MetaTensor's ``meta``, and its ``affine`` carries the pixel spacing used (DICOM).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform, Transform

from scripts.data.decode import read_grayscale, used_spacing

__all__ = ["LoadGrayscale", "LoadGrayscaled"]


class LoadGrayscale(Transform):
    """Load an image file as a (1, H, W) float32 MetaTensor in [0, 1], rows = y, columns = x.

    See the module docstring for the file types, the intensity scaling and the metadata recorded in ``meta``.

    Raises:
        ValueError: naming the file and what is wrong with it (missing, truncated, not an image, zero-sized, ...).
    """

    def __call__(self, filename: str | Path) -> MetaTensor:
        """Args:
            filename: path of the image.

        Returns:
            (1, H, W) MetaTensor.
        """
        if not isinstance(filename, str | Path):
            raise TypeError(f"filename must be a str or Path, got {type(filename).__name__}.")
        pixels, meta = read_grayscale(filename)
        affine = torch.eye(4, dtype=torch.float64)
        spacing = used_spacing(meta)
        if spacing is not None:
            affine[0, 0], affine[1, 1] = float(spacing[0]), float(spacing[1])
        return MetaTensor(torch.from_numpy(pixels).unsqueeze(0), affine=affine, meta=meta)


class LoadGrayscaled(MapTransform):
    """Dictionary wrapper of :class:`LoadGrayscale`: replaces each path under ``keys`` by its (1, H, W) image.

    The metadata lives on the MetaTensor (``d[key].meta``), not in a ``<key>_meta_dict``.

    Args:
        keys: keys holding image paths.
        allow_missing_keys: skip absent keys instead of raising.
    """

    def __init__(self, keys: KeysCollection = "image", allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadGrayscale()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d
