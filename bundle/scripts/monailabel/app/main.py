# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The MONAI Label app of this bundle: ``monailabel start_server --app <bundle>/scripts/monailabel/app ...``.

It serves the bundle folder three levels up (``<bundle>/``, holding ``configs/``, ``scripts/``, ``models/model.pt``)
unless ``--conf bundle <folder>`` names another, with one infer task and one train task, both ``seg4reg_spine``:
:class:`~scripts.monailabel.infer.Seg4RegInferTask` and
:class:`~scripts.monailabel.train.Seg4RegSegmentationTrainTask`. ``--conf overlays a.yaml,b.yaml`` adds recipe
overlays (file names under ``configs/``) to both; ``--conf label_extension .nii.gz`` changes the label file's format
(``.png`` by default). See docs/monai_label.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from monailabel.interfaces.app import MONAILabelApp

__all__ = ["MODEL_NAME", "Seg4RegApp", "bundle_folder"]

MODEL_NAME = "seg4reg_spine"
"""The name of the infer and train task (``/infer/seg4reg_spine``, ``/train/seg4reg_spine``)."""


def bundle_folder(conf: dict[str, str]) -> Path:
    """The bundle this app serves: ``conf["bundle"]``, or the folder holding ``scripts/`` above this file.

    Raises:
        FileNotFoundError: naming the folder when it has no ``configs/metadata.json``.
    """
    folder = Path(conf.get("bundle") or Path(__file__).resolve().parents[3]).resolve()
    if not (folder / "configs" / "metadata.json").is_file():
        raise FileNotFoundError(f"{folder} is not a bundle folder: it has no configs/metadata.json")
    return folder


class Seg4RegApp(MONAILabelApp):
    """Serve the Seg4Reg+ bundle: the spine mask as the label, the Cobb angles in the result, stage (a) retraining.

    Args:
        app_dir: this folder (given by MONAI Label).
        studies: the datastore folder of radiographs (and their labels).
        conf: ``--conf`` pairs: ``bundle`` (folder), ``overlays`` (comma-separated file names under ``configs/``),
            ``label_extension`` (the label file's format, ``.png`` by default).
    """

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]) -> None:
        self.bundle = bundle_folder(conf)
        self.overlays = [name for name in conf.get("overlays", "").split(",") if name]
        if str(self.bundle) not in sys.path:
            sys.path.insert(0, str(self.bundle))  # the bundle's `scripts` package
        version = json.loads((self.bundle / "configs" / "metadata.json").read_text())["version"]
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="Seg4Reg+ spine",
            description="Spine segmentation and Cobb angles on spine radiographs",
            version=version,
            labels={"spine": 1},
        )

    def init_infers(self) -> dict[str, Any]:
        from scripts.monailabel.infer import Seg4RegInferTask

        extension = self.conf.get("label_extension", ".png")
        return {
            MODEL_NAME: Seg4RegInferTask(str(self.bundle), self.conf, overlays=self.overlays, label_extension=extension)
        }

    def init_trainers(self) -> dict[str, Any]:
        from scripts.monailabel.train import Seg4RegSegmentationTrainTask

        return {MODEL_NAME: Seg4RegSegmentationTrainTask(str(self.bundle), self.conf, overlays=self.overlays)}
