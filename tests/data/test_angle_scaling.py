# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.data.angle_scaling: degrees to sigmoid targets and back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.transforms import Compose

from scripts.data.angle_scaling import ScaleAngles, ScaleAnglesd


def test_default_scale_is_180_degrees() -> None:
    scaled = ScaleAngles()(np.array([90.0, 45.0, 156.0], dtype=np.float32))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [0.5, 0.25, 156 / 180], rtol=1e-6)


def test_inverse_returns_degrees_for_tensors() -> None:
    transform = ScaleAngles(scale=90.0)
    prediction = torch.tensor([[0.5, 1.0, 0.1]])  # a sigmoid head's output for one image
    torch.testing.assert_close(transform.inverse(prediction), torch.tensor([[45.0, 90.0, 9.0]]))
    torch.testing.assert_close(transform(torch.tensor([18, 9, 0])), torch.tensor([0.2, 0.1, 0.0]))  # ints -> float


def test_dictionary_version_and_compose_inverse() -> None:
    pipeline = Compose([ScaleAnglesd(keys="angles", scale=180.0)])
    data = pipeline({"angles": np.array([36.0, 18.0, 9.0]), "name": "a.jpg"})
    np.testing.assert_allclose(data["angles"], [0.2, 0.1, 0.05])
    np.testing.assert_allclose(pipeline.inverse(data)["angles"], [36.0, 18.0, 9.0])
    assert ScaleAnglesd(allow_missing_keys=True)({"image": 1})["image"] == 1  # inference data carry no angles


@pytest.mark.parametrize("scale", [0.0, -180.0, float("nan"), float("inf"), "180"])
def test_bad_scale_is_rejected(scale: object) -> None:
    with pytest.raises(ValueError, match="scale"):
        ScaleAngles(scale)  # type: ignore[arg-type]
