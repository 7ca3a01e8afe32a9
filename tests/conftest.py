# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Shared fixtures: the real AASCE split when it is beside the repository, small synthetic phantom datasets, and a
tiny inference bundle (recipe overlay and random checkpoint)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AASCE_ROOT = Path(os.environ.get("SEG4REG_AASCE_ROOT", REPO.parent / "shared" / "aasce" / "boostnet_labeldata"))


@pytest.fixture(scope="session")
def aasce_root() -> Path:
    """The real AASCE dataset root; tests using it skip where it is absent (people who clone the project lack it)."""
    if not (AASCE_ROOT / "labels" / "training" / "angles.csv").is_file():
        pytest.skip(f"AASCE data not found at {AASCE_ROOT} (set SEG4REG_AASCE_ROOT)")
    return AASCE_ROOT


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small phantom dataset in the AASCE layout (12 images, a quarter of radiograph size), shared by the session.

    Tests must not modify it; copy it (``shutil.copytree``) to corrupt it.
    """
    from scripts.data.phantoms import make_phantoms

    return make_phantoms(tmp_path_factory.mktemp("phantoms"), num=12, seed=3, size_scale=0.25)


@pytest.fixture(scope="session")
def tiny_inference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"overlay": tiny.yaml, "ckpt_dir": folder of model.pt}``: inference.yaml shrunk to the tiny test network."""
    from tiny_bundle import make_checkpoint, write_tiny_overlay

    folder = tmp_path_factory.mktemp("tiny_inference")
    return {"overlay": write_tiny_overlay(folder), "ckpt_dir": make_checkpoint(folder / "models").parent}
