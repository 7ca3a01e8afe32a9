# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Deploy App SDK operator: the exported Seg4Reg+ bundle on a folder of radiographs.

The SDK (``monai-deploy-app-sdk``, ``monai.deploy``) is optional: without it this module still imports, and
:class:`Seg4RegFolderOperator` raises ``OptionalImportError`` only when it is built. Its work is
:meth:`Seg4RegFolderOperator.process`, which needs no SDK: it loads the TorchScript file with the metadata and
configs stored in it (:mod:`scripts.deploy.exported`) and runs the bundle's own folder inference, writing the same
files as ``python -m monai.bundle run inference``.

Why not the SDK's ``MonaiBundleInferenceOperator``: it handles one image per call through MONAI transforms it builds
from the embedded config, casts ``image`` outputs to uint8 (the angle channels would be rounded) and has no writer for
the per-image JSON; this operator reuses the bundle's code end to end.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.utils import optional_import

from scripts.deploy.exported import exported_folder_inference, load_exported_bundle

Operator, HAS_DEPLOY_SDK = optional_import("monai.deploy.core", name="Operator", as_type="base")

__all__ = ["HAS_DEPLOY_SDK", "Seg4RegFolderOperator", "run_exported_bundle"]

logger = logging.getLogger(__name__)


class Seg4RegFolderOperator(Operator):
    """Segment every radiograph of a folder and measure its Cobb angles with the exported bundle.

    No input ports; one output port ``summary`` with the dict of processed and failed files (unconnected by default).

    Args:
        fragment: the MONAI Deploy application (or fragment) the operator belongs to.
        args: conditions and resources for the SDK (e.g. ``CountCondition(app, 1)``: run once).
        model_path: the ``.ts`` file written by ``ckpt_export``, or a folder holding only it.
        input_folder: the radiographs (jpg, png, DICOM; the folder's files, not its subfolders).
        output_folder: where ``<stem>.json``, ``<stem>_mask.png``, ``<stem>_cam.png``, ``<stem>_overlay.png`` and
            ``summary.csv`` go.
        overwrite: replace existing outputs instead of refusing.
        device: where the network runs; None: CUDA when available.
        config_order: merge order of the embedded configs (``scripts.deploy.exported.load_exported_bundle``).
        kwargs: ``name`` and other SDK operator arguments.

    Raises:
        OptionalImportError: when built without the MONAI Deploy App SDK.
    """

    def __init__(
        self,
        fragment: Any,
        *args: Any,
        model_path: str | Path,
        input_folder: str | Path,
        output_folder: str | Path,
        overwrite: bool = False,
        device: str | torch.device | None = None,
        config_order: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.model_path = Path(model_path)
        self.input_folder = Path(input_folder)
        self.output_folder = Path(output_folder)
        self.overwrite = overwrite
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.config_order = config_order
        super().__init__(fragment, *args, **kwargs)  # the SDK wants the attributes set before its constructor

    def setup(self, spec: Any) -> None:
        """Declare the ``summary`` output (optional: nothing needs to receive it)."""
        from monai.deploy.core import ConditionType

        spec.output("summary").condition(ConditionType.NONE)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        """Process the folder and emit the summary."""
        op_output.emit(self.process(), "summary")

    def process(self) -> dict[str, Any]:
        """Run the exported bundle on the input folder (no SDK needed).

        Returns:
            ``{"output_dir": ..., "processed": [names], "failed": {name: reason}}``.

        Raises:
            The bundle's errors: an empty or missing folder, existing outputs without ``overwrite`` (before anything
            is written), and ``InferenceError`` listing the files that failed (after the others were written).
        """
        return run_exported_bundle(
            self.model_path, self.input_folder, self.output_folder, self.overwrite, self.device, self.config_order
        )


def run_exported_bundle(
    model_path: str | Path,
    input_folder: str | Path,
    output_folder: str | Path,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    config_order: Sequence[str] | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """The operator's work as a function: load the exported bundle and run its folder inference.

    Args:
        model_path: the ``.ts`` file (or a folder holding only it).
        input_folder: the radiographs.
        output_folder: where the results go.
        overwrite: replace existing outputs instead of refusing.
        device: where the network runs.
        config_order: merge order of the embedded configs.
        progress_bar: show a progress bar.

    Returns:
        What ``FolderEvaluator.run`` returns.
    """
    bundle = load_exported_bundle(model_path, device=device, config_order=config_order)
    evaluator = exported_folder_inference(bundle, input_folder, output_folder, overwrite, progress_bar, device)
    return evaluator.run()
