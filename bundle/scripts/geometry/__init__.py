# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Vertebra-level geometry: corners from vertebra label maps, the Cobb rule on them, the end vertebrae of each curve."""
