# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Label inference task: the spine mask as the label, the Cobb angles in the result JSON.

monailabel's :class:`~monailabel.tasks.infer.bundle.BundleInferTask` loads this bundle as it is (2D from the input's
``spatial_shape``, the bundle's ``preprocessing``, ``inferer`` and ``postprocessing``), but it reads its labels from the
output's ``channel_def``, which lists all six channels of the one-tensor output (background, spine, cam, angle1..3),
and it resizes the raw six-channel output back to the image with its own ``Restored``. :class:`Seg4RegInferTask`
keeps the loading and the bundle's transforms and fixes three points:

- labels: ``{"spine": 1}``, the only label an annotator edits;
- after the bundle's ``postprocessing`` (which already maps the mask back to the original resolution: MONAI's
  ``Invertd`` undoes the aspect-preserving resize-and-pad from the image's transform trace, which a plain resize
  would get wrong), :class:`MonaiLabelResultd` makes the mask the label
  MONAI Label writes and puts the bundle's per-image JSON record (angles, their meaning, curve type, size, model
  version) under ``result``, which MONAI Label returns as the result JSON;
- the label file: a lossless PNG of the radiograph's height and width by default
  (:mod:`scripts.monailabel.label_file`); another ``result_extension`` goes through monailabel's writer with the mask
  in MONAI's ``(W, H)`` order, which that writer expects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from monai.bundle import ConfigParser
from monai.transforms import MapTransform
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.utils.others.generic import strtobool

from scripts.inference.predictor import original_size_of
from scripts.inference.writers import result_record
from scripts.monailabel.label_file import LOSSLESS_EXTENSIONS, to_monai_order, write_png_label

__all__ = ["SPINE_LABELS", "MonaiLabelResultd", "Seg4RegInferTask"]

logger = logging.getLogger(__name__)

SPINE_LABELS: dict[str, int] = {"spine": 1}
"""The label MONAI Label shows and edits: the spine mask's value."""


class MonaiLabelResultd(MapTransform):
    """Turn the bundle's postprocessed results into what MONAI Label writes: a label map and a result JSON.

    Reads ``mask`` ``(H, W)`` and ``angles`` ``(3,)`` (added by the bundle's ``postprocessing``),
    sets ``d[label_key]`` to the mask as uint8 (0 background, 1 spine) and ``d[result_key]`` to the record the bundle's
    inference writes as ``<stem>.json`` (``scripts.inference.writers.result_record``).

    Args:
        keys: the image key (its ``image_path`` and metadata name the file and its size).
        label_key: where MONAI Label's writer looks for the label (``pred``).
        result_key: where it looks for the result JSON (``result``).
        model_version: the bundle version.
        checkpoint: the weights used.

    Raises:
        KeyError: in a call, when the bundle's postprocessing did not add ``mask`` and ``angles``.
    """

    def __init__(
        self,
        keys: str = "image",
        label_key: str = "pred",
        result_key: str = "result",
        model_version: str = "",
        checkpoint: str | Path = "",
    ) -> None:
        super().__init__(keys)
        self.label_key = label_key
        self.result_key = result_key
        self.model_version = str(model_version)
        self.checkpoint = str(checkpoint)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        missing = [key for key in ("mask", "angles") if key not in d]
        if missing:
            raise KeyError(
                f"the bundle's postprocessing did not add {missing} (SplitPredictiond adds angles, SpineMaskd mask)."
            )
        for key in self.key_iterator(d):
            image = d[key]
            meta = getattr(image, "meta", {}) or {}
            file = str(d.get("image_path") or meta.get("filename_or_obj", ""))
            record = result_record(
                Path(file).name, file, d["angles"], original_size_of(image), meta, self.model_version, self.checkpoint
            )
            d[self.result_key] = {**d.get(self.result_key, {}), **record}
        d[self.label_key] = np.asarray(d["mask"], dtype=np.uint8)
        return d


class Seg4RegInferTask(BundleInferTask):
    """Serve the Seg4Reg+ bundle in MONAI Label: 2D spine segmentation with the three Cobb angles in the result.

    Args:
        path: the bundle folder (``configs/inference.yaml``, ``configs/metadata.json``, ``models/model.pt``).
        conf: the MONAI Label app's configuration.
        overlays: overlays read after ``inference.yaml``, as file names under ``configs/`` or paths; none is needed
            for the network, which is built from ``models/network.json``, the settings training wrote beside
            ``models/model.pt``.
        label_extension: the label file's extension when a request names none (``result_extension``): ``.png``,
            lossless, whatever the radiograph's format (monailabel would take the input's, a lossy ``.jpg``).
        kwargs: passed to ``BundleInferTask`` (``type``, ``pre_filter``, ...).

    Raises:
        FileNotFoundError: naming an overlay that does not exist.
    """

    def __init__(
        self,
        path: str,
        conf: dict[str, str],
        overlays: Sequence[str] = (),
        label_extension: str = ".png",
        **kwargs: Any,
    ) -> None:
        self.label_extension = label_extension
        configs = Path(path) / "configs"
        self.overlay_files = []
        for overlay in overlays:
            overlay_path = Path(overlay) if Path(overlay).is_absolute() else configs / overlay
            if not overlay_path.is_file():
                raise FileNotFoundError(f"recipe overlay {overlay_path} does not exist.")
            self.overlay_files.append(str(overlay_path))
        kwargs.setdefault("type", "segmentation")
        kwargs.setdefault("load_strict", True)  # models/model.pt is a whole Seg4RegPlus of the same recipe
        super().__init__(path, conf, add_post_restore=False, **kwargs)
        if self.is_valid():
            self.labels = dict(SPINE_LABELS)

    def _load_bundle_config(self, path: str, config: str) -> ConfigParser:
        parser = ConfigParser()
        parser.read_config([config, *self.overlay_files])
        parser.config.update({self.const.key_bundle_root(): path})
        return parser

    def post_transforms(self, data: Mapping[str, Any] | None = None) -> Sequence[Callable]:
        post = list(super().post_transforms(data))
        post.append(
            MonaiLabelResultd(
                keys=self.input_key,
                label_key=self.output_label_key,
                result_key=self.output_json_key,
                model_version=self.version or "",
                checkpoint=self.get_path() or "",
            )
        )
        return post

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """Write the label ``(H, W)`` so that it has the radiograph's height and width; return it with the JSON.

        ``.png`` (the default): written here, 8-bit, lossless. Another ``result_extension``: monailabel's writer, given
        the mask in MONAI's ``(W, H)`` order. ``result_write_to_file: false``: the ``(H, W)`` array itself.

        Returns:
            ``(label file path or array, result JSON)``, as monailabel's ``InferTask.writer``.
        """
        extension = extension or data.get("result_extension") or self.label_extension
        result = data.get(self.output_json_key, {})
        if not strtobool(data.get("result_write_to_file", True)):
            return np.asarray(data[self.output_label_key], dtype=np.uint8), result
        if extension.lower() in LOSSLESS_EXTENSIONS:
            return str(write_png_label(data[self.output_label_key])), result
        data[self.output_label_key] = to_monai_order(data[self.output_label_key])
        return super().writer(data, extension=extension, dtype=dtype)
