# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The geometry of a vertebra-level N_S at inference: fields, agreement, the verdict, the drawn Cobb lines, scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from scripts.data.cobb import cobb_details
from scripts.data.phantoms import make_phantom
from scripts.data.resize_pad import resize_pad_geometry
from scripts.data.spine_mask import render_vertebra_labels
from scripts.geometry.record import angle_agreement, geometry_record
from scripts.geometry.vertebrae import VERTEBRA_NAMES
from scripts.inference.evaluation import geometry_scores, geometry_summary
from scripts.inference.geometry import SpineGeometryd
from scripts.inference.predictor import SplitPredictiond
from scripts.inference.verdict import DEFAULT_LIMITS, quality_verdict
from scripts.inference.writers import SUMMARY_COLUMNS, ImageResultWriter
from scripts.metrics.angles import ANGLE_NAMES
from scripts.visualize.overlay import CURVE_COLOURS, cobb_lines, render_overlay

NETWORK_SIZE = (512, 256)


@pytest.fixture(scope="module")
def phantom():
    """A phantom radiograph with a real curve; its end vertebrae are those the rule picks from its landmarks."""
    return make_phantom(np.random.default_rng(3), size_scale=0.5, kind="S")


def network_labels(landmarks: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """The vertebra label map a perfect N_S would give at the network's input size."""
    points = resize_pad_geometry(original_size, NETWORK_SIZE).to_output(landmarks.astype(np.float64))
    return render_vertebra_labels(points, NETWORK_SIZE)


def test_a_perfect_label_map_gives_the_true_end_vertebrae_and_landmarks(phantom):
    size = phantom.image.shape
    geometry = geometry_record(network_labels(phantom.landmarks, size), size, tilt="shape")
    truth = cobb_details(phantom.landmarks.astype(np.float64), size[0])
    assert geometry["status"] == "measured" and geometry["problems"] == []
    first = geometry["curves"][0]
    assert (first["upper_end"], first["lower_end"]) == tuple(VERTEBRA_NAMES[i] for i in truth.end_vertebrae[0])
    error = np.linalg.norm(np.asarray(geometry["landmarks"]) - phantom.landmarks, axis=1)
    scale = size[0] / NETWORK_SIZE[0]  # original pixels per network pixel
    assert error.mean() < 2.0 * scale
    assert abs(geometry["angles_deg"]["angle1"] - truth.angles[0]) < 3.0
    assert {"name", "tilt_deg", "corners"} <= set(geometry["vertebrae"][0])


def test_a_missing_vertebra_gives_no_angle_and_a_review(phantom):
    size = phantom.image.shape
    labels = network_labels(phantom.landmarks, size)
    labels[labels == 9] = 0  # T9 not found
    d = SpineGeometryd(tilt="shape")(
        {"labels_network": labels, "image_original": torch.zeros(1, *size), "angles": [30.0, 20, 10]}
    )
    assert d["geometry"]["status"] == "not_measured" and d["geometry"]["angles_deg"] is None
    assert "missing:T9" in d["geometry"]["blocking_problems"] and d["agreement"] is None
    image = np.linspace(0, 1, size[0] * size[1]).reshape(size)
    verdict = quality_verdict(image, np.ones(size), geometry=d["geometry"], agreement=d["agreement"])
    reasons = {reason["check"]: reason for reason in verdict["reasons"]}
    assert verdict["verdict"] == "review" and reasons["vertebra_problems"]["problems"] == ["missing:T9"]


def test_agreement_and_its_limit():
    geometry = {"angles_deg": {"angle1": 30.0, "angle2": 10.0, "angle3": 20.0}}
    agreement = angle_agreement([32.5, 8.0, 20.0], geometry)
    assert agreement == {"angle1": 2.5, "angle2": -2.0, "angle3": 0.0, "max_abs_deg": 2.5}
    assert angle_agreement([1, 2, 3], {"angles_deg": None}) is None
    check = {"status": "measured"}
    far = {"max_abs_deg": DEFAULT_LIMITS["max_geometry_difference_deg"] + 0.5}
    reasons = quality_verdict(np.eye(8) * 0.5 + 0.2, np.zeros((8, 8)), {"min_aspect": 0}, geometry=check, agreement=far)
    assert "geometry_disagreement" in [r["check"] for r in reasons["reasons"]]
    limited = quality_verdict(
        np.eye(8),
        np.zeros((8, 8)),
        {"max_geometry_difference_deg": 10.0},
        geometry=check,
        agreement={"max_abs_deg": 12.0},
    )  # the configured limit, not the default, decides
    assert "geometry_disagreement" in [r["check"] for r in limited["reasons"]]
    near = quality_verdict(np.eye(8), np.zeros((8, 8)), geometry=check, agreement={"max_abs_deg": 3.0})
    assert "geometry_disagreement" not in [r["check"] for r in near["reasons"]]


def test_split_prediction_gives_the_label_map_only_for_vertebrae():
    output = torch.zeros(18 + 4, 8, 4)
    output[5] = 1.0  # class 5 (T5) everywhere
    d = SplitPredictiond(num_seg_channels=18)({"pred": output})
    assert d["labels_network"].dtype == np.uint8 and np.all(d["labels_network"] == 5)
    assert torch.all(d["mask_network"] == 1)
    assert "labels_network" not in SplitPredictiond(num_seg_channels=2)({"pred": torch.zeros(6, 8, 4)})


def test_the_drawn_lines_land_on_the_end_vertebrae(phantom):
    size = phantom.image.shape
    geometry = geometry_record(network_labels(phantom.landmarks, size), size, tilt="shape")
    picture = render_overlay(np.zeros(size), geometry=geometry)
    truth = cobb_details(phantom.landmarks.astype(np.float64), size[0])
    corners = phantom.landmarks.reshape(17, 4, 2).astype(np.float64)
    for index, line in enumerate(cobb_lines(geometry)):
        colour = np.all(picture == np.array(CURVE_COLOURS[index], dtype=np.uint8), axis=2)
        top, bottom = truth.end_vertebrae[index]
        assert (line["upper"]["name"], line["lower"]["name"]) == (VERTEBRA_NAMES[top], VERTEBRA_NAMES[bottom])
        # the true upper endplate of the upper end vertebra, the true lower endplate of the lower one
        for (start, end), name in (
            ((corners[top, 0], corners[top, 1]), "upper"),
            ((corners[bottom, 2], corners[bottom, 3]), "lower"),
        ):
            direction = (end - start) / np.linalg.norm(end - start)
            rows, cols = np.nonzero(colour)
            points = np.stack([cols + 0.5, rows + 0.5], axis=1) - start
            along = points @ direction
            across = np.abs(points[:, 0] * direction[1] - points[:, 1] * direction[0])
            on_vertebra = (along > 0) & (along < np.linalg.norm(end - start))
            near = across[on_vertebra]
            # over the vertebra's width the drawn line lies on its true endplate (within a few pixels)
            assert np.sum(near < 4.0) >= 0.5 * np.linalg.norm(end - start), (index, name)


def test_the_record_and_summary_carry_the_geometry(tmp_path, phantom):
    size = phantom.image.shape
    labels = network_labels(phantom.landmarks, size)
    image = MetaTensor(torch.as_tensor(phantom.image / 255.0)[None].float(), meta={"filename_or_obj": "p.png"})
    prediction = SpineGeometryd()(
        {"labels_network": labels, "image_original": image, "angles": np.array([30.0, 20, 10])}
    )
    prediction.update(mask=np.zeros(size, np.uint8), cam=np.zeros(size, np.float32), name="p.png", stem="p")
    writer = ImageResultWriter()
    record = writer(prediction, tmp_path)
    assert record["geometry"]["status"] == "measured" and record["agreement"] is not None
    row = writer.summary_row(record)
    curves = record["geometry"]["curves"]
    assert row["end_vertebrae_angle1"] == f"{curves[0]['upper_end']}-{curves[0]['lower_end']}"
    assert set(row) <= set(SUMMARY_COLUMNS) and row["geometric_angle1"] != ""


def test_geometry_summary_scores_ends_landmarks_and_the_combination(phantom):
    size = phantom.image.shape
    landmarks = phantom.landmarks.astype(np.float64)
    geometry = geometry_record(network_labels(phantom.landmarks, size), size, tilt="shape")
    scores = geometry_scores(geometry, landmarks, size[0])
    assert scores["ends"] == scores["true_ends"]
    true = np.asarray(phantom.angles, dtype=np.float64)
    measured = {**scores, "true": true, "regressed": true + 4.0}
    unmeasured = {**scores, "geometric": None, "ends": None, "true": true, "regressed": true + 4.0}
    summary = geometry_summary([measured, unmeasured], combination_weight=1.0)
    assert summary["measured"] == 1 and summary["end_vertebra_exact"] == 1.0
    assert summary["mae_regressed_same_images"] == pytest.approx(4.0)
    # weight 1: the geometric angles where measured, the regressed ones (4 degrees off) elsewhere
    expected = (np.abs(scores["geometric"] - true).mean() + 4.0) / 2
    assert summary["mae_combined"] == pytest.approx(expected, abs=1e-3)
    assert summary["landmark_error_px"] < 4.0
    assert set(ANGLE_NAMES) == set(geometry["angles_deg"])


def test_the_centerline_tilts_follow_the_curve(phantom):
    """Endplates across the centroids' centre line: near the true angles on a phantom, from the same label map."""
    size = phantom.image.shape
    geometry = geometry_record(network_labels(phantom.landmarks, size), size)  # the default: centerline
    angles = np.array([geometry["angles_deg"][name] for name in ANGLE_NAMES])
    # the largest curve within 2 degrees; the smaller ones, whose ends lie where the fit is one-sided, within 8
    errors = np.abs(angles - phantom.angles)
    assert geometry["status"] == "measured" and errors[0] < 2.0 and errors.max() < 8.0
    truth = cobb_details(phantom.landmarks.astype(np.float64), size[0])
    first = geometry["curves"][0]
    found = (VERTEBRA_NAMES.index(first["upper_end"]), VERTEBRA_NAMES.index(first["lower_end"]))
    assert max(abs(a - b) for a, b in zip(found, truth.end_vertebrae[0], strict=True)) <= 1
