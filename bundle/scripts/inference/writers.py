# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The files inference writes: up to five per image and one summary for the folder.

For an image ``<stem>`` under ``output_dir``, five files (``outputs`` may leave out all but the JSON):

- ``<stem>.json``: the three angles in degrees (``angle1`` the largest curve; meanings in ``angle_definitions``), the
  curve type and severity (:mod:`scripts.inference.curves`), the image size, the DICOM pixel spacing when the file
  has one, the model version (``metadata.json``), the checkpoint used, and the quality verdict (``quality``: ``ok`` or
  ``review`` with machine-readable reasons, :mod:`scripts.inference.verdict`); from a vertebra-level N_S also
  ``geometry`` (the geometric angles, each curve's end vertebrae, apex and region, the 68 estimated landmarks, each
  vertebra's corners and tilt) and ``agreement`` (regressed minus geometric angles), :mod:`scripts.inference.geometry`.
- ``<stem>_mask.png``: the spine mask at the original resolution, 8-bit, 0 background and 255 spine.
- ``<stem>_mask.nii.gz``: the same mask as NIfTI (0/1, the pixel spacing in its header when the DICOM file has one),
  for MONAI Label datastores and 3D Slicer (:mod:`scripts.inference.nifti`).
- ``<stem>_cam.png``: the mean class activation map at the original resolution, 8-bit, 0..255 for 0..1.
- ``<stem>_overlay.png``: the radiograph with the mask and CAM blended, the angles and the verdict written on it, and,
  with geometry, the endplate lines of each curve's end vertebrae, their names and the angle between them
  (:func:`scripts.visualize.overlay.render_overlay`).

The JSON is always written; the others can be left out (``outputs``), e.g. the CAM picture and the overlay in bulk
runs, where they cost more than the network. PNGs are written with zlib level ``png_compress_level`` (1 by default:
faster than PIL's default 6 on full-size radiographs, for somewhat larger files).

``<stem>`` may hold subfolders (``left/a`` for ``<dataset_dir>/left/a.png``): the outputs mirror the folder tree.

The JSON is written last, atomically (a temporary file renamed over it), and an older ``<stem>.json`` is removed before
the pngs are written: "``<stem>.json`` exists" means the image's files are complete, which ``--resume`` relies on
(a run killed while writing an image leaves no JSON for it, so the image is done again).

``summary.csv`` has one row per image file of the folder, failed files included (``status`` ``failed`` and the reason).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scripts.data.cobb import ANGLE_NAMES
from scripts.data.decode import used_spacing
from scripts.inference.curves import ANGLE_MEANINGS, CURVE_TYPE_DEFINITION, describe_curve
from scripts.inference.nifti import MASK_NIFTI_SUFFIX, write_mask_nifti
from scripts.visualize.overlay import render_overlay

__all__ = [
    "CAM_OUTPUTS",
    "OPTIONAL_OUTPUTS",
    "OUTPUT_SUFFIXES",
    "SUMMARY_COLUMNS",
    "SUMMARY_NAME",
    "ImageResultWriter",
    "output_paths",
    "refuse_existing",
    "result_record",
    "write_summary",
]

OUTPUT_SUFFIXES: dict[str, str] = {
    "json": ".json",
    "mask": "_mask.png",
    "mask_nifti": MASK_NIFTI_SUFFIX,
    "cam": "_cam.png",
    "overlay": "_overlay.png",
}
OPTIONAL_OUTPUTS: tuple[str, ...] = tuple(kind for kind in OUTPUT_SUFFIXES if kind != "json")
CAM_OUTPUTS = frozenset({"cam", "overlay"})  # the outputs that show the CAM: without them it is never read
SUMMARY_NAME = "summary.csv"
SUMMARY_COLUMNS: tuple[str, ...] = (
    "name",
    "file",
    "status",
    *ANGLE_NAMES,
    "curve_type",
    "severity",
    *(f"geometric_{name}" for name in ANGLE_NAMES),
    *(f"end_vertebrae_{name}" for name in ANGLE_NAMES),
    "verdict",
    "reasons",
    "height",
    "width",
    "pixel_spacing_row_mm",
    "pixel_spacing_col_mm",
    "error",
)


def output_paths(output_dir: str | Path, stem: str, kinds: Sequence[str] | None = None) -> dict[str, Path]:
    """The files written for the image ``stem``, keyed as :data:`OUTPUT_SUFFIXES` (``json``, ``mask``, ...).

    ``stem`` is relative to ``output_dir`` and may name subfolders (``left/a`` -> ``output_dir/left/a.json``).
    ``kinds``: the optional outputs written (:data:`OPTIONAL_OUTPUTS`, all when None); the JSON is always there.
    """
    folder = Path(output_dir)
    wanted = {"json", *(OPTIONAL_OUTPUTS if kinds is None else kinds)}
    return {kind: folder / f"{stem}{suffix}" for kind, suffix in OUTPUT_SUFFIXES.items() if kind in wanted}


def _spacing(meta: Mapping[str, Any], key: str) -> list[float] | None:
    value = meta.get(key)
    return None if value is None else [float(v) for v in np.asarray(value).reshape(-1)[:2]]


def result_record(
    name: str,
    file: str | Path,
    angles: Sequence[float],
    image_size: Sequence[int],
    meta: Mapping[str, Any],
    model_version: str,
    checkpoint: str | Path,
    curve_threshold: float = 10.0,
    severity_thresholds: Sequence[float] = (10.0, 25.0, 40.0),
) -> dict[str, Any]:
    """The content of ``<stem>.json`` for one image.

    Args:
        name: the file name of the image.
        file: its path.
        angles: the three predicted angles in degrees.
        image_size: (H, W) on disk.
        meta: the loader's metadata (``pixel_spacing`` and ``imager_pixel_spacing`` in mm for DICOM files with them).
        model_version: the bundle version (``metadata.json``).
        checkpoint: the weights used.
        curve_threshold: degrees from which an angle counts as a curve.
        severity_thresholds: mild, moderate and severe bounds for angle1.
    """
    values = [float(v) for v in angles]
    return {
        "name": name,
        "file": str(file),
        "angles_deg": {name: round(value, 4) for name, value in zip(ANGLE_NAMES, values, strict=True)},
        "angle_definitions": dict(ANGLE_MEANINGS),
        **describe_curve(values, curve_threshold, severity_thresholds),
        "curve_type_definition": CURVE_TYPE_DEFINITION.replace("curve_threshold", f"{curve_threshold:g}"),
        "severity_thresholds_deg": [float(v) for v in severity_thresholds],
        "image_size": {"height": int(image_size[0]), "width": int(image_size[1])},
        "pixel_spacing_mm": _spacing(meta, "pixel_spacing"),
        "imager_pixel_spacing_mm": _spacing(meta, "imager_pixel_spacing"),
        "spacing_source": str(meta.get("spacing_source", "none")),  # the DICOM tag the NIfTI mask's spacing is from
        "model_version": str(model_version),
        "checkpoint": str(checkpoint),
    }


class ImageResultWriter:
    """Builds the record of one image from its prediction and writes its files (:data:`OUTPUT_SUFFIXES`).

    The prediction is one image's postprocessed record (its batch and output records merged, as
    :class:`~scripts.inference.runner.ImageResultSaver` hands them over): the decoded radiograph at its own resolution
    under ``image_key`` (its metadata names the file and holds the DICOM pixel spacing), ``mask`` and ``cam``
    ``(H, W)``, ``angles`` ``(3,)``, and the dataset's ``name`` and ``stem``. What belongs to the whole run (model
    version, checkpoint, thresholds) is given here, once.

    Args:
        model_version: the bundle version (``metadata.json``), written into each JSON.
        checkpoint: the weights used, written into each JSON.
        curve_threshold: degrees from which an angle counts as a curve (curve type).
        severity_thresholds: mild, moderate and severe bounds for angle1.
        image_key: the key of the original-resolution radiograph ``(1, H, W)`` (``image_original``).
        outputs: the optional files to write, a subset of :data:`OPTIONAL_OUTPUTS` (all by default).
        png_compress_level: zlib level of the PNGs, 0 (none, fastest) .. 9 (smallest).

    Raises:
        ValueError: naming an unknown output or a compression level outside 0..9.
    """

    def __init__(
        self,
        model_version: str = "",
        checkpoint: str | Path = "",
        curve_threshold: float = 10.0,
        severity_thresholds: Sequence[float] = (10.0, 25.0, 40.0),
        image_key: str = "image_original",
        outputs: Sequence[str] = OPTIONAL_OUTPUTS,
        png_compress_level: int = 1,
    ) -> None:
        unknown = sorted(set(outputs) - set(OPTIONAL_OUTPUTS))
        if unknown:
            raise ValueError(f"outputs {unknown} are not files inference writes; choose from {OPTIONAL_OUTPUTS}.")
        if isinstance(png_compress_level, bool) or png_compress_level not in range(10):
            raise ValueError(f"png_compress_level must be an integer 0..9, got {png_compress_level!r}.")
        self.outputs = tuple(kind for kind in OPTIONAL_OUTPUTS if kind in outputs)
        self.png_compress_level = int(png_compress_level)
        self.model_version = str(model_version)
        self.checkpoint = str(checkpoint)
        self.curve_threshold = float(curve_threshold)
        self.severity_thresholds = tuple(float(v) for v in severity_thresholds)
        self.image_key = image_key

    def _image(self, prediction: Mapping[str, Any]) -> Any:
        if self.image_key not in prediction:
            meta = getattr(prediction.get("image"), "meta", None) or {}
            source = meta.get("filename_or_obj", prediction.get("name"))
            raise KeyError(
                f"the prediction of {str(source)!r} has no {self.image_key!r}: the preprocessing must keep the "
                "original-resolution image (CopyItemsd before ResizePadd, as configs/inference.yaml does)."
            )
        return prediction[self.image_key]

    def record(self, prediction: Mapping[str, Any]) -> dict[str, Any]:
        """The content of ``<stem>.json`` (without ``outputs``), built from the prediction (see the class)."""
        image = self._image(prediction)
        meta = getattr(image, "meta", {}) or {}
        file = str(meta.get("filename_or_obj", ""))
        size = (int(image.shape[-2]), int(image.shape[-1]))  # the original image: its own size is the size on disk
        return result_record(
            prediction.get("name") or Path(file).name,
            file,
            prediction["angles"],
            size,
            meta,
            self.model_version,
            self.checkpoint,
            self.curve_threshold,
            self.severity_thresholds,
        )

    def __call__(self, prediction: Mapping[str, Any], output_dir: str | Path) -> dict[str, Any]:
        """Write the files of one image: those of :attr:`outputs` (``_mask.png``, ``_mask.nii.gz``, ``_cam.png``,
        ``_overlay.png``), then ``<stem>.json``.

        Args:
            prediction: the postprocessed prediction (see the class): ``image_original`` ``(1, H, W)`` in [0, 1],
                ``mask`` ``(H, W)`` in {0, 1}, ``cam`` ``(H, W)`` in [0, 1] (read only when the CAM picture or the
                overlay is written), ``angles`` ``(3,)`` in degrees.
            output_dir: the folder of the files (:func:`output_paths` of the prediction's ``stem``).

        Returns:
            The record written as ``<stem>.json`` (without ``outputs``), for :meth:`summary_row`.
        """
        record = self.record(prediction)
        for key in ("geometry", "agreement", "quality"):
            if key in prediction:
                record[key] = prediction[key]
        stem = prediction.get("stem") or Path(record["file"]).stem
        paths = output_paths(output_dir, stem, self.outputs)
        mask = np.asarray(prediction["mask"])
        cam = np.asarray(prediction["cam"]) if CAM_OUTPUTS & set(paths) else None
        paths["json"].parent.mkdir(parents=True, exist_ok=True)
        paths["json"].unlink(missing_ok=True)  # from here until the new JSON lands, the image reads as incomplete
        level = self.png_compress_level
        if "mask" in paths:
            Image.fromarray((mask > 0).astype(np.uint8) * 255).save(paths["mask"], compress_level=level)
        if "mask_nifti" in paths:
            meta = getattr(self._image(prediction), "meta", {}) or {}
            write_mask_nifti(mask > 0, paths["mask_nifti"].parent, Path(stem).name, spacing=used_spacing(meta))
        if "cam" in paths:
            cam_picture = np.round(np.clip(cam, 0.0, 1.0) * 255.0).astype(np.uint8)
            Image.fromarray(cam_picture).save(paths["cam"], compress_level=level)
        if "overlay" in paths:
            image = np.asarray(self._image(prediction), dtype=np.float32)  # a CPU MetaTensor reads as its array
            image = image.reshape(image.shape[-2:])  # (1, H, W) -> (H, W): one grayscale channel
            angles = [record["angles_deg"][name] for name in ANGLE_NAMES]
            overlay = render_overlay(
                image,
                mask=mask,
                cam=cam,
                angles=angles,
                verdict=record.get("quality"),
                geometry=record.get("geometry"),
            )
            Image.fromarray(overlay).save(paths["overlay"], compress_level=level)
        outputs = {kind: path.name for kind, path in paths.items() if kind != "json"}
        _write_atomically(paths["json"], json.dumps({**record, "outputs": outputs}, indent=2) + "\n")  # last
        return record

    def summary_row(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The ``summary.csv`` row of a successful image."""
        spacing = record.get("pixel_spacing_mm") or [None, None]
        quality = record.get("quality") or {}
        geometry = record.get("geometry") or {}
        geometric = geometry.get("angles_deg") or {}
        curves = geometry.get("curves") or []
        return {
            "name": record["name"],
            "file": record["file"],
            "status": "ok",
            **{name: f"{record['angles_deg'][name]:.4f}" for name in ANGLE_NAMES},
            "curve_type": record["curve_type"],
            "severity": record["severity"],
            **{f"geometric_{name}": f"{geometric[name]:.4f}" if name in geometric else "" for name in ANGLE_NAMES},
            **{
                f"end_vertebrae_{name}": f"{curve['upper_end']}-{curve['lower_end']}" if curve else ""
                for name, curve in zip(ANGLE_NAMES, curves or [None] * len(ANGLE_NAMES), strict=True)
            },
            "verdict": quality.get("verdict", ""),
            "reasons": ";".join(reason["check"] for reason in quality.get("reasons", [])),
            "height": record["image_size"]["height"],
            "width": record["image_size"]["width"],
            "pixel_spacing_row_mm": spacing[0],
            "pixel_spacing_col_mm": spacing[1],
            "error": "",
        }


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise before anything is written when an output exists and ``overwrite`` is off.

    Raises:
        FileExistsError: naming the existing files (the first ten) and the switch that replaces them.
    """
    if overwrite:
        return
    existing = [path for path in paths if path.exists()]
    if existing:
        listed = "\n  ".join(str(path) for path in existing[:10])
        more = f"\n  ... and {len(existing) - 10} more" if len(existing) > 10 else ""
        raise FileExistsError(
            f"{len(existing)} output file(s) already exist; nothing was written (--overwrite true replaces them):"
            f"\n  {listed}{more}"
        )


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a hidden temporary file beside ``path``, then rename it over ``path`` (never a torn file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_summary(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write ``summary.csv``: a header of :data:`SUMMARY_COLUMNS`, then one row per image file."""
    with Path(path).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
