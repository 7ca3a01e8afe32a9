# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The fast path (scripts.inference.fast) writes what the bundle's inference workflow writes, without torch or MONAI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_bundle import REPO, inference_workflow, make_checkpoint

from scripts.inference.fast import main
from scripts.inference.runner import InferenceError


def _images(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    for index, size in enumerate([(300, 110), (257, 96)]):
        rows = np.linspace(0, 255, size[0])[:, None] * np.ones(size[1])  # a smooth ramp with noise
        Image.fromarray(np.clip(rows + rng.normal(0, 20, size), 0, 255).astype(np.uint8)).save(folder / f"{index}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a real png")
    return folder


def _summary(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


@pytest.mark.parametrize("vertebrae", [False, True], ids=["spine mask", "vertebra labels"])
def test_the_fast_path_writes_what_the_workflow_writes(tiny_inference, tmp_path, capsys, vertebrae):
    models = make_checkpoint(tmp_path / "models", seed=2, segment_vertebrae=vertebrae).parent
    images = _images(tmp_path / "images")
    inference_workflow(tiny_inference, "export_onnx", "", tmp_path / "unused", ckpt_dir=models).run()
    (export,) = (models / ".onnx_cache").glob("*.onnx")
    with pytest.raises(RuntimeError) as failed:  # MONAI's config evaluation wraps the workflow's error
        inference_workflow(
            tiny_inference, "inference", images, tmp_path / "workflow", ckpt_dir=models, runtime="onnxruntime"
        ).run()
    assert isinstance(failed.value.__cause__, InferenceError) and "broken.png" in str(failed.value.__cause__)
    assert list((models / ".onnx_cache").glob("*.onnx")) == [export]  # the workflow served the same export

    status = main([str(images), "--ckpt_dir", str(models), "--output_dir", str(tmp_path / "fast")])
    assert status == 1  # the broken file failed, the others were written
    assert "broken.png" in capsys.readouterr().err

    for index in range(2):
        workflow = json.loads((tmp_path / "workflow" / f"{index}.json").read_text())
        fast = json.loads((tmp_path / "fast" / f"{index}.json").read_text())
        assert fast["angles_deg"] == pytest.approx(workflow["angles_deg"], abs=1e-3)
        assert fast["quality"]["flip_difference_deg"] == pytest.approx(
            workflow["quality"]["flip_difference_deg"], abs=1e-3
        )
        checks = [reason["check"] for reason in workflow["quality"]["reasons"]]
        assert [reason["check"] for reason in fast["quality"]["reasons"]] == checks
        assert "regressor_training_unknown" in checks  # the export recorded the checkpoint's (absent) training record
        for key in ("image_size", "curve_type", "severity", "outputs", "model_version"):
            assert fast[key] == workflow[key]
        assert ("geometry" in fast) == ("geometry" in workflow) == vertebrae
        if vertebrae:
            assert fast["geometry"]["status"] == workflow["geometry"]["status"]
        masks = [np.asarray(Image.open(tmp_path / run / f"{index}_mask.png")) for run in ("workflow", "fast")]
        assert masks[0].shape == masks[1].shape and np.mean(masks[0] == masks[1]) > 0.995
        cams = [
            np.asarray(Image.open(tmp_path / run / f"{index}_cam.png"), dtype=float) for run in ("workflow", "fast")
        ]
        assert np.abs(cams[0] - cams[1]).max() <= 1
    workflow_rows, fast_rows = (_summary(tmp_path / run / "summary.csv") for run in ("workflow", "fast"))
    assert (
        {name: row["status"] for name, row in fast_rows.items()}
        == {name: row["status"] for name, row in workflow_rows.items()}
        == {"0.png": "ok", "1.png": "ok", "broken.png": "failed"}
    )


def test_existing_outputs_and_a_missing_export_are_refused_before_anything_is_written(tiny_inference, tmp_path, capsys):
    models = make_checkpoint(tmp_path / "models").parent
    images = _images(tmp_path / "images")
    (images / "broken.png").unlink()
    assert main([str(images), "--ckpt_dir", str(models), "--output_dir", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(models / "model.pt") in error and "export_onnx" in error
    assert not (tmp_path / "out").exists()

    inference_workflow(tiny_inference, "export_onnx", "", tmp_path / "unused", ckpt_dir=models).run()
    assert main([str(images), "--ckpt_dir", str(models), "--output_dir", str(tmp_path / "out")]) == 0
    written = {path: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()}
    assert main([str(images), "--ckpt_dir", str(models), "--output_dir", str(tmp_path / "out")]) == 2
    assert "already exist" in capsys.readouterr().err
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "out").iterdir()} == written
    assert (
        main([str(images / "0.png"), "--ckpt_dir", str(models), "--output_dir", str(tmp_path / "out"), "--overwrite"])
        == 0
    )


def test_the_fast_path_imports_neither_torch_nor_monai():
    code = (
        "import sys, scripts.inference.fast; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'monai', 'ignite', 'mlflow', 'matplotlib'}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "bundle")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"
