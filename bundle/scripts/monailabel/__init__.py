# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI Label tasks for this bundle (need ``monailabel``; see docs/monai_label.md at the repository root).

- :mod:`scripts.monailabel.infer`: :class:`~scripts.monailabel.infer.Seg4RegInferTask`, the spine mask as the label and
  the Cobb angles in the result JSON.
- :mod:`scripts.monailabel.train`: :class:`~scripts.monailabel.train.Seg4RegSegmentationTrainTask`, stage (a) on the
  datastore's ``{image, label}`` pairs.
- :mod:`scripts.monailabel.pairs`: the stage (a) transforms for such pairs (no monailabel needed).

The submodules are not imported here, so that ``scripts.monailabel.pairs`` works without monailabel installed.
"""

from __future__ import annotations

__all__: list[str] = []
