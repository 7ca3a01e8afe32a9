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
    command += [
        "--ckpt_dir",
        str(ROOT / "no_model_here"),
    ]  # no record: the paper's network, whatever bundle/models holds
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr


def test_config_holds_the_real_size_networks(tmp_path) -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(CONFIG)
    parser["ckpt_dir"] = str(tmp_path)  # no trained model here: the paper's settings
    settings = parser.get_parsed_content("network_settings")
    assert (settings["segmenter_backbone"], settings["segmenter_depth"], settings["roie"]) == ("resnet", 50, True)
    network = parser.get_parsed_content("network_def")
    assert network.segmenter.gate is not None and network.regressor.backbone == "resnet18"
    assert parser["network_def"]["_target_"] == "scripts.networks.definition.build_seg4reg"
