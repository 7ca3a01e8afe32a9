# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The label file MONAI Label returns from ``/infer``: the spine mask in the radiograph's own layout.

The bundle works in image order, ``(H, W)`` (rows, columns: ``scripts.data.loading``), while monailabel's writer
assumes MONAI's spatial order ``(W, H)`` and transposes before handing the array to ITK; and it picks the input's
extension, so a ``.jpg`` radiograph gets a lossy JPEG label. This module is the boundary:

- :func:`write_png_label` writes the ``(H, W)`` mask as a lossless 8-bit PNG of the radiograph's height and width;
- :func:`to_monai_order` gives monailabel's own writer the ``(W, H)`` array it expects, for any other extension a
  request asks for (``result_extension``: ``.nii.gz``, ``.nrrd``, ...).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["LOSSLESS_EXTENSIONS", "to_monai_order", "write_png_label"]

LOSSLESS_EXTENSIONS: tuple[str, ...] = (".png",)
"""Extensions this module writes itself; others go through monailabel's writer."""


def _label_2d(mask: np.ndarray) -> np.ndarray:
    """The mask as a ``(H, W)`` uint8 array with a leading channel of 1 dropped; a clear error otherwise."""
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"a spine label must be (H, W) or (1, H, W), got shape {tuple(np.asarray(mask).shape)}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"a spine label holds label indices 0..255, got values {array.min()}..{array.max()}")
    return array.astype(np.uint8)


def write_png_label(mask: np.ndarray, folder: str | Path | None = None) -> Path:
    """Write ``mask`` ``(H, W)`` (or ``(1, H, W)``) as an 8-bit greyscale PNG, one pixel per radiograph pixel.

    Args:
        mask: label indices (0 background, 1 spine), in image order: rows are the radiograph's height.
        folder: where to put the new file (a fresh temporary name; nothing existing is overwritten); the system's
            temporary folder by default, as monailabel's writer does.

    Returns:
        The written file; MONAI Label streams it to the client.

    Raises:
        ValueError: when ``mask`` is not 2D (after a leading channel of 1) or holds values outside 0..255.
    """
    label = _label_2d(mask)
    with tempfile.NamedTemporaryFile(suffix=".png", dir=folder, delete=False) as handle:
        Image.fromarray(label, mode="L").save(handle, format="PNG")
        return Path(handle.name)


def to_monai_order(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` (or ``(1, H, W)``) image order to MONAI's ``(W, H)``, which monailabel's writer transposes back.

    Returns:
        A contiguous uint8 array ``(W, H)``.
    """
    return np.ascontiguousarray(_label_2d(mask).T)
