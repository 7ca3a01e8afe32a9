# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
from pathlib import Path

BUNDLE_ROOT = str(Path(__file__).resolve().parents[1])  # the bundle folder, wherever it was copied or unzipped
