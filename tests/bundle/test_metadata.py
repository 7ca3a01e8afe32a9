# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
META = REPO / "bundle" / "configs" / "metadata.json"
SCHEMA = REPO.parent / "shared" / "schemas" / "meta_schema_20240725.json"


def test_metadata_names_the_public_schema_file():
    meta = json.loads(META.read_text())
    assert meta["schema"].endswith("/" + SCHEMA.name)


def test_bundle_has_its_card_license_and_logging():
    for name in ("LICENSE", "docs/README.md", "configs/logging.conf"):
        assert (REPO / "bundle" / name).is_file(), name


def _verify(meta: Path, cwd: Path) -> subprocess.CompletedProcess:
    if not SCHEMA.is_file():
        pytest.skip(f"schema copy {SCHEMA} is absent (no network to download it)")
    command = [
        sys.executable,
        "-m",
        "monai.bundle",
        "verify_metadata",
        "--meta_file",
        str(meta),
        "--filepath",
        str(SCHEMA),
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_verify_metadata_against_the_schema_copy(tmp_path):
    result = _verify(META, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metadata is verified with no error" in result.stdout + result.stderr


def test_verify_metadata_rejects_a_broken_file(tmp_path):
    broken = json.loads(META.read_text())
    del broken["network_data_format"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(broken))
    result = _verify(path, tmp_path)
    assert result.returncode != 0 or "verified with no error" not in result.stdout + result.stderr
