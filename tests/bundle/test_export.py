# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""``python -m monai.bundle ckpt_export`` writes TorchScript that carries the bundle's configs and answers as eagerly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from tiny_bundle import CONFIGS, TINY_SIZE, export_torchscript, write_checkpoint, write_tiny_overlay

from scripts.networks.seg4reg import split_output

__all__: list[str] = []


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module, list[Path]]:
    """A tiny checkpoint exported by the command: (the .ts file, the eager network, the config files used)."""
    folder = tmp_path_factory.mktemp("export")
    configs = [CONFIGS / "inference.yaml", write_tiny_overlay(folder)]
    network = write_checkpoint(configs, folder / "models" / "model.pt")
    out = folder / "model.ts"
    result = export_torchscript(configs, folder / "models" / "model.pt", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, network, configs


def test_export_carries_metadata_and_every_config(exported):
    path, _, _ = exported
    with zipfile.ZipFile(path) as archive:
        extras = sorted(Path(name).name for name in archive.namelist() if "/extra/" in name)
    assert extras == ["inference.json", "metadata.json", "tiny.json"]

    files = {"metadata.json": "", "inference.json": "", "tiny.json": ""}
    torch.jit.load(str(path), _extra_files=files)
    metadata = json.loads(files["metadata.json"])
    assert metadata["version"] == json.loads((CONFIGS / "metadata.json").read_text())["version"]
    assert metadata["network_data_format"]["outputs"]["pred"]["num_channels"] == 6
    assert json.loads(files["inference.json"])["network_def"]["_target_"] == "scripts.networks.definition.build_seg4reg"
    assert json.loads(files["tiny.json"])["network_overrides"]["spatial_size"] == list(TINY_SIZE)


def test_exported_model_gives_the_eager_masks_and_angles(exported):
    path, network, _ = exported
    scripted = torch.jit.load(str(path), map_location="cpu").eval()
    torch.manual_seed(1)
    for shape in [(1, 1, *TINY_SIZE), (2, 1, 80, 48)]:  # the network size, and another one
        x = torch.rand(shape)
        # the profiling executor's optimisation passes cost seconds and do not change the result
        with torch.no_grad(), torch.jit.optimized_execution(False):
            ours, eager = split_output(scripted(x)), split_output(network(x))
        assert torch.equal(ours["seg"].argmax(dim=1), eager["seg"].argmax(dim=1))
        torch.testing.assert_close(ours["seg"], eager["seg"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours["cam"], eager["cam"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours["angles"], eager["angles"], rtol=1e-5, atol=1e-4)
