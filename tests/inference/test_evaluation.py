# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""configs/evaluate.yaml run in-process on the phantom split: its files, its keys, and the project's metric values."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_bundle import inference_workflow

from scripts.data.aasce import DatasetError, kfold_split, load_datalist
from scripts.data.spine_mask import render_spine_mask
from scripts.inference.evaluation import format_tables
from scripts.metrics.angles import ANGLE_NAMES, mae, mae_per_angle, smape, smape_per_image
from scripts.metrics.segmentation import SEGMENTATION_METRICS, segmentation_scores

SEG_COLUMNS = ("jaccard", "dice", "pixel_accuracy", "sensitivity", "specificity")
# the documented keys of metrics.json (scripts/cross_validate.py reads them)
METRIC_KEYS = ("smape", "mae", "mae_per_angle", *SEG_COLUMNS)


def _evaluate(
    tiny_inference: dict[str, Path], dataset_dir: Path | str, output_dir: Path, **overrides: object
) -> object:
    workflow = inference_workflow(tiny_inference, "evaluate", dataset_dir, output_dir, **overrides)
    assert workflow.check_properties() == []
    try:
        workflow.run()
    except RuntimeError as error:
        while error.__cause__ is not None and str(error).startswith("Failed to "):
            error = error.__cause__
        raise error from None
    return workflow


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_whole_split_writes_the_documented_files_and_project_metric_values(
    tiny_inference, phantom_root, tmp_path, capsys
):
    workflow = _evaluate(tiny_inference, phantom_root, tmp_path / "out")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(METRIC_KEYS) <= set(metrics) and list(metrics["mae_per_angle"]) == list(ANGLE_NAMES)
    assert metrics["num_images"] == 12 and metrics["fold"] is None and metrics["segmentation_resolution"] == "original"
    rows = _rows(tmp_path / "out" / "per_image.csv")
    assert [row["name"] for row in rows] == [record["name"] for record in load_datalist(phantom_root)]
    pred = np.array([[float(row[f"pred_{n}"]) for n in ANGLE_NAMES] for row in rows])
    true = np.array([[float(row[f"true_{n}"]) for n in ANGLE_NAMES] for row in rows])
    np.testing.assert_allclose(true, np.stack([r["angles"] for r in load_datalist(phantom_root)]), atol=1e-4)
    # the per-image predictions, put through the project's functions, give metrics.json (CSV values carry 4 decimals)
    assert metrics["smape"] == pytest.approx(smape(pred, true), abs=1e-3)
    assert metrics["mae"] == pytest.approx(mae(pred, true), abs=1e-3)
    assert metrics["mae_per_angle"] == pytest.approx(mae_per_angle(pred, true), abs=1e-3)
    np.testing.assert_allclose([float(row["smape"]) for row in rows], smape_per_image(pred, true), atol=1e-3)
    for column in SEG_COLUMNS:
        values = [float(row[column]) for row in rows]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert metrics[column] == pytest.approx(np.mean(values), abs=1e-5)
    # one image again, scored by hand: its predicted mask at the original size against the landmarks' mask
    record = workflow.dataset.data[0]
    item = workflow.dataset[0]
    with torch.no_grad():  # the evaluator's network (its weights loaded by the run) and inference's postprocessing
        output = workflow.evaluator.network(item["image"].as_tensor()[None].float())[0]
    result = workflow.parser.get_parsed_content("postprocessing")({**item, "pred": output})
    truth = render_spine_mask(record["landmarks"], result["mask"].shape)
    scores = segmentation_scores(torch.as_tensor(result["mask"])[None, None], torch.as_tensor(truth)[None, None])
    for name, column in zip(SEGMENTATION_METRICS, SEG_COLUMNS, strict=True):
        assert float(rows[0][column]) == pytest.approx(float(scores[name][0]), abs=1e-6)
    np.testing.assert_allclose(pred[0], result["angles"], atol=1e-4)
    # MONAI's MetricsSaver reports the same per-image values, each row named by its file
    with (tmp_path / "out" / "details" / "val_dice_raw.csv").open(newline="") as handle:
        saved = list(csv.DictReader(handle))
    assert [Path(row["filename"]).name for row in saved] == [row["name"] for row in rows]
    np.testing.assert_allclose([float(r["mean"]) for r in saved], [float(r["dice"]) for r in rows], atol=1e-5)
    assert (tmp_path / "out" / "details" / "metrics.csv").is_file()
    printed = capsys.readouterr().out
    assert "| Method | JA | Dice | AC | SE | SP |" in printed and "| Method | SMAPE (%) | MAE (deg) |" in printed
    assert f"{metrics['smape']:.2f}" in printed and f"{100 * metrics['dice']:.2f}" in printed


