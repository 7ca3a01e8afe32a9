# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""A DICOM file writer for the tests (the loaders, inference on folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

__all__ = ["write_dicom"]


def write_dicom(
    path: Path,
    stored: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    slope: float | None = None,
    intercept: float | None = None,
    rows: int | None = None,
    **extra: object,
) -> Path:
    """Write a grayscale DICOM file (Secondary Capture, 16 bits allocated) of ``stored`` (H, W) at ``path``.

    ``rows`` overrides the Rows attribute (to write broken files); ``slope``/``intercept`` add a rescale; ``extra``
    sets any other attribute by keyword (e.g. ``PixelSpacing=[0.15, 0.2]``).
    """
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows = stored.shape[0] if rows is None else rows
    dataset.Columns = stored.shape[1]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    if slope is not None:
        dataset.RescaleSlope = slope
        dataset.RescaleIntercept = intercept
    for keyword, value in extra.items():
        setattr(dataset, keyword, value)
    dataset.PixelData = stored.astype("<u2").tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path
