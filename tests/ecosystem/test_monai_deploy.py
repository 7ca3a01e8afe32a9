# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The MONAI Deploy operator and application on CPU: the operator's work without the SDK, the app under it when given.

The exported TorchScript bundle, run by ``scripts.deploy`` on a folder of radiographs, must write the files the
bundle's own ``inference`` writes with the eager checkpoint, and the command must name a bad file and fail.

The SDK itself installs and runs on a CPU machine, best in an environment of its own (it brings holoscan, cupy and
tritonclient, and makes every ``import monai`` import it): ``SEG4REG_DEPLOY_PYTHON=<that env's python>`` runs the
application under the SDK as well (docs/monai_deploy.md says how to build that environment).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from monai.bundle import ConfigParser, ckpt_export
from PIL import Image
from tiny_bundle import CONFIGS, META, REPO, write_checkpoint, write_tiny_overlay

from scripts.deploy.exported import load_exported_bundle
from scripts.deploy.folder_operator import HAS_DEPLOY_SDK, Seg4RegFolderOperator, run_exported_bundle
from scripts.inference.runner import InferenceError

__all__: list[str] = []


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | list[Path]]:
    """A tiny checkpoint, its configs, and its TorchScript export (in-process ``ckpt_export``)."""
    folder = tmp_path_factory.mktemp("deploy")
    configs = [CONFIGS / "inference.yaml", write_tiny_overlay(folder)]
    ckpt = folder / "models" / "model.pt"
    write_checkpoint(configs, ckpt)
    model = folder / "export" / "seg4reg.ts"
    model.parent.mkdir()
    ckpt_export(
        net_id="network_def",
        filepath=str(model),
        ckpt_file=str(ckpt),
        meta_file=str(META),
        config_file=[str(p) for p in configs],
        ckpt_dir=str(ckpt.parent),  # network_def is built from the settings recorded beside this model
    )
    return {"configs": configs, "ckpt": ckpt, "model": model}


@pytest.fixture(scope="module")
def radiographs(phantom_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("radiographs")
    for path in sorted((phantom_root / "data" / "training").glob("*.jpg"))[:2]:
        shutil.copy(path, folder / path.name)
    return folder


def _bundle_inference(exported: dict, images: Path, out: Path) -> None:
    """The bundle's own inference workflow (eager network, model.pt) on ``images``."""
    parser = ConfigParser()
    parser.read_config([str(p) for p in exported["configs"]])
    parser.read_meta(str(META))
    for key, value in {
        "dataset_dir": str(images),
        "output_dir": str(out),
        "ckpt_path": str(exported["ckpt"]),
        "progress_bar": False,
    }.items():
        parser[key] = value
    parser.get_parsed_content("evaluator").run()


def test_loads_the_network_metadata_and_configs(exported):
    bundle = load_exported_bundle(exported["model"].parent)  # a folder holding one model, as MONAI Deploy passes it
    assert list(bundle.configs) == ["inference.json", "tiny.json"]
    assert bundle.metadata["version"] == json.loads(META.read_text())["version"]
    with pytest.raises(ValueError, match="holds no config"):
        load_exported_bundle(exported["model"], config_order=["inference.json", "cpu.json"])


def test_operator_work_writes_what_the_bundle_inference_writes(exported, radiographs, tmp_path):
    result = run_exported_bundle(exported["model"], radiographs, tmp_path / "deploy", progress_bar=False)
    assert len(result["processed"]) == 2 and not result["failed"]
    _bundle_inference(exported, radiographs, tmp_path / "bundle")

    ours = sorted(p.name for p in (tmp_path / "deploy").iterdir())
    assert ours == sorted(p.name for p in (tmp_path / "bundle").iterdir()) and "summary.csv" in ours
    for path in (tmp_path / "deploy").glob("*.json"):
        got, want = json.loads(path.read_text()), json.loads((tmp_path / "bundle" / path.name).read_text())
        assert got.pop("checkpoint") == str(exported["model"]) and want.pop("checkpoint") == str(exported["ckpt"])
        angles, expected = got.pop("angles_deg"), want.pop("angles_deg")
        np.testing.assert_allclose([angles[k] for k in expected], list(expected.values()), rtol=1e-5, atol=1e-3)
        assert got == want
    for path in (tmp_path / "deploy").glob("*_mask.png"):
        got, want = np.asarray(Image.open(path)), np.asarray(Image.open(tmp_path / "bundle" / path.name))
        assert got.shape == want.shape and np.mean(got != want) < 1e-3  # float rounding may flip a border pixel


@pytest.mark.slow  # a subprocess round trip of tens of seconds
def test_command_names_a_bad_file_and_processes_the_others(exported, radiographs, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(radiographs, images)
    (images / "notes.png").write_text("not an image")
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [sys.executable, "-m", "scripts.deploy", "-i", str(images), "-o", str(tmp_path / "out")]
    result = subprocess.run(
        [*command, "-m", str(exported["model"])], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "notes.png" in result.stderr
    with (tmp_path / "out" / "summary.csv").open() as handle:
        status = {row["name"]: row["status"] for row in csv.DictReader(handle)}
    assert sorted(status.values()) == ["failed", "ok", "ok"] and status["notes.png"] == "failed"

    again = subprocess.run(
        [*command, "-m", str(exported["model"])], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 1 and "already exist" in again.stderr  # nothing overwritten without SEG4REG_OVERWRITE


def test_app_under_the_sdk_writes_what_the_operator_writes(exported, radiographs, tmp_path):
    python = os.environ.get("SEG4REG_DEPLOY_PYTHON") or (sys.executable if HAS_DEPLOY_SDK else "")
    if not python:
        pytest.skip("no MONAI Deploy App SDK here: set SEG4REG_DEPLOY_PYTHON to the python of an environment with it")
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle"), "CUDA_VISIBLE_DEVICES": ""}
    command = [python, "-m", "scripts.deploy", "-i", str(radiographs), "-o", str(tmp_path / "sdk")]
    result = subprocess.run(
        [*command, "-m", str(exported["model"].parent)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "Graph execution finished" in log  # the Holoscan executor ran the operator, not the fallback
    run_exported_bundle(exported["model"], radiographs, tmp_path / "direct", progress_bar=False)
    for path in (tmp_path / "direct").iterdir():
        assert path.read_bytes() == (tmp_path / "sdk" / path.name).read_bytes(), path.name


@pytest.mark.skipif(HAS_DEPLOY_SDK, reason="the MONAI Deploy App SDK is installed here")
def test_operator_needs_the_sdk_only_when_built(exported, tmp_path):
    from monai.utils import OptionalImportError

    with pytest.raises(OptionalImportError):
        Seg4RegFolderOperator(None, model_path=exported["model"], input_folder=tmp_path, output_folder=tmp_path)
    with pytest.raises(InferenceError, match=r"notes\.png"):
        (tmp_path / "notes.png").write_text("not an image")
        run_exported_bundle(exported["model"], tmp_path, tmp_path / "out", progress_bar=False)
