# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Fast inference from the command line: the bundle's answer for a few radiographs, in about a second.

``python -m monai.bundle run`` imports MONAI, whose package loads every one of its submodules (and with them Ignite,
MLflow, SciPy's signal package and matplotlib): about nine seconds on a 2-core CPU before the first image is read.
This path serves the model's ONNX export (:mod:`scripts.inference.onnx_model`) with ONNX Runtime and numpy, and
imports neither torch nor MONAI, so one radiograph takes about a second from process start (docs/performance.md)::

    python -m monai.bundle run export_onnx --config_file bundle/configs/inference.yaml --ckpt_dir <models>  # once
    PYTHONPATH=bundle python -m scripts.inference.fast <image or folder> ... --ckpt_dir <models> --output_dir <out>

It writes what ``run inference`` writes, file for file: ``<stem>.json`` with the angles, the curve type, the quality
verdict (the flip check included) and, for a vertebra-level N_S, the geometry; the mask (png and NIfTI), the CAM and
the overlay; and ``summary.csv``. It reads its settings (mask threshold, quality limits, outputs, ...) from the same
``configs/inference.yaml``, and runs the same arithmetic: the resize-and-pad and its inverse in numpy
(:func:`scripts.data.resize_geometry.warp_array`), then the postprocessing and writers the workflow uses. A test checks
that both paths write the same answers for the same export. What it leaves to the workflow: GPUs and the torch
runtime, ``flip_tta``, ``--resume`` and a progress bar over large folders.

Existing outputs are refused before anything is written unless ``--overwrite``; an image that cannot be read or
measured is named on stderr and in ``summary.csv`` and the others go on; the exit status is 1 when any image failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scripts import BUNDLE_ROOT
from scripts.data.decode import read_grayscale
from scripts.data.resize_geometry import resize_pad_geometry, warp_array
from scripts.flags import as_flag
from scripts.inference.folders import list_images
from scripts.inference.onnx_model import ExportedModel, open_export
from scripts.inference.verdict import merged_limits, quality_verdict
from scripts.inference.writers import (
    CAM_OUTPUTS,
    SUMMARY_NAME,
    ImageResultWriter,
    output_paths,
    refuse_existing,
    write_summary,
)

__all__ = ["FastPredictor", "Radiograph", "main", "read_settings"]

logger = logging.getLogger(__name__)

SETTING_KEYS = (
    "min_image_side",
    "mask_threshold",
    "quality",
    "quality_flip_check",
    "geometry_tilt",
    "curve_threshold",
    "severity_thresholds",
    "outputs",
    "png_compress_level",
    "flip_tta",
)
"""The inference.yaml settings this path reads; each must be a literal there (not a ``$`` expression or ``@`` ref)."""


class Radiograph:
    """A decoded radiograph ``(1, H, W)`` with its loader metadata, read by the writers as they read a MetaTensor.

    Args:
        pixels: ``(H, W)`` float32 in [0, 1] (:func:`scripts.data.decode.read_grayscale`).
        meta: its metadata (``filename_or_obj``, DICOM pixel spacing, ...).
    """

    def __init__(self, pixels: np.ndarray, meta: Mapping[str, Any]) -> None:
        self.array = pixels[None]
        self.meta = dict(meta)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)


def read_settings(config_file: str | Path) -> dict[str, Any]:
    """The settings of :data:`SETTING_KEYS` from an inference config, and ``version`` from the metadata.json beside it.

    Raises:
        ValueError: naming the file, when it is not a YAML mapping, lacks a setting, or a setting is an expression.
    """
    import yaml  # PyYAML, a few hundredths of a second

    path = Path(config_file).expanduser()
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: cannot read the inference config ({error}).") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a YAML mapping (configs/inference.yaml).")
    settings: dict[str, Any] = {}
    for key in SETTING_KEYS:
        if key not in config:
            raise ValueError(f"{path}: no {key!r}; the fast path reads it from configs/inference.yaml.")
        value = config[key]
        if isinstance(value, str) and value[:1] in "$@%":
            raise ValueError(f"{path}: {key} is an expression ({value!r}); the fast path needs a literal value.")
        settings[key] = value
    metadata = path.with_name("metadata.json")
    settings["version"] = json.loads(metadata.read_text()).get("version", "") if metadata.is_file() else ""
    return settings