def test_a_fold_is_training_held_out_fold_and_outputs_are_not_overwritten(tiny_inference, phantom_root, tmp_path):
    out = tmp_path / "out"
    _evaluate(tiny_inference, phantom_root, out, fold=0, seg_resolution="network")
    held_out = kfold_split(load_datalist(phantom_root), num_folds=5, fold=0, seed=0)[1]
    assert [row["name"] for row in _rows(out / "per_image.csv")] == [record["name"] for record in held_out]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["fold"] == 0 and metrics["num_images"] == len(held_out)
    assert metrics["segmentation_resolution"] == "network"
    before = (out / "metrics.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite true"):
        _evaluate(tiny_inference, phantom_root, out, fold=0)
    assert (out / "metrics.json").read_text() == before


def test_an_unreadable_image_is_named_and_nothing_is_written(tiny_inference, phantom_root, tmp_path):
    root = shutil.copytree(phantom_root, tmp_path / "phantoms")
    broken = sorted((root / "data" / "training").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:200])  # a truncated file
    with pytest.raises(Exception) as raised:  # the reader's DatasetError, wrapped by MONAI's config resolution
        _evaluate(tiny_inference, root, tmp_path / "out")
    chain = [raised.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    assert any(isinstance(e, DatasetError) and f"{broken}: unreadable image" in str(e) for e in chain)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_every_damaged_image_is_named_before_any_is_evaluated(tiny_inference, phantom_root, tmp_path):
    root = shutil.copytree(phantom_root, tmp_path / "phantoms")
    images = sorted((root / "data" / "training").iterdir())
    for image in (images[2], images[-1]):  # the headers are intact: the damage shows only when decoding
        image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    with pytest.raises(Exception) as raised:
        _evaluate(tiny_inference, root, tmp_path / "out")
    chain = [raised.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    message = str(chain[-1])
    assert "2 of 12 image(s) cannot be read" in message
    assert str(images[2]) in message and str(images[-1]) in message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_evaluation_needs_a_dataset(tiny_inference, tmp_path):
    with pytest.raises(ValueError, match="--dataset_dir"):
        _evaluate(tiny_inference, "", tmp_path / "out")


def test_tables_take_their_columns_from_the_registry():
    pred, true = np.array([[30.0, 10.0, 5.0], [20.0, 0.0, 20.0]]), np.array([[32.0, 12.0, 4.0], [18.0, 2.0, 18.0]])
    metrics = {"smape": smape(pred, true), "mae": mae(pred, true), "mae_per_angle": mae_per_angle(pred, true)}
    metrics.update({column: 0.75 for column in SEG_COLUMNS})
    table = format_tables({**metrics, "split": "test", "fold": None, "num_images": 2})
    assert "| Seg4Reg+ (this bundle) | 75.00 | 75.00 | 75.00 | 75.00 | 75.00 |" in table
    assert f"| {smape(pred, true):.2f} | {mae(pred, true):.2f} |" in table
    assert "| Method | SMAPE (%) | MAE (deg) | MAE angle1 | MAE angle2 | MAE angle3 |" in table
