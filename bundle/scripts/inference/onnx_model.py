# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The exported inference network on disk: its file name, the settings recorded in it, and finding it again.

An export (:func:`scripts.inference.onnx_runtime.onnx_network`) is kept in the checkpoint's ``.onnx_cache`` under
:func:`export_name`, made of the checkpoint's MD5, the input size, ``flip_tta``, the torch version that exported it and
the export format. The file records what serving it needs as ONNX metadata (:data:`METADATA_KEYS`): the segmentation
classes, the input size, ``flip_tta``, the checkpoint and its MD5, and whether its regressor N_R was trained. So the
fast single-image path (:mod:`scripts.inference.fast`) serves a model from the export alone, with ONNX Runtime and
numpy: nothing here imports torch or MONAI.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["EXPORT_FORMAT", "METADATA_KEYS", "ExportedModel", "export_name", "file_md5", "find_export", "open_export"]

EXPORT_FORMAT = 2
"""Bumped when what an export records changes; older exports are then ignored (exported again) rather than misread."""

METADATA_KEYS = ("num_seg_channels", "input_size", "flip_tta", "checkpoint", "checkpoint_md5", "regressor")
"""The ONNX metadata an export carries, each under ``seg4reg.<key>``, as strings (input size ``"h,w"``)."""


def file_md5(path: str | Path) -> str:
    """The MD5 of a file, read in 1 MiB blocks (what names a checkpoint's export)."""
    digest = hashlib.md5()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_name(checkpoint_md5: str, input_size: Sequence[int], flip_tta: bool, torch_version: str) -> str:
    """The file name of an export in the cache folder."""
    height, width = (int(v) for v in input_size)
    return f"seg4reg-{checkpoint_md5}-{height}x{width}-tta{int(flip_tta)}-torch{torch_version}-f{EXPORT_FORMAT}.onnx"


class ExportedModel:
    """An export under ONNX Runtime, with the settings it records.

    Args:
        path: the ``.onnx`` file.
        threads: ONNX Runtime's intra-op threads (None: ONNX Runtime's choice, one per core).

    Attributes:
        num_seg_channels: N_S's classes K (2, or 18 for a vertebra-level N_S).
        input_size: the network input ``(h, w)``.
        flip_tta: whether the network averages each answer with its mirror image's.
        checkpoint: the ``model.pt`` it was exported from; ``checkpoint_md5`` its MD5.
        regressor: ``"trained"`` or ``"unknown"`` (:func:`scripts.inference.verdict.regressor_status` at export).

    Raises:
        ValueError: naming the file, when it is not an ONNX model ONNX Runtime can load or lacks the settings
            (an export from an older version: export it again).

    Shapes:
        :meth:`__call__`: ``(1, 1, h, w)`` float32 ``-> (1, K + 4, h, w)`` float32.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime  # a fraction of a second, only where an export is served

        self.path = Path(path)
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ValueError(f"{self.path}: not an ONNX model ONNX Runtime can load ({error}).") from error
        recorded = self.session.get_modelmeta().custom_metadata_map
        missing = [key for key in METADATA_KEYS if f"seg4reg.{key}" not in recorded]
        if missing:
            raise ValueError(
                f"{self.path}: the export does not record {missing} (an export from an older version): delete it and "
                "export the model again (python -m monai.bundle run export_onnx --config_file "
                "bundle/configs/inference.yaml --ckpt_dir <folder of model.pt>)."
            )
        settings = {key: recorded[f"seg4reg.{key}"] for key in METADATA_KEYS}
        self.num_seg_channels = int(settings["num_seg_channels"])
        self.input_size: tuple[int, int] = tuple(int(v) for v in settings["input_size"].split(","))  # type: ignore[assignment]
        self.flip_tta = settings["flip_tta"] == "1"
        self.checkpoint = settings["checkpoint"]
        self.checkpoint_md5 = settings["checkpoint_md5"]
        self.regressor = settings["regressor"]

    def __call__(self, image: Any) -> Any:
        """Run the network on a ``(1, 1, h, w)`` float32 array; returns ``(1, K + 4, h, w)``."""
        return self.session.run(None, {"image": image})[0]


def find_export(cache_dir: str | Path, checkpoint_md5: str, flip_tta: bool = False) -> Path | None:
    """The newest export of the checkpoint of this MD5 (any input size and torch version; this format and
    ``flip_tta``), or None."""
    pattern = f"seg4reg-{checkpoint_md5}-*-tta{int(flip_tta)}-torch*-f{EXPORT_FORMAT}.onnx"
    found = sorted(Path(cache_dir).expanduser().glob(pattern), key=lambda path: path.stat().st_mtime)
    return found[-1] if found else None


def open_export(cache_dir: str | Path, checkpoint: str | Path, threads: int | None = None) -> ExportedModel:
    """The export of ``checkpoint`` in ``cache_dir``, under ONNX Runtime.

    Raises:
        FileNotFoundError: naming the checkpoint, when it is missing or has no export (with the command that makes one).
        ValueError: when the export is unreadable or does not match the checkpoint's MD5.
    """
    checkpoint = Path(checkpoint).expanduser()
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{checkpoint}: no such checkpoint (the model.pt training leaves in its models/ folder)."
        )
    checkpoint_md5 = file_md5(checkpoint)
    path = find_export(cache_dir, checkpoint_md5)
    if path is None:
        raise FileNotFoundError(
            f"{checkpoint}: no ONNX export of it in {cache_dir}; export it once with: python -m monai.bundle run "
            f"export_onnx --config_file bundle/configs/inference.yaml --ckpt_dir {checkpoint.parent}"
        )
    model = ExportedModel(path, threads)
    if model.checkpoint_md5 != checkpoint_md5:
        raise ValueError(f"{path}: exported from a checkpoint of MD5 {model.checkpoint_md5}, not {checkpoint}.")
    return model
