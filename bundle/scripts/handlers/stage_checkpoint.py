# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Keep a stage resumable: save each epoch's full state, and load it back when a killed stage starts again.

The epoch file holds everything the rest of the stage depends on, so a resumed stage ends exactly as an uninterrupted
one with the same seed (on one process, without data-loader workers that outlive an epoch: see :class:`RandomStates`):
the model, optimiser and trainer state; the best-model record (the evaluator's best score and epoch, the best-model
saver's record, the metrics of the best epoch); and the random generators (torch, CUDA, numpy, Python's ``random``, the
training transforms' own). It is written after every other end-of-epoch handler, validation included, so it holds
that epoch's score.

The epoch file is written atomically (:class:`scripts.handlers.atomic_saver.AtomicCheckpointSaver`), so a kill leaves
the previous one intact. A file damaged anyway (a full disk, a bad copy) is not fatal on resume: it is skipped with a
warning naming it, and the stage resumes from the next older ``checkpoint_epoch=<n>.pt`` in the folder, or starts
afresh when none is left.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint
from monai.transforms import Randomizable, Transform
from torch import nn

from scripts.engines.checkpoint_files import checkpoint_damage, epoch_checkpoints, load_checkpoint_file
from scripts.handlers.atomic_saver import AtomicCheckpointSaver
from scripts.handlers.best_metrics import BestMetricsRecorder

__all__ = ["BestScore", "RandomStates", "StageCheckpoint"]

logger = logging.getLogger(__name__)

_RESUME_ADVICE = "delete it to resume from an older checkpoint_epoch file of the folder, or to start the stage afresh"
_REQUIRED = ("model", "optimizer", "trainer")  # what every epoch file holds; the rest came with the best-model record


def _numpy_state(state: tuple) -> dict[str, Any]:
    """A numpy generator state (``get_state()``) as a tensor and plain types, which ``weights_only`` loads read."""
    _, keys, position, has_gauss, gauss = state
    return {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position), "gauss": [int(has_gauss), gauss]}


def _numpy_tuple(state: dict[str, Any]) -> tuple:
    """The ``set_state()`` argument back from :func:`_numpy_state`."""
    has_gauss, gauss = state["gauss"]
    return ("MT19937", state["keys"].cpu().numpy().astype(np.uint32), int(state["pos"]), int(has_gauss), float(gauss))


def _transform_generators(transforms: Any) -> Iterator[np.random.RandomState]:
    """Every distinct ``RandomState`` of the MONAI transforms in ``transforms``, in a fixed (depth-first) order.

    A ``Compose`` and each random transform hold their own generator (``R``), seeded when the data loader is built;
    a transform may hold others (``RandSpineAffined`` wraps a ``RandSpineAffine``).
    """
    seen: set[int] = set()
    stack = [transforms]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        elif isinstance(item, (Transform, Randomizable)):
            generator = getattr(item, "R", None)
            if isinstance(generator, np.random.RandomState) and id(generator) not in seen:
                seen.add(id(generator))
                yield generator
            stack.extend(reversed([value for name, value in vars(item).items() if name != "R"]))


class RandomStates:
    """The random generators a stage draws from, saved with each epoch and restored by a resumed stage.

    Torch's (CPU and, when present, CUDA), numpy's and Python's global generators draw the weights' noise and the
    data loader's shuffling (its sampler and its workers' seeds); the training transforms' own generators draw the
    augmentation when the data loader has no workers. With ``persistent_workers`` the workers keep drawing from
    generators seeded when they started, which no checkpoint can reach: a resumed stage then augments its remaining
    epochs differently (still seeded) from an uninterrupted one.

    Under DistributedDataParallel only rank 0's generators are saved and restored (each rank has its own).

    Args:
        transforms: the training data's transforms (a ``Compose``), or None.
        loader_generator: the ``generator`` given to the training data loader, or None.
    """

    def __init__(self, transforms: Any = None, loader_generator: torch.Generator | None = None) -> None:
        self.transforms = transforms
        self.loader_generator = loader_generator

    def state_dict(self) -> dict[str, Any]:
        """``{"torch", "cuda", "numpy", "python", "transforms", "loader"}``: tensors and plain types."""
        python = random.getstate()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state(np.random.get_state()),
            "python": [python[0], list(python[1]), python[2]],
            "transforms": [_numpy_state(g.get_state()) for g in _transform_generators(self.transforms)],
            "loader": self.loader_generator.get_state() if self.loader_generator is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Set every generator back to ``state`` (what :meth:`state_dict` returned).

        Raises:
            ValueError: when the transforms hold another number of generators than when ``state`` was saved.
        """
        generators = list(_transform_generators(self.transforms))
        if len(generators) != len(state["transforms"]):
            raise ValueError(
                f"the training transforms hold {len(generators)} random generators, the checkpoint "
                f"{len(state['transforms'])}: it was written with other transforms."
            )
        torch.set_rng_state(state["torch"].cpu())
        if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        np.random.set_state(_numpy_tuple(state["numpy"]))
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        for generator, saved in zip(generators, state["transforms"], strict=True):
            generator.set_state(_numpy_tuple(saved))
        if self.loader_generator is not None and state["loader"] is not None:
            self.loader_generator.set_state(state["loader"].cpu())


class BestScore:
    """The evaluator's best key-metric score and its epoch (MONAI keeps them in ``engine.state``), as a state dict."""

    def __init__(self, validator: Engine) -> None:
        self.validator = validator

    def state_dict(self) -> dict[str, float | int]:
        state = self.validator.state
        return {"best_metric": float(state.best_metric), "best_metric_epoch": int(state.best_metric_epoch)}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.validator.state.best_metric = float(state["best_metric"])
        self.validator.state.best_metric_epoch = int(state["best_metric_epoch"])


