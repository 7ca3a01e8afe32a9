# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""DICOM file writers for the tests (the loaders, inference on folders), uncompressed or in a compressed syntax.

RLE Lossless is encoded by pydicom itself, JPEG-LS by ``pyjpegls`` and JPEG 2000 by ``pylibjpeg-openjpeg`` (through
``Dataset.compress``). No permissively licensed encoder of JPEG Lossless exists for pydicom, so
:func:`jpeg_lossless_frame` assembles that bitstream here (ITU-T T.81 process 14, selection value 1), independently of
the decoder that reads it back.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

__all__ = ["COMPRESSED_SYNTAXES", "jpeg_lossless_frame", "write_dicom"]

# transfer syntax -> the pydicom encoding plugin that makes it (None: assembled by jpeg_lossless_frame)
COMPRESSED_SYNTAXES: dict[UID, str | None] = {
    RLELossless: "pydicom",
    JPEGLSLossless: "pyjpegls",
    JPEG2000Lossless: "pylibjpeg",
    JPEGLosslessSV1: None,
}


def _marker(code: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | code, len(payload) + 2) + payload


def jpeg_lossless_frame(stored: np.ndarray, precision: int) -> bytes:
    """A JPEG Lossless codestream (SOF3, one component, predictor 1 "left", point transform 0) of ``stored``.

    Args:
        stored: (H, W) unsigned integers below ``2**precision``.
        precision: sample precision P in bits, 2 to 16.

    Returns:
        The codestream from SOI to EOI, padded with a null byte to an even length as DICOM fragments require.
    """
    rows, columns = stored.shape
    values = stored.astype(np.int64)
    # predictor 1 (T.81 H.1.2.1): the left neighbour; the first row's first sample 2**(P-1), other rows' the one above
    predicted = np.empty_like(values)
    predicted[:, 1:] = values[:, :-1]
    predicted[1:, 0] = values[:-1, 0]
    predicted[0, 0] = 2 ** (precision - 1)
    differences = (values - predicted).ravel()
    # one Huffman table: the 17 difference categories 0..16 all get 5-bit codes, category k the code k
    bits = []
    for difference in differences.tolist():
        category = abs(difference).bit_length()
        bits.append(format(category, "05b"))
        if 0 < category < 16:
            extra = difference if difference > 0 else difference + (1 << category) - 1
            bits.append(format(extra, f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with 1-bits
    packed = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    scan = packed.replace(b"\xff", b"\xff\x00")  # byte stuffing: a 0xFF in the data is followed by 0x00
    code_lengths = bytes([0, 0, 0, 0, 17] + [0] * 11)
    huffman = _marker(0xC4, bytes([0x00]) + code_lengths + bytes(range(17)))
    frame = _marker(0xC3, struct.pack(">BHHB3B", precision, rows, columns, 1, 1, 0x11, 0))
    scan_header = _marker(0xDA, bytes([1, 1, 0x00, 1, 0, 0x00]))
    codestream = b"\xff\xd8" + huffman + frame + scan_header + scan + b"\xff\xd9"
    return codestream + b"\x00" * (len(codestream) % 2)


def write_dicom(
    path: Path,
    stored: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    slope: float | None = None,
    intercept: float | None = None,
    rows: int | None = None,
    syntax: UID = ExplicitVRLittleEndian,
    **extra: object,
) -> Path:
    """Write a grayscale DICOM file (Secondary Capture, 16 bits allocated) of ``stored`` (H, W) at ``path``.

    ``rows`` overrides the Rows attribute (to write broken files); ``slope``/``intercept`` add a rescale; ``syntax``
    is the transfer syntax, uncompressed or one of :data:`COMPRESSED_SYNTAXES`; ``extra`` sets any other attribute
    by keyword (e.g. ``PixelSpacing=[0.15, 0.2]``).
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
    if syntax == JPEGLosslessSV1:
        dataset.PixelData = encapsulate([jpeg_lossless_frame(stored, bits_stored)])
        dataset["PixelData"].VR = "OB"
        dataset["PixelData"].is_undefined_length = True
        dataset.file_meta.TransferSyntaxUID = syntax
    elif syntax != ExplicitVRLittleEndian:
        dataset.compress(syntax, encoding_plugin=COMPRESSED_SYNTAXES[syntax], generate_instance_uid=False)
    dataset.save_as(path, enforce_file_format=True)
    return path
