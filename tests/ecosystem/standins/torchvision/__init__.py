# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Stand-in for ``torchvision`` (see README.md here): only what monailabel 0.8.5 imports, failing when called."""
