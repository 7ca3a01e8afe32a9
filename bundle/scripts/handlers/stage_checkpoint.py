# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Keep a stage resumable: save the last epoch's full state, and load it back when a killed stage starts again.

The epoch file is written atomically (:class:`scripts.handlers.atomic_saver.AtomicCheckpointSaver`), so a kill leaves
the previous one intact. A file damaged anyway (a full disk, a bad copy) is not fatal on resume: it is skipped with a
warning naming it, and the stage resumes from the next older ``checkpoint_epoch=<n>.pt`` in the folder, or starts
afresh when none is left.
"""

from __future__ import annotations

import logging
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events
from monai.handlers import CheckpointLoader
from torch import nn

from scripts.engines.checkpoint_files import checkpoint_damage, damaged_error, epoch_checkpoints
from scripts.handlers.atomic_saver import AtomicCheckpointSaver

__all__ = ["StageCheckpoint"]

logger = logging.getLogger(__name__)

_RESUME_ADVICE = "delete it to resume from an older checkpoint_epoch file of the folder, or to start the stage afresh"


class _NamingCheckpointLoader(CheckpointLoader):
    """``CheckpointLoader`` whose failure on a damaged file names the file (torch's own error names none)."""

    def __call__(self, engine: Engine) -> None:
        try:
            super().__call__(engine)
        except Exception as error:
            reason = checkpoint_damage(self.load_path)
            if reason is None:
                raise
            raise damaged_error(self.load_path, reason, _RESUME_ADVICE) from error


class StageCheckpoint:
    """Saves model, optimiser and trainer state every epoch, and resumes from ``resume_from`` when it is given.

    The trainer reaches this handler through :meth:`attach`, so a config needs no reference from the trainer's
    handler list back to the trainer itself (which MONAI's config resolver would refuse as circular).

    Args:
        save_dir: the stage folder; the file is ``checkpoint_epoch=<n>.pt`` and only the latest one is kept.
        network: the model.
        optimizer: its optimiser.
        resume_from: a checkpoint written by this handler, or None to start afresh. When it is damaged, the newest
            intact older ``checkpoint_epoch=<n>.pt`` beside it is used instead (a warning names the skipped files).
        map_location: where to load tensors (the training device).

    Raises:
        FileNotFoundError: from :meth:`attach`, when ``resume_from`` does not exist.

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
        self._damaged: list[Path] = []  # skipped epoch files, removed once a newer epoch is saved

    def attach(self, engine: Engine) -> None:
        state = {"model": self.network, "optimizer": self.optimizer, "trainer": engine}
        chosen = self._choose_resume_file()
        if chosen is not None:
            _NamingCheckpointLoader(load_path=str(chosen), load_dict=state, map_location=self.map_location).attach(
                engine
            )
        AtomicCheckpointSaver(self.save_dir, save_dict=state, save_interval=1, n_saved=1, epoch_level=True).attach(
            engine
        )
        self.resume_from = str(chosen) if chosen is not None else None
        if self.resume_from is not None or self._damaged:
            # the saver keeps one file of its own; the files resumed from or skipped go once a newer one is written
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._drop_resumed)

    def _choose_resume_file(self) -> Path | None:
        """The newest intact epoch file, from ``resume_from`` down through the older ones beside it; None: afresh.

        Every rank choosing reads the same files and so chooses the same one; nothing is removed here (rank 0 removes
        the skipped files after the first epoch, when every rank has loaded its checkpoint).
        """
        if self.resume_from is None:
            return None
        first = Path(self.resume_from)
        if not first.is_file():
            raise FileNotFoundError(f"the checkpoint to resume from, {first}, does not exist.")
        epochs = epoch_checkpoints(first.parent)
        first_epoch = next((epoch for epoch, path in epochs if path.name == first.name), None)
        # a handler-written file: the older epochs of the same folder are its fallbacks
        candidates = [first] + [path for epoch, path in epochs if first_epoch is not None and epoch < first_epoch]
        self._damaged = []
        for path in candidates:
            reason = checkpoint_damage(path)
            if reason is None:
                if path != first:
                    logger.warning("resuming from the older epoch checkpoint %s", path)
                else:
                    logger.debug("resuming from %s", path)  # prepare_stage_dir has already said so
                return path
            logger.warning("%s is damaged (%s): skipped", path, reason)
            self._damaged.append(path)
        logger.warning("no intact epoch checkpoint is left in %s: the stage starts afresh", first.parent)
        return None

    def _drop_resumed(self, engine: Engine) -> None:
        # the first epoch completed after resuming has just been saved under a newer name (or, after skipping a
        # damaged file, possibly under that file's name: os.replace put the intact file there, and it stays)
        if idist.get_rank() == 0:
            saved = f"checkpoint_epoch={engine.state.epoch}.pt"
            stale = [Path(self.resume_from)] if self.resume_from is not None else []
            for path in stale + self._damaged:
                if path.name != saved:
                    path.unlink(missing_ok=True)
        self.resume_from = None
        self._damaged = []