class FastPredictor:
    """One image file in, its postprocessed prediction out, as the workflow's postprocessing leaves it for the writer.

    Args:
        model: the export under ONNX Runtime.
        settings: :func:`read_settings`; its ``outputs`` decide whether the CAM is brought back to the radiograph's
            size (only the CAM picture and the overlay show it).

    Raises:
        ValueError: on ``flip_tta`` (the workflow serves it), or quality limits that are not checks.
    """

    def __init__(self, model: ExportedModel, settings: Mapping[str, Any]) -> None:
        if model.flip_tta or as_flag(settings["flip_tta"], "flip_tta"):
            raise ValueError("flip_tta averages in the network: run it through the bundle workflow (run inference).")
        self.model = model
        self.settings = settings
        self.flip_check = as_flag(settings["quality_flip_check"], "quality_flip_check")
        self.with_cam = bool(CAM_OUTPUTS & set(settings["outputs"]))
        self.limits = merged_limits(settings["quality"])

    def _network(self, image: np.ndarray) -> np.ndarray:
        return self.model(np.ascontiguousarray(image[None], dtype=np.float32))[0]

    def __call__(self, path: str | Path) -> dict[str, Any]:
        """The prediction of one file: ``image_original`` (:class:`Radiograph`), ``mask`` ``(H, W)`` uint8, ``cam``
        ``(H, W)`` float32 in [0, 1] (when an output shows it), ``angles`` ``(3,)`` degrees, ``quality``, and for a vertebra-level N_S
        ``geometry`` and ``agreement``.

        Raises:
            ValueError: naming the file, when it cannot be read or is too small to hold a spine radiograph.
        """
        pixels, meta = read_grayscale(path)
        height, width = pixels.shape
        min_side = int(self.settings["min_image_side"])
        if min(height, width) < min_side:
            raise ValueError(
                f"image {str(path)!r} is {height} x {width} pixels (H x W): too small to hold a spine radiograph "
                f"(each side needs at least {min_side} pixels)."
            )
        geometry = resize_pad_geometry((height, width), self.model.input_size)
        image = warp_array(pixels[None], geometry.matrix, self.model.input_size, mode="bilinear")  # (1, h, w)
        output = self._network(image)  # (K + 4, h, w)
        classes = self.model.num_seg_channels
        seg, cam = output[:classes], output[classes]
        angles = output[classes + 1 :].mean(axis=(-2, -1)).astype(np.float64)
        flipped = None
        if self.flip_check:
            mirrored = self._network(image[..., ::-1])
            flipped = mirrored[classes + 1 :].mean(axis=(-2, -1)).astype(np.float64)
        # spine probability (and CAM) back to the radiograph's pixels, as the workflow's Invertd does (bilinear)
        maps = np.stack([seg[1:].sum(axis=0), cam] if self.with_cam else [seg[1:].sum(axis=0)])
        restored = warp_array(maps, geometry.inverse, (height, width), mode="bilinear")
        prediction: dict[str, Any] = {
            "image_original": Radiograph(pixels, meta),
            "mask": (restored[0] > float(self.settings["mask_threshold"])).astype(np.uint8),
            "angles": angles,
        }
        if self.with_cam:
            prediction["cam"] = np.clip(restored[1], 0.0, 1.0).astype(np.float32)
        if classes > 2:
            from scripts.geometry.record import angle_agreement, geometry_record  # SciPy: vertebra models only

            labels = seg.argmax(axis=0).astype(np.uint8)
            prediction["geometry"] = geometry_record(labels, (height, width), str(self.settings["geometry_tilt"]))
            prediction["agreement"] = angle_agreement(angles, prediction["geometry"])
        prediction["quality"] = quality_verdict(
            pixels,
            prediction["mask"],
            self.limits,
            angles=angles,
            flipped_angles=flipped,
            regressor=self.model.regressor,
            geometry=prediction.get("geometry"),
            agreement=prediction.get("agreement"),
        )
        return prediction


def _records(inputs: Sequence[str]) -> list[dict[str, str]]:
    """The images named on the command line: files as given, folders walked as the workflow walks ``dataset_dir``."""
    records: list[dict[str, str]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = list_images(path, recursive=True)
            prefix = f"{path.name}/" if len(inputs) > 1 else ""  # several folders: their names keep stems apart
            records += [{**r, "name": prefix + r["name"], "stem": prefix + r["stem"]} for r in found]
        else:
            records.append({"image": str(path), "name": path.name, "stem": path.stem})
    repeated = sorted(stem for stem, count in Counter(record["stem"] for record in records).items() if count > 1)
    if repeated:
        raise ValueError(f"several inputs would write the same outputs {repeated}: run them into separate folders.")
    return records


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.inference.fast",
        description="Seg4Reg+ inference with ONNX Runtime, without torch or MONAI: the outputs of run inference.",
    )
    parser.add_argument("inputs", nargs="+", help="image files and/or folders (walked with their subfolders)")
    parser.add_argument("--output_dir", required=True, help="where the per-image files and summary.csv go")
    parser.add_argument("--ckpt_dir", default=f"{BUNDLE_ROOT}/models", help="folder of model.pt and its .onnx_cache")
    parser.add_argument("--config_file", default=f"{BUNDLE_ROOT}/configs/inference.yaml", help="settings to read")
    parser.add_argument("--outputs", nargs="*", help="optional files to write (default: the config's outputs)")
    parser.add_argument("--quality_flip_check", help="true/false: run the mirrored image (default: the config's)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs instead of refusing")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: one per core)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line (module docstring); returns the exit status, 1 when an image failed."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = read_settings(args.config_file)
        if args.outputs is not None:
            settings["outputs"] = args.outputs
        if args.quality_flip_check is not None:
            settings["quality_flip_check"] = args.quality_flip_check
        checkpoint = Path(args.ckpt_dir).expanduser() / "model.pt"
        model = open_export(checkpoint.parent / ".onnx_cache", checkpoint, args.threads)
        predictor = FastPredictor(model, settings)
        writer = ImageResultWriter(
            model_version=settings["version"],
            checkpoint=checkpoint,
            curve_threshold=settings["curve_threshold"],
            severity_thresholds=settings["severity_thresholds"],
            outputs=settings["outputs"],
            png_compress_level=settings["png_compress_level"],
        )
        records = _records(args.inputs)
        output_dir = Path(args.output_dir).expanduser()
        planned = [p for r in records for p in output_paths(output_dir, r["stem"], writer.outputs).values()]
        refuse_existing([*planned, output_dir / SUMMARY_NAME], args.overwrite)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = []
    for record in records:
        try:
            prediction = {**predictor(record["image"]), "name": record["name"], "stem": record["stem"]}
            rows.append(writer.summary_row(writer(prediction, output_dir)))
        except Exception as error:  # one file that cannot be read, measured or written must not stop the others
            reason = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            print(f"FAILED {record['image']}: {reason}", file=sys.stderr)
            rows.append({"name": record["name"], "file": record["image"], "status": "failed", "error": reason})
    output_dir.mkdir(parents=True, exist_ok=True)
    write_summary(output_dir / SUMMARY_NAME, rows)
    failed = sum(row["status"] != "ok" for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} image(s) written to {output_dir}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
