# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Deploy application: Cobb angles, spine masks and overlays for a folder of radiographs.

Run it from the repository root (the bundle's ``scripts`` package must be importable)::

    PYTHONPATH=bundle python -m scripts.deploy -i <radiographs> -o <output> -m <model.ts>

With the MONAI Deploy App SDK installed this builds :class:`Seg4RegDeployApp` (one
:class:`~scripts.deploy.folder_operator.Seg4RegFolderOperator`, run once) and the SDK takes the usual ``-i``, ``-o``,
``-m`` options or the ``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH`` variables. Without
the SDK (best kept in an environment of its own, see docs/monai_deploy.md) the same command runs the operator's work
directly, with the same options and variables. ``SEG4REG_OVERWRITE=true`` replaces existing outputs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from monai.utils import optional_import

from scripts.deploy.folder_operator import Seg4RegFolderOperator, run_exported_bundle
from scripts.flags import as_flag

Application, HAS_DEPLOY_SDK = optional_import("monai.deploy.core", name="Application", as_type="base")

__all__ = ["HAS_DEPLOY_SDK", "Seg4RegDeployApp", "main", "parse_args"]

logger = logging.getLogger(__name__)

ENVIRONMENT = {"input": "HOLOSCAN_INPUT_PATH", "output": "HOLOSCAN_OUTPUT_PATH", "model": "HOLOSCAN_MODEL_PATH"}
DEFAULTS = {"input": "input", "output": "output", "model": "models"}  # the SDK's defaults


def _overwrite() -> bool:
    return as_flag(os.environ.get("SEG4REG_OVERWRITE", "false"), "SEG4REG_OVERWRITE")


class Seg4RegDeployApp(Application):
    """The Seg4Reg+ MONAI Deploy application: one operator on the input folder (needs the SDK to be built)."""

    name = "seg4reg_plus_spine"
    description = "Seg4Reg+ Cobb angle estimation and spine segmentation on AP spine radiographs (research use only)."
    version = "0.1.0"

    def compose(self) -> None:
        """Build the operator from the application context (command line over environment variables)."""
        from monai.deploy.conditions import CountCondition

        context = Application.init_app_context(self.argv)
        operator = Seg4RegFolderOperator(
            self,
            CountCondition(self, 1),
            model_path=context.model_path,
            input_folder=context.input_path,
            output_folder=context.output_path,
            overwrite=_overwrite(),
            name="seg4reg_folder",
        )
        self.add_operator(operator)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The SDK's ``-i``, ``-o``, ``-m`` options for the run without the SDK, defaulting to its variables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, short in (("input", "-i"), ("output", "-o"), ("model", "-m")):
        default = os.environ.get(ENVIRONMENT[name], DEFAULTS[name])
        parser.add_argument(f"--{name}", short, default=default, help=f"(default: ${ENVIRONMENT[name]} or {default})")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the application; without the SDK run the operator's work directly. Returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if HAS_DEPLOY_SDK:
        Seg4RegDeployApp().run()
        return 0
    args = parse_args(argv)
    logger.warning("MONAI Deploy App SDK not importable: running the Seg4Reg+ operator's work without it")
    try:
        run_exported_bundle(args.model, args.input, args.output, overwrite=_overwrite())
    except Exception as error:  # the command's user gets the reason, not a traceback
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"results in {Path(args.output).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
