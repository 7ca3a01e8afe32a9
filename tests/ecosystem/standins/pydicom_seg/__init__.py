# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Stand-in for ``pydicom_seg`` (see README.md here): pydicom-seg 0.4.1 fails to import with pydicom 3.

monailabel imports it for DICOM SEG conversion (``monailabel.datastore.utils.convert``), which a local datastore of
radiographs never uses. Every name refuses when used.
"""

from __future__ import annotations

import types

__all__ = ["MultiClassReader", "MultiClassWriter", "template"]

_MESSAGE = "pydicom_seg is a stand-in (tests/ecosystem/standins): pydicom-seg 0.4.1 does not import with pydicom 3"


class MultiClassReader:
    """Refuse to read DICOM SEG."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(_MESSAGE)


class MultiClassWriter:
    """Refuse to write DICOM SEG."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(_MESSAGE)


def _from_dcmqi_metainfo(*args: object, **kwargs: object) -> None:
    raise RuntimeError(_MESSAGE)


template = types.SimpleNamespace(from_dcmqi_metainfo=_from_dcmqi_metainfo)
