# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Write the spine mask as ``<stem>_mask.nii.gz``, the format MONAI Label datastores and 3D Slicer open.

Orientation (docs/dicom.md): the file holds one slice of shape (W, H, 1), uint8 0 background and 1 spine. NIfTI's i
axis runs along the columns and j along the rows, MONAI's (W, H) spatial order, so ``data[x, y, 0] = mask[y, x]``. The
affine places a frontal radiograph in RAS+ world coordinates as it is conventionally displayed, the patient's right on
the viewer's left and the head up: i (column x, spacing ``sx``) points to the patient's left (world ``-x``), j (row y,
spacing ``sy``) to the feet (world ``-z``) and the slice axis k to the front (world ``+y``), voxel (0, 0, 0) at the
origin::

    [[-sx,   0, 0, 0],
     [  0,   0, 1, 0],
     [  0, -sy, 0, 0],
     [  0,   0, 0, 1]]

A viewer's coronal view therefore draws the mask as the radiograph is stored: row 0 on top, column 0 on the left. One
slice of a 3D image, rather than a 2D image, because ITK (Slicer's reader) reads a 2D file into a 3D volume with a
singular direction for a coronal plane and refuses it ("Bad direction, determinant is 0"). Without a pixel spacing the
affine uses 1 and the header's spatial unit is "unknown" instead of "mm".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["MASK_NIFTI_SUFFIX", "mask_affine", "write_mask_nifti"]

MASK_NIFTI_SUFFIX = "_mask.nii.gz"


def _fail(stem: str, problem: str) -> ValueError:
    return ValueError(f"cannot write the NIfTI mask of {stem!r}: {problem}")


def mask_affine(spacing: Sequence[float] | None) -> np.ndarray:
    """The (4, 4) voxel-to-RAS affine of the module docstring for a (row, column) ``spacing`` in mm (None: 1 mm)."""
    row, column = (1.0, 1.0) if spacing is None else (float(spacing[0]), float(spacing[1]))
    return np.array(
        [[-column, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -row, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float64
    )


def write_mask_nifti(
    mask: np.ndarray, output_dir: str | Path, stem: str, spacing: Sequence[float] | None = None
) -> Path:
    """Write ``mask`` as ``<output_dir>/<stem>_mask.nii.gz`` (replacing a previous run's file in one rename).

    Args:
        mask: (H, W) spine mask, 0 background and 1 spine (bool or any integer or float type holding only 0 and 1).
        output_dir: folder to write in (created when missing).
        stem: the radiograph's file stem.
        spacing: (row, column) pixel spacing in mm, e.g. ``scripts.data.decode.used_spacing(meta)``; None when unknown.

    Returns:
        The path written.

    Raises:
        ValueError: naming the stem, when the mask is not 2D, is empty or holds other values than 0 and 1, or the
            spacing is not two positive finite numbers.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or min(mask.shape) == 0:
        raise _fail(stem, f"expected a non-empty (H, W) mask, got shape {mask.shape}.")
    values = np.unique(mask)
    if not np.all(np.isin(values, (0, 1))):
        raise _fail(stem, f"the mask must hold only 0 and 1, got values {values[:5].tolist()}.")
    if spacing is not None:
        spacing = [float(value) for value in np.asarray(spacing, dtype=np.float64).ravel()]
        if len(spacing) != 2 or not all(np.isfinite(value) and value > 0 for value in spacing):
            raise _fail(stem, f"the pixel spacing must be two positive finite numbers in mm, got {spacing}.")
    data = np.ascontiguousarray(mask.astype(np.uint8).T[:, :, np.newaxis])  # (W, H, 1)
    image = nib.Nifti1Image(data, mask_affine(spacing))
    image.set_data_dtype(np.uint8)
    image.header.set_xyzt_units(xyz="mm" if spacing is not None else "unknown")
    image.header["descrip"] = b"Seg4Reg+ spine mask: 0 background, 1 spine"
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    path = Path(output_dir) / f"{stem}{MASK_NIFTI_SUFFIX}"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{stem}.tmp{MASK_NIFTI_SUFFIX}")
    nib.save(image, temporary)
    os.replace(temporary, path)
    return path
