# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""``PYTHONPATH=bundle python -m scripts.deploy -i <radiographs> -o <output> -m <model.ts>``: see :mod:`scripts.deploy.app`."""

from __future__ import annotations

import sys

from scripts.deploy.app import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
