# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Keep a stage resumable: save the last epoch's full state, and load it back when a killed stage starts again."""

from __future__ import annotations

from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader, CheckpointSaver
from torch import nn

__all__ = ["StageCheckpoint"]


class StageCheckpoint:
    """Saves model, optimiser and trainer state every epoch, and resumes from ``resume_from`` when it is given.

    The trainer reaches this handler through :meth:`attach`, so a config needs no reference from the trainer's
    handler list back to the trainer itself (which MONAI's config resolver would refuse as circular).

    Args:
        save_dir: the stage folder; the file is ``checkpoint_epoch=<n>.pt`` and only the latest one is kept.
        network: the model.
        optimizer: its optimiser.
        resume_from: a checkpoint written by this handler, or None to start afresh.
        map_location: where to load tensors (the training device).

    Under DistributedDataParallel every rank attaches it (Ignite's saver synchronises the ranks when it is built)
    and only rank 0 writes.
    """

    def __init__(
        self,
        save_dir: str | Path,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        resume_from: str | Path | None = None,
        map_location: str | torch.device | None = None,
    ) -> None:
        self.save_dir = str(save_dir)
        self.network = network
        self.optimizer = optimizer
        self.resume_from = str(resume_from) if resume_from else None
        self.map_location = map_location

    def attach(self, engine: Engine) -> None:
        state = {"model": self.network, "optimizer": self.optimizer, "trainer": engine}
        if self.resume_from is not None:
            CheckpointLoader(load_path=self.resume_from, load_dict=state, map_location=self.map_location).attach(engine)
        CheckpointSaver(self.save_dir, save_dict=state, save_interval=1, n_saved=1, epoch_level=True).attach(engine)
        if self.resume_from is not None:
            # the saver keeps one file of its own; the checkpoint resumed from goes once a newer one is written
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._drop_resumed)

    def _drop_resumed(self, engine: Engine) -> None:
        # the first epoch completed after resuming has just been saved under a newer name
        if idist.get_rank() == 0 and self.resume_from is not None:
            Path(self.resume_from).unlink(missing_ok=True)
        self.resume_from = None
