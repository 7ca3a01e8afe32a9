# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Decode a radiograph of any common file type into an (H, W) float32 grayscale array in [0, 1], with its metadata.

Numpy, PIL and (for DICOM files only, imported when one is read) pydicom: nothing from torch or MONAI, so the fast
single-image path (:mod:`scripts.inference.fast`) starts in a fraction of a second. :mod:`scripts.data.loading` wraps
this in MONAI transforms that return (1, H, W) MetaTensors.

Layout: channel first, rows are image y and columns image x, so the landmark ``(x, y)`` lies in pixel ``[:, y, x]`` (unlike
MONAI's ``LoadImage``, whose PIL reader returns the transposed (W, H) layout).

Intensities:

- 8-bit grayscale (jpg, png, ...): divided by 255. Palette and colour images (RGB, RGBA, CMYK, ...): ITU-R 601 luminance
  ``0.299 R + 0.587 G + 0.114 B`` of the colour channels (alpha ignored), divided by 255. 1-bit images: 0 or 1.
- 16-bit png (PIL modes ``I;16*``, or ``I`` for a png): divided by ``2**bits - 1``, ``bits`` being the depth the samples
  were written with: the ``sBIT`` chunk's when the samples fit it, otherwise the smallest of 8, 10, 12, 14 and 16 bits
  that holds the largest value (a 12-bit radiograph stored unscaled is not read 16 times too dark); logged, and
  recorded as ``bits_used`` / ``bits_source`` in the metadata.
- DICOM, recognised by the ``DICM`` marker after the 128-byte preamble or by the ``.dcm``/``.dicom`` suffix: stored values
  are kept to their ``BitsStored`` bits, passed through the modality LUT (rescale slope and intercept), and scaled from
  the range those bits can hold to [0, 1]; ``MONOCHROME1`` is inverted so bone is bright, like every other input.
  Uncompressed and compressed transfer syntaxes alike: RLE Lossless, JPEG Lossless, JPEG-LS and JPEG 2000 decode
  through pydicom's pixel-data plugins (``python-gdcm`` covers all four; docs/dicom.md says why).
- Other 32-bit integer or float images: divided by 65535 when the values fit 16 bits (or kept when already in
  [0, 1]), otherwise min-max normalised, with a logged warning.

EXIF orientation is not applied: landmarks refer to the stored raster.

Metadata (a dict beside the array; :class:`~scripts.data.loading.LoadGrayscale` puts it on the MetaTensor's ``meta``,
which MONAI carries through its transforms and collation):
``filename_or_obj`` (the path, as MONAI's loaders name it), ``original_size`` and ``spatial_shape`` (both the (H, W)
on disk, int64 arrays), ``original_channel_dim`` (0), and, for DICOM files that have them, ``pixel_spacing`` and
``imager_pixel_spacing`` (row, column) in mm. The spacing used is ``PixelSpacing``, else ``ImagerPixelSpacing`` (the
detector's pitch, not corrected for the X-ray magnification): ``spacing_source`` names that tag, or is ``"none"`` (every
non-DICOM file, and DICOM files with neither); the loader's MetaTensor ``affine`` carries the spacing used.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, UnidentifiedImageError

if TYPE_CHECKING:
    import pydicom

__all__ = [
    "DICOM_SUFFIXES",
    "SPACING_TAGS",
    "is_dicom",
    "read_grayscale",
    "used_spacing",
]

logger = logging.getLogger(__name__)

DICOM_SUFFIXES = (".dcm", ".dicom")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LUMINANCE = np.array([0.299, 0.587, 0.114])
# DICOM spacing tags, in the order they are preferred, and the metadata key each is recorded under
SPACING_TAGS = {"PixelSpacing": "pixel_spacing", "ImagerPixelSpacing": "imager_pixel_spacing"}
NO_SPACING = "none"


def is_dicom(path: str | Path) -> bool:
    """Whether ``path`` is a DICOM file: the ``DICM`` marker at byte 128, or a DICOM suffix."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    with path.open("rb") as handle:
        header = handle.read(132)
    return header[128:132] == b"DICM"


def _fail(path: Path, problem: str) -> ValueError:
    return ValueError(f"cannot load image {str(path)!r}: {problem}")


def _check_png_header(path: Path) -> None:
    # PIL reports a png with a zero width or height as merely "cannot identify image file": say what is wrong.
    with path.open("rb") as handle:
        header = handle.read(24)
    if header[:8] == _PNG_SIGNATURE and header[12:16] == b"IHDR" and len(header) == 24:
        width, height = struct.unpack(">II", header[16:24])
        if width == 0 or height == 0:
            raise _fail(path, f"the image has a zero dimension (H={height}, W={width}).")


def _png_significant_bits(path: Path) -> int | None:
    """The gray sample's significant bits of a png's ``sBIT`` chunk, or None when the file has none."""
    with path.open("rb") as handle:
        if handle.read(8) != _PNG_SIGNATURE:
            return None
        while True:
            head = handle.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            if kind == b"sBIT":
                data = handle.read(length)
                return int(data[0]) if data else None
            if kind in (b"IDAT", b"IEND"):  # sBIT precedes the image data
                return None
            handle.seek(length + 4, 1)  # the chunk's data and CRC


def _sixteen_bit(values: np.ndarray, path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Scale a 16-bit png's samples to [0, 1] by the bit depth they were written with, and say which one that was.

    Exported radiographs are often 10 to 14-bit values stored unscaled in a 16-bit png; divided by 65535 they reach
    the network many times too dark. The depth is the ``sBIT`` chunk's when the samples fit it (a file that follows
    the png rule of scaling samples up to 16 bits does not, and is read as 16-bit), otherwise the smallest of 8, 10,
    12, 14 and 16 bits that holds the image's largest value.
    """
    values = values.astype(np.float64)
    high = float(values.max()) if values.size else 0.0
    declared = _png_significant_bits(path)
    if declared is not None and 1 <= declared <= 16 and high <= 2**declared - 1:
        bits, source = declared, "sBIT chunk"
    else:
        bits = next(b for b in (8, 10, 12, 14, 16) if high <= 2**b - 1)
        source = "largest value" if declared is None else f"largest value (sBIT {declared} does not hold it)"
    logger.info("%s: 16-bit png read as %d-bit samples (from its %s).", path, bits, source)
    return values / (2**bits - 1), {"bits_used": bits, "bits_source": "sBIT" if source == "sBIT chunk" else "range"}


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ _LUMINANCE


def _normalise_wide(values: np.ndarray, path: Path) -> np.ndarray:
    is_float = np.issubdtype(values.dtype, np.floating)
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if is_float and low >= 0.0 and high <= 1.0:
        return values
    if low >= 0.0 and high <= 65535.0:
        return values / 65535.0
    logger.warning("%s: values span [%g, %g], beyond 16 bits; min-max normalising.", path, low, high)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _read_pil(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    _check_png_header(path)
    try:
        with Image.open(path) as image:
            image.load()
            mode, file_format = image.mode, image.format
            if mode == "1":
                pixels = np.asarray(image, dtype=np.float64)
            elif mode == "L":
                pixels = np.asarray(image, dtype=np.float64) / 255.0
            elif mode in ("LA", "La"):
                pixels = np.asarray(image, dtype=np.float64)[..., 0] / 255.0
            elif mode.startswith("I;16") or (mode == "I" and file_format == "PNG"):  # older Pillow: I
                pixels, meta = _sixteen_bit(np.asarray(image), path)
                return pixels, meta
            elif mode in ("I", "F"):
                pixels = _normalise_wide(np.asarray(image), path)
            else:  # palette and colour modes
                pixels = _luminance(np.asarray(image.convert("RGB"))) / 255.0
    except UnidentifiedImageError as error:
        raise _fail(
            path, "the content is not an image format PIL recognises (wrong suffix, or not an image)."
        ) from error
    except Exception as error:  # PIL signals bad files with many types; all mean "not a readable image"
        raise _fail(path, f"not a readable image file ({type(error).__name__}: {error}).") from error
    return pixels, {}


def _dicom_range(dataset: pydicom.Dataset, pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Keep the stored bits, apply the modality LUT, and give the range the stored bits can map to."""
    bits_stored = int(dataset.get("BitsStored", pixels.dtype.itemsize * 8))
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    if signed:
        low, high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
        pixels = np.clip(pixels.astype(np.int64), low, high)
    else:
        low, high = 0, 2**bits_stored - 1
        pixels = pixels.astype(np.int64) & high
    from pydicom.pixels import apply_modality_lut

    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    if bits_stored <= 16:
        span = np.asarray(apply_modality_lut(np.arange(low, high + 1, dtype=np.int64), dataset), dtype=np.float64)
    else:
        span = np.asarray(apply_modality_lut(np.array([low, high], dtype=np.int64), dataset), dtype=np.float64)
    return values, float(span.min()), float(span.max())


def _read_dicom(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import pydicom  # only when a DICOM file is read: it takes a noticeable part of a second to import

    try:
        with path.open("rb") as handle:
            has_marker = handle.read(132)[128:132] == b"DICM"
        dataset = pydicom.dcmread(path, force=not has_marker)
    except Exception as error:
        raise _fail(path, f"not a readable DICOM file ({type(error).__name__}: {error}).") from error
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        raise _fail(path, "the DICOM file has no pixel data.")
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if rows == 0 or columns == 0:
        raise _fail(path, f"the image has a zero dimension (Rows={rows}, Columns={columns}).")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames != 1:
        raise _fail(path, f"expected a single-frame radiograph, got NumberOfFrames={frames}.")
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        syntax = getattr(dataset.file_meta.get("TransferSyntaxUID"), "name", "unknown transfer syntax")
        raise _fail(
            path, f"the DICOM pixel data ({syntax}) cannot be decoded ({type(error).__name__}: {error})."
        ) from error

    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if pixels.ndim == 3:  # colour: pydicom returns RGB
        bits = int(dataset.get("BitsStored", 8))
        image = _luminance(pixels) / (2**bits - 1)
    elif not np.issubdtype(pixels.dtype, np.integer):
        image = _normalise_wide(pixels, path)
    else:
        values, low, high = _dicom_range(dataset, pixels)
        image = (values - low) / (high - low) if high > low else np.zeros_like(values)
        if photometric == "MONOCHROME1":
            image = 1.0 - image

    meta: dict[str, Any] = {"spacing_source": NO_SPACING}
    for keyword, name in SPACING_TAGS.items():
        value = dataset.get(keyword)
        if value is not None and len(value) == 2:
            meta[name] = np.asarray([float(v) for v in value], dtype=np.float64)
            if meta["spacing_source"] == NO_SPACING:
                meta["spacing_source"] = keyword
    logger.info("%s: pixel spacing from %s.", path, meta["spacing_source"])
    return image, meta


def read_grayscale(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one image file as a grayscale (H, W) float32 array in [0, 1].

    Args:
        path: jpg, png (8 or 16 bit), any other format PIL reads, or DICOM (found by content or suffix).

    Returns:
        The (H, W) array and the metadata described in the module docstring.

    Raises:
        ValueError: naming the file, when it is missing, unreadable, truncated, not an image, empty or not finite.
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found.")
    if not path.is_file():
        raise _fail(path, "not a regular file.")
    pixels, meta = _read_dicom(path) if is_dicom(path) else _read_pil(path)
    if pixels.ndim != 2 or min(pixels.shape) == 0:
        raise _fail(path, f"expected a 2D grayscale image, got an array of shape {pixels.shape}.")
    if not np.all(np.isfinite(pixels)):
        raise _fail(path, "the image contains NaN or infinite values.")
    size = np.asarray(pixels.shape, dtype=np.int64)
    meta.setdefault("spacing_source", NO_SPACING)
    meta.update(
        {"filename_or_obj": str(path), "original_size": size, "spatial_shape": size.copy(), "original_channel_dim": 0}
    )
    return np.clip(pixels, 0.0, 1.0).astype(np.float32), meta


def used_spacing(meta: Mapping[str, Any]) -> np.ndarray | None:
    """The (row, column) pixel spacing in mm that ``meta["spacing_source"]`` names, or None when there is none."""
    source = meta.get("spacing_source", NO_SPACING)
    return None if source == NO_SPACING else np.asarray(meta[SPACING_TAGS[source]], dtype=np.float64)
