# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests for scripts.inference.nifti: the spine mask as NIfTI, its orientation, spacing, units and bad input."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from dicom_files import write_dicom

from scripts.data.decode import used_spacing
from scripts.data.loading import LoadGrayscale
from scripts.inference.nifti import write_mask_nifti


def _asymmetric_mask() -> np.ndarray:
    """(5, 3): an L of spine pixels, so any flip or transpose of the layout shows."""
    mask = np.zeros((5, 3), dtype=np.uint8)
    mask[:, 0] = 1
    mask[4, :] = 1
    mask[0, 2] = 1
    return mask


def test_round_trip_keeps_the_mask_in_monai_w_h_order_and_the_spacing(tmp_path: Path) -> None:
    mask = _asymmetric_mask()
    path = write_mask_nifti(mask, tmp_path / "out", "spine01", spacing=[0.15, 0.2])
    assert path == tmp_path / "out" / "spine01_mask.nii.gz"
    image = nib.load(path)
    assert image.shape == (3, 5, 1)  # (W, H, 1): i along columns, j along rows
    assert image.get_data_dtype() == np.uint8
    data = np.asarray(image.dataobj)
    np.testing.assert_array_equal(data[:, :, 0].T, mask)
    np.testing.assert_allclose(image.header.get_zooms(), [0.2, 0.15, 1.0], rtol=1e-6)
    assert image.header.get_xyzt_units()[0] == "mm"
    assert int(image.header["qform_code"]) == int(image.header["sform_code"]) == 1


def test_orientation_is_a_frontal_radiograph_as_displayed(tmp_path: Path) -> None:
    image = nib.load(write_mask_nifti(_asymmetric_mask(), tmp_path, "s", spacing=[0.15, 0.2]))
    # columns toward the patient's left, rows toward the feet, the slice axis toward the front
    assert nib.aff2axcodes(image.affine) == ("L", "I", "A")
    np.testing.assert_allclose(image.affine @ [2, 4, 0, 1], [-0.4, 0.0, -0.6, 1.0])  # column 2, row 4
    np.testing.assert_allclose(image.header.get_sform(), image.header.get_qform(), atol=1e-6)


def test_without_spacing_the_unit_is_unknown(tmp_path: Path) -> None:
    image = nib.load(write_mask_nifti(np.ones((2, 4), dtype=bool), tmp_path, "plain"))
    np.testing.assert_allclose(image.header.get_zooms(), [1.0, 1.0, 1.0])
    assert image.header.get_xyzt_units()[0] == "unknown"
    np.testing.assert_array_equal(np.asarray(image.dataobj)[:, :, 0], np.ones((4, 2)))


def test_the_loader_spacing_reaches_the_header(tmp_path: Path) -> None:
    radiograph = LoadGrayscale()(
        write_dicom(tmp_path / "r.dcm", np.zeros((5, 3), np.uint16), ImagerPixelSpacing=[0.3, 0.4])
    )
    path = write_mask_nifti(_asymmetric_mask(), tmp_path, "r", spacing=used_spacing(radiograph.meta))
    np.testing.assert_allclose(nib.load(path).header.get_zooms()[:2], [0.4, 0.3], rtol=1e-6)


def test_a_previous_file_is_replaced_whole_and_no_temporary_is_left(tmp_path: Path) -> None:
    write_mask_nifti(np.zeros((4, 4), dtype=np.uint8), tmp_path, "x", spacing=[1.0, 1.0])
    path = write_mask_nifti(_asymmetric_mask(), tmp_path, "x", spacing=[1.0, 1.0])
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj)[:, :, 0].T, _asymmetric_mask())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_mask.nii.gz"]


@pytest.mark.parametrize(
    ("mask", "spacing", "problem"),
    [
        (np.zeros((2, 2, 2), np.uint8), None, "expected a non-empty"),
        (np.zeros((0, 3), np.uint8), None, "expected a non-empty"),
        (np.full((2, 2), 255, np.uint8), None, "only 0 and 1"),
        (np.zeros((2, 2), np.uint8), [0.1], "two positive finite"),
        (np.zeros((2, 2), np.uint8), [0.1, 0.0], "two positive finite"),
        (np.zeros((2, 2), np.uint8), [0.1, float("nan")], "two positive finite"),
    ],
    ids=["3d", "empty", "255", "one-spacing", "zero-spacing", "nan-spacing"],
)
def test_bad_input_raises_naming_the_stem(tmp_path: Path, mask, spacing, problem: str) -> None:
    with pytest.raises(ValueError, match=rf"'bad'.*{problem}"):
        write_mask_nifti(mask, tmp_path, "bad", spacing=spacing)
    assert list(tmp_path.iterdir()) == []
