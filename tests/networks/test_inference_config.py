# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The inference config's network passes MONAI's verify_net_in_out at the real size (PSPNet-ResNet-50, 512x256)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "bundle" / "configs" / "metadata.json"
CONFIG = ROOT / "bundle" / "configs" / "inference.yaml"


@pytest.mark.slow
def test_verify_net_in_out() -> None:
    assert META.is_file(), f"{META} is missing"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "monai.bundle", "verify_net_in_out", "network_def"]
    command += ["--meta_file", str(META), "--config_file", str(CONFIG)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


def test_config_holds_the_real_size_networks() -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(CONFIG)
    assert parser.get_parsed_content("segmenter#depth") == 50 and parser.get_parsed_content("segmenter#roie") is True
    assert parser.get_parsed_content("regressor#backbone") == "resnet18"
    assert parser["network_def"]["_target_"] == "scripts.networks.seg4reg.Seg4RegPlus"
