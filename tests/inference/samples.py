# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Test material for inference: small image files of every type, good and bad (the tiny network: tests/tiny_bundle.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dicom_files import write_dicom
from PIL import Image

__all__ = ["write_bad_images", "write_good_images"]


def write_good_images(folder: Path, seed: int = 0) -> dict[str, tuple[int, int]]:
    """One small image of each supported kind; returns ``{file name: (H, W)}``.

    8-bit gray jpg, 16-bit png, RGB png, 8-bit gray png, and a MONOCHROME1 DICOM with a pixel spacing; sizes differ and
    are not 2:1, so mapping back to the original resolution is exercised.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    Image.fromarray(rng.integers(0, 256, (150, 60), dtype=np.uint8)).save(folder / "gray8.jpg")
    sizes["gray8.jpg"] = (150, 60)
    Image.fromarray(rng.integers(0, 65536, (97, 41), dtype=np.uint16)).save(folder / "gray16.png")
    sizes["gray16.png"] = (97, 41)
    Image.fromarray(rng.integers(0, 256, (80, 70, 3), dtype=np.uint8), mode="RGB").save(folder / "colour.png")
    sizes["colour.png"] = (80, 70)
    Image.fromarray(rng.integers(0, 256, (64, 32), dtype=np.uint8)).save(folder / "exact.png")
    sizes["exact.png"] = (64, 32)
    write_dicom(
        folder / "mono1.dcm", rng.integers(0, 4096, (120, 50)), photometric="MONOCHROME1", PixelSpacing=[0.15, 0.2]
    )
    sizes["mono1.dcm"] = (120, 50)
    return sizes


def write_bad_images(folder: Path) -> dict[str, str]:
    """A truncated JPEG, a text file named .png and a 1-pixel-wide png; returns ``{file name: expected reason}``."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((120, 60), 128, np.uint8)).save(folder / "whole.jpg")
    data = (folder / "whole.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "whole.jpg").unlink()
    (folder / "notes.png").write_text("this is not an image\n")
    Image.fromarray(np.full((100, 1), 200, np.uint8)).save(folder / "thin.png")
    return {
        "truncated.jpg": "truncated",
        "notes.png": "not an image format",
        "thin.png": "too small to hold a spine",
    }