class StageCheckpoint:
    """Saves the stage's full state every epoch, and resumes from ``resume_from`` when it is given.

    The trainer reaches this handler through :meth:`attach`, so a config needs no reference from the trainer's
    handler list back to the trainer itself (which MONAI's config resolver would refuse as circular). Wherever it sits
    in the handler list, the epoch file is written after the other end-of-epoch handlers (validation included), and
    a resumed stage restores the random generators when its first epoch starts (after any validation of the starting
    model, which draws from them too), so the epochs after the kill draw what they drew in an uninterrupted run.

    Args:
        save_dir: the stage folder; the file is ``checkpoint_epoch=<n>.pt`` and only the latest one is kept.
        network: the model.
        optimizer: its optimiser.
        resume_from: a checkpoint written by this handler, or None to start afresh. When it is damaged, the newest
            intact older ``checkpoint_epoch=<n>.pt`` beside it is used instead (a warning names the skipped files).
        map_location: where to load tensors (the training device).
        validator: the evaluator that scores each epoch: its best score and epoch so far are kept.
        best_model: the saver of the best model (``model.pt``): its record of the best score is kept.
        best_metrics: the recorder of the best epoch's metrics (what ``done.json`` reports).
        transforms: the training data's transforms, whose random generators are kept (:class:`RandomStates`).

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
        validator: Engine | None = None,
        best_model: AtomicCheckpointSaver | None = None,
        best_metrics: BestMetricsRecorder | None = None,
        transforms: Any = None,
    ) -> None:
        self.save_dir = str(save_dir)
        self.network = network
        self.optimizer = optimizer
        self.resume_from = str(resume_from) if resume_from else None
        self.map_location = map_location
        self.validator = validator
        self.best_model = best_model
        self.best_metrics = best_metrics
        self.transforms = transforms
        self._damaged: list[Path] = []  # skipped epoch files, removed once a newer epoch is saved
        self._saver: AtomicCheckpointSaver | None = None
        self._saver_attached = False
        self._resumed = False
        self._random: RandomStates | None = None
        self._pending_random: tuple[Path, dict[str, Any]] | None = None  # restored when the first epoch starts

    def _objects(self, engine: Engine) -> dict[str, Any]:
        """What each epoch file holds: ``{name: object with state_dict() and load_state_dict()}``."""
        loader = getattr(engine, "data_loader", None)
        self._random = RandomStates(self.transforms, getattr(loader, "generator", None))
        state: dict[str, Any] = {"model": self.network, "optimizer": self.optimizer, "trainer": engine}
        optional = {"validator": BestScore(self.validator) if self.validator is not None else None}
        optional |= {"best_model": self.best_model, "best_metrics": self.best_metrics, "random": self._random}
        return state | {name: item for name, item in optional.items() if item is not None}

    def attach(self, engine: Engine) -> None:
        state = self._objects(engine)
        chosen = self._choose_resume_file()
        self.resume_from = str(chosen) if chosen is not None else None
        if chosen is not None:
            engine.add_event_handler(Events.STARTED, self._resume, chosen, state)
            engine.add_event_handler(Events.EPOCH_STARTED, self._restore_random)
        # built now (every rank at once), attached when the run starts: after every other end-of-epoch handler
        self._saver = AtomicCheckpointSaver(
            self.save_dir, save_dict=state, save_interval=1, n_saved=1, epoch_level=True
        )
        engine.add_event_handler(Events.STARTED, self._attach_saver)

    # the handlers below run once: removing them while Ignite fires their event would skip the next handler
    def _attach_saver(self, engine: Engine) -> None:
        if self._saver_attached:
            return
        self._saver_attached = True
        self._saver.attach(engine)
        if self.resume_from is not None or self._damaged:
            # the saver keeps one file of its own; the files resumed from or skipped go once a newer one is written
            engine.add_event_handler(Events.EPOCH_COMPLETED, self._drop_resumed)

    def _resume(self, engine: Engine, path: Path, state: dict[str, Any]) -> None:
        """Load ``path`` into ``state`` (all but the random generators, kept for :meth:`_restore_random`)."""
        if self._resumed:
            return
        self._resumed = True
        checkpoint = load_checkpoint_file(
            path, map_location=self.map_location, weights_only=True, advice=_RESUME_ADVICE
        )
        missing = [name for name in state if name not in checkpoint]
        if any(name in _REQUIRED for name in missing):
            raise ValueError(f"{path} is not a stage epoch checkpoint: it lacks {missing}; {_RESUME_ADVICE}.")
        if missing:
            logger.warning(
                "%s was written without %s: the stage resumes, but its best-model record starts over", path, missing
            )
        max_epochs = engine.state.max_epochs
        loaded = {name: item for name, item in state.items() if name in checkpoint and name != "random"}
        Checkpoint.load_objects(to_load=loaded, checkpoint=checkpoint)
        if max_epochs is not None and engine.state.epoch > max_epochs:
            raise ValueError(
                f"{path} holds epoch {engine.state.epoch}, beyond this run's {max_epochs} epochs: raise the stage's "
                "epochs, or start the stage afresh (--overwrite true)."
            )
        engine.state.max_epochs = max_epochs  # this run's setting, not the checkpoint's
        self._pending_random = (path, checkpoint["random"]) if "random" in checkpoint else None
        logger.info("restored %s from %s", ", ".join(loaded), path)

    def _restore_random(self, engine: Engine) -> None:
        pending, self._pending_random = self._pending_random, None
        if pending is not None and idist.get_rank() == 0:
            path, random_state = pending
            try:
                self._random.load_state_dict(random_state)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from error

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
