# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI bundle conformance of the inference side.

What the rest of the suite already checks: ``verify_metadata`` (tests/bundle/test_metadata.py), ``verify_net_in_out``
on the paper-size network (tests/networks/test_inference_config.py) and ``check_properties()`` of the five training
stages (tests/integration/test_training_workflows.py). Here: the property ids of the inference and evaluation workflows, and
``verify_net_in_out`` on the network of the CPU recipe, the one trained on this project's machines.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow
from monai.bundle.properties import InferProperties
from monai.bundle.utils import ID_SEP_KEY
from tiny_bundle import CONFIGS, META, REPO, recipe_settings, write_checkpoint, write_tiny_overlay

__all__: list[str] = []


@pytest.mark.parametrize(("run_id", "overlays"), [("inference", []), ("evaluate", ["evaluate.yaml"])])
def test_inference_configs_keep_monai_property_ids(run_id, overlays, phantom_root, tmp_path):
    config = ConfigParser.load_config_file(str(CONFIGS / "inference.yaml"))
    required = [p["id"] for p in InferProperties.values() if p["required"] and not p["id"].startswith("_meta_")]
    missing = [key for key in required if ID_SEP_KEY not in key and key not in config]
    assert not missing, f"configs/inference.yaml lacks the MONAI inference property ids {missing}"
    absent = [name for name in overlays if not (CONFIGS / name).is_file()]
    assert not absent, f"configs lack {absent}"

    configs = [CONFIGS / "inference.yaml", *(CONFIGS / name for name in overlays), write_tiny_overlay(tmp_path)]
    write_checkpoint(configs, tmp_path / "models" / "model.pt")
    dataset_dir = phantom_root if run_id == "evaluate" else phantom_root / "data" / "training"
    workflow = ConfigWorkflow(
        config_file=[str(p) for p in configs],
        meta_file=str(META),
        logging_file=False,
        workflow_type="infer",
        run_id=run_id,
        ckpt_dir=str(tmp_path / "models"),
        dataset_dir=str(dataset_dir),
        output_dir=str(tmp_path / "out"),
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    assert workflow.network_def.out_channels == 6
    assert len(workflow.dataset) == 12  # the phantom split, as images or as labelled records


def test_verify_net_in_out_on_the_cpu_recipe_network():
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "monai.bundle", "verify_net_in_out", "network_def"]
    command += ["--meta_file", str(META), "--config_file", str(CONFIGS / "inference.yaml")]
    # no trained model here: the CPU recipe's settings stand in for the network.json training writes
    command += ["--network_overrides", str(recipe_settings(CONFIGS / "cpu.yaml")), "--ckpt_dir", str(REPO / "none")]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "data shape of network is verified with no error" in result.stdout + result.stderr
