# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Deploy for this bundle: the exported TorchScript model on a folder of radiographs (docs/monai_deploy.md).

- :mod:`scripts.deploy.exported`: read the TorchScript file with its embedded metadata and configs and build the
  bundle's own folder inference around it (no SDK needed).
- :mod:`scripts.deploy.folder_operator`: the MONAI Deploy operator (the SDK is optional for importing it).
- :mod:`scripts.deploy.app`: the application and its command, ``python -m scripts.deploy``.
"""

from __future__ import annotations

__all__: list[str] = []
