# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""MONAI's ``CheckpointSaver`` with atomic writes, so that a kill during a save never leaves a torn checkpoint."""

from __future__ import annotations

from typing import Any

from ignite.handlers import DiskSaver
from monai.handlers import CheckpointSaver

__all__ = ["AtomicCheckpointSaver"]


class AtomicCheckpointSaver(CheckpointSaver):
    """``monai.handlers.CheckpointSaver`` whose files are written to a temporary file and renamed into place.

    Ignite's ``DiskSaver`` writes atomically by default (``atomic=True``: ``tempfile.NamedTemporaryFile`` in the same
    folder, then ``os.replace``), but MONAI's ``CheckpointSaver`` (checked in MONAI 1.6.1) builds its savers with
    ``atomic=False`` because older Ignite left the file readable by its owner only; the Ignite this bundle uses
    (0.5.5) adds group and others' read permission after the rename, so nothing is lost by switching it back on.
    A kill in the middle of ``torch.save`` then leaves at most a ``tmp*`` file (no ``.pt`` name, so never resumed
    from or loaded) and the previous checkpoint intact.

    Takes exactly ``CheckpointSaver``'s arguments. :meth:`state_dict` is the counterpart MONAI's ``load_state_dict``
    lacks: the key-metric record (the best score so far and its file), which a resumed stage must continue, or its
    first validation would overwrite the best model whatever its score.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None and isinstance(checkpoint.save_handler, DiskSaver):
                # DiskSaver has no public setter; _atomic is the flag its constructor stores and _save_func reads
                checkpoint.save_handler._atomic = True

    def state_dict(self) -> dict:
        """The key-metric record, ``{"_saved": [(score, file name)]}`` (empty without ``save_key_metric``).

        ``load_state_dict`` (MONAI's) takes it back; the scores are plain floats, so ``weights_only`` loads them.
        """
        if self._key_metric_checkpoint is None:
            return {"_saved": []}
        saved = self._key_metric_checkpoint.state_dict()["_saved"]
        return {"_saved": [(float(score), str(name)) for score, name in saved]}
