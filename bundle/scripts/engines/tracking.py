# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Experiment tracking glue between MONAI's ``--tracking`` option and the stage workflows.

Besides the executed config, a tracked stage logs its best model: ``model.pt`` with the ``network.json`` that builds
the network it fits (:func:`best_model_files`), as artifacts of the stage's MLflow run.

MONAI patches a tracked config in two ways these functions undo or read back: it rewrites the ``save_execute_config``
id of the config it runs, and it records where it wrote the executed config by appending ``" + '/config_<time>.json'"``
to the raw ``output_dir`` value, which is a valid expression only when ``output_dir`` itself is one (the default)
and not when ``--output_dir /some/path`` was given.
"""

from __future__ import annotations

import os
import re
from typing import Any

from scripts.engines.checkpoints import BEST_NAME
from scripts.networks.definition import RECORD_NAME

__all__ = ["best_model_files", "executed_config_file", "requested_tracking"]

# MONAI's value when output_dir was a plain path: "<dir> + '/config_<time>.json'"
_APPENDED_NAME = re.compile(r"^(?P<folder>.+) \+ '/(?P<name>[^']+)'$")


def requested_tracking(save_execute_config: Any, settings_file: str) -> str | None:
    """The tracking settings every stage gets: ``settings_file`` when ``--tracking`` was given to the pipeline, else None.

    MONAI's ``--tracking`` option patches the pipeline's config and always rewrites its ``save_execute_config`` id;
    ``train.yaml`` sets that id to ``false``, so any other value means tracking was asked for.
    """
    return None if save_execute_config is False else settings_file


def executed_config_file(save_execute_config: Any) -> list[str]:
    """The executed-config file MONAI wrote for this workflow, as a list of 0 or 1 artifact paths for MLFlowHandler.

    Args:
        save_execute_config: the resolved ``save_execute_config`` id: a path (from the default expression), the
            non-expression string ``"<dir> + '/config_<time>.json'"`` (with ``--output_dir <dir>``), or None/False.

    Returns:
        ``[path]`` when the file exists, else ``[]`` (nothing was saved).
    """
    if not isinstance(save_execute_config, str):
        return []
    match = _APPENDED_NAME.match(save_execute_config)
    path = os.path.join(match["folder"], match["name"]) if match else save_execute_config
    return [path] if os.path.isfile(path) else []


def best_model_files(stage_dir: str | os.PathLike) -> list[str]:
    """The stage's best model and the settings that build its network, as artifact paths for MLFlowHandler.

    Both paths are listed whether or not the files exist yet: ``MLFlowHandler`` logs its artifacts when the trainer
    completes (after the last validation wrote ``model.pt``; ``network.json`` is written before training starts) and
    skips a path that is not there.

    Args:
        stage_dir: the stage's checkpoint folder (``stage_dir`` of train.yaml).

    Returns:
        ``[<stage_dir>/model.pt, <stage_dir>/network.json]``.
    """
    return [os.path.join(stage_dir, BEST_NAME), os.path.join(stage_dir, RECORD_NAME)]
