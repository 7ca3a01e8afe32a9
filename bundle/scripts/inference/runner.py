# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference on a folder of radiographs: every file tried, every failure named, nothing overwritten by surprise.

``configs/inference.yaml`` runs a MONAI evaluator, :class:`FolderEvaluator`, over its ``dataset`` of the folder's
images (:func:`scripts.inference.folders.list_images`, subfolders included, read by :class:`FolderDataset`), with its ``handlers``:

- :class:`ImageResultSaver` writes each image's ``<stem>.json``, ``_mask.png``, ``_cam.png`` and ``_overlay.png``
  (through :class:`scripts.inference.writers.ImageResultWriter`) as its iteration completes;
- :class:`SummarySaver` writes ``summary.csv`` (failed files included) when the folder is done;
- Ignite's ``ProgressBar``.

What a run does (:meth:`FolderEvaluator.run`):

1. it refuses an empty or missing folder and a missing checkpoint, and the savers refuse to start when any output they
   would write already exists (unless ``overwrite``, or ``resume``: then an image whose files all exist is not
   predicted again, its ``summary.csv`` row is rebuilt from its ``<stem>.json``), all before anything is written;
2. a file that fails (truncated, not an image, too small, ...) becomes a failure record instead of stopping the run:
   :class:`FolderDataset` catches its loading error, the evaluator catches a failure of the network or the
   postprocessing, the saver one of the writing; the saver gives each failed file one log line naming it and why;
3. when some files failed, :meth:`FolderEvaluator.run` raises :class:`InferenceError` listing them once the engine
   has finished (``summary.csv`` written), so that ``python -m monai.bundle run`` ends with a non-zero status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ignite.engine import Engine, Events
from monai.data import Dataset, MetaTensor
from monai.engines import SupervisedEvaluator

from scripts.flags import as_flag
from scripts.inference.engine import InferenceEvaluator
from scripts.inference.folders import IMAGE_SUFFIXES
from scripts.inference.writers import SUMMARY_NAME, ImageResultWriter, output_paths, refuse_existing, write_summary

__all__ = [
    "DONE_KEY",
    "ERROR_KEY",
    "FolderDataset",
    "FolderEvaluator",
    "ImageResultSaver",
    "InferenceError",
    "SummarySaver",
    "complete_stems",
    "failure_reason",
    "refuse_existing",
    "resume_mode",
]

logger = logging.getLogger(__name__)


class InferenceError(RuntimeError):
    """Some images of the folder could not be processed; the message lists each file and why."""


def failure_reason(error: BaseException) -> str:
    """The most telling message of an error: MONAI wraps transform errors in "applying transform ..."; unwrap them."""
    current: BaseException | None = error
    while current is not None:
        if not str(current).startswith("applying transform"):
            return f"{type(current).__name__}: {current}" if not isinstance(current, ValueError) else str(current)
        current = current.__cause__ or current.__context__
    return str(error)


def resume_mode(overwrite: bool | str, resume: bool | str) -> tuple[bool, bool]:
    """``(overwrite, resume)`` read as strict flags; both on is refused (one keeps the outputs, the other replaces them).

    Raises:
        ValueError: on a flag that is not true/false, or on both flags true.
    """
    overwrite, resume = as_flag(overwrite, "overwrite"), as_flag(resume, "resume")
    if overwrite and resume:
        raise ValueError(
            "--resume true keeps the complete outputs and --overwrite true replaces them: pass one of them, not both."
        )
    return overwrite, resume


def complete_stems(output_dir: str | Path, stems: Sequence[str], kinds: Sequence[str] | None = None) -> set[str]:
    """The stems whose output files (:func:`~scripts.inference.writers.output_paths` of ``kinds``) all exist.

    The writer writes ``<stem>.json`` last and atomically, after removing an older one, so a complete set is never a
    torn one: an image killed while being written lacks its JSON and is done again.
    """
    return {stem for stem in stems if all(path.is_file() for path in output_paths(output_dir, stem, kinds).values())}


ERROR_KEY = "error"
"""The key of a failure record: why the file failed (a record with it skips the network and the writing)."""
DONE_KEY = "done"
"""The key of a resumed record: its outputs are complete (a record with it skips the loading, network and writing)."""
_ROW_KEY = "summary_row"  # where ImageResultSaver leaves each image's summary.csv row for SummarySaver


def _files(image: Any, count: int) -> list[str]:
    """The source files of a batch's ``image``: its metadata's file names, or the paths of unloaded records."""
    if isinstance(image, MetaTensor):
        files = image.meta.get("filename_or_obj", [""] * count)
        return [str(f) for f in (files if isinstance(files, (list, tuple)) else [files])]
    return [str(f) for f in (image if isinstance(image, (list, tuple)) else [image])]


class FolderDataset(Dataset):
    """MONAI's ``Dataset`` of :func:`~scripts.inference.folders.list_images` records, where a file that cannot be read is a failure record.

    A record whose ``transform`` (the bundle's ``preprocessing``) raises is returned as ``{"name", "image" (its path),
    "stem", "error"}``, ``error`` being :func:`failure_reason` of the exception, so that one bad file neither stops the
    data loader nor the others (the evaluator skips the network for it, :class:`ImageResultSaver` names it). A record
    whose ``stem`` is in :attr:`done` (set by :class:`ImageResultSaver` when resuming, before the data loader starts)
    is returned untransformed as ``{"name", "image", "stem", "done": True}``: the file is not even read.

    Args:
        data: the records of :func:`~scripts.inference.folders.list_images`.
        transform: the bundle's ``preprocessing``.
    """

    def __init__(self, data: Sequence[Mapping[str, Any]], transform: Callable | None = None) -> None:
        super().__init__(data=data, transform=transform)
        self.done: set[str] = set()

    def _transform(self, index: int) -> Any:
        record = self.data[index]
        if record["stem"] in self.done:
            return {"name": record["name"], "image": record["image"], "stem": record["stem"], DONE_KEY: True}
        try:
            return super()._transform(index)
        except Exception as error:  # one bad file must not stop the folder: hand on why, the saver reports it
            logger.debug("details of the failure on %s", record["image"], exc_info=error)
            return {
                "name": record["name"],
                "image": record["image"],
                "stem": record["stem"],
                ERROR_KEY: failure_reason(error),
            }


class FolderEvaluator(InferenceEvaluator):
    """Seg4Reg+ inference on every image of a folder: the ``evaluator`` of ``configs/inference.yaml``.

    The iteration is :class:`~scripts.inference.engine.InferenceEvaluator`'s (network through the inferer, then MONAI's
    decollation and the ``postprocessing`` per image), except for failures: a failure record of
    :class:`FolderDataset` skips the network (so does a resumed record, whose output is ``{"done": True}``), and an error of the network or the postprocessing turns the batch's
    images into failure records; either way ``engine.state.batch`` and ``engine.state.output`` hold one record per
    image, the output ``{"error": reason}``, for the handlers.

    Args:
        args: :class:`~scripts.inference.engine.InferenceEvaluator`'s (``val_data_loader``: batches of
            :class:`FolderDataset`, one image each, the images differing in size).
        dataset_dir: the folder (for messages; required when running).
        kwargs: :class:`~scripts.inference.engine.InferenceEvaluator`'s (``val_handlers``: :class:`ImageResultSaver`,
            :class:`SummarySaver`, a progress bar).
    """

    def __init__(self, *args: Any, dataset_dir: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dataset_dir = str(dataset_dir or "")

    def check_data(self) -> None:
        """Raise when no folder was given or it holds no image files."""
        if not self.dataset_dir:
            raise ValueError("no folder of radiographs given: run with --dataset_dir <folder>.")
        if not self.records:
            raise ValueError(
                f"{self.dataset_dir} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM files)."
            )

    def run(self, global_epoch: int = 1) -> dict[str, Any]:  # type: ignore[override]
        """Process the folder (see the module docstring).

        Returns:
            ``{"output_dir": ..., "processed": [names], "failed": {name: reason}}``, as :class:`SummarySaver` leaves
            it in ``engine.state.summary`` (empty lists and no ``output_dir`` without that handler).

        Raises:
            ValueError: when no folder was given or it holds no image files.
            FileNotFoundError: naming a missing checkpoint (before anything is read or written).
            FileExistsError: when outputs exist and ``overwrite`` is off (before anything is written).
            InferenceError: after writing everything else, when some files failed.
        """
        self.state.summary = None
        super().run(global_epoch)
        summary = self.state.summary or {"output_dir": None, "processed": [], "failed": {}}
        failed = summary["failed"]
        if failed:
            # raised here, after the engine, not in a handler: Ignite would log the whole list once more as an error
            records = self.records
            listed = "\n  ".join(f"{r['image']}: {failed[r['name']]}" for r in records if r["name"] in failed)
            raise InferenceError(
                f"{len(failed)} of {len(records)} image(s) failed (the others were written to "
                f"{summary['output_dir']}):\n  {listed}"
            )
        return summary

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> Any:
        if batchdata is None:
            raise ValueError("the evaluator needs a batch for each iteration.")
        if DONE_KEY in batchdata:  # resumed: the outputs are complete, ImageResultSaver reads the row from the JSON
            return self._records(engine, batchdata, [{DONE_KEY: True} for _ in batchdata["name"]])
        if ERROR_KEY in batchdata:  # FolderDataset could not read the file: nothing to predict
            return self._failed(engine, batchdata, list(batchdata[ERROR_KEY]))
        try:
            return super()._iteration(engine, batchdata)
        except Exception as error:  # the network or the postprocessing failed on this image: name it, go on
            logger.debug("details of the failure on %s", _files(batchdata["image"], 1), exc_info=error)
            return self._failed(engine, batchdata, [failure_reason(error)] * len(batchdata["name"]))

    @classmethod
    def _failed(cls, engine: SupervisedEvaluator, batchdata: Mapping[str, Any], reasons: list[str]) -> list[dict]:
        """Set the engine's batch and output to the failure records of the batch's images."""
        return cls._records(engine, batchdata, [{ERROR_KEY: reason} for reason in reasons])

    @staticmethod
    def _records(engine: SupervisedEvaluator, batchdata: Mapping[str, Any], outputs: list[dict]) -> list[dict]:
        """Set the engine's batch to the plain records of the batch's images and its output to ``outputs``."""
        names, stems = list(batchdata["name"]), list(batchdata["stem"])
        files = _files(batchdata["image"], len(names))
        engine.state.batch = [{"name": n, "image": f, "stem": s} for n, f, s in zip(names, files, stems, strict=True)]
        engine.state.output = outputs
        return engine.state.output


class ImageResultSaver:
    """Ignite handler: each image's files as its iteration completes, or one log line naming a failed file.

    When the run starts it refuses, before anything is written, to replace any file it would write (the files of
    every record of the evaluator's dataset) unless ``overwrite``, then creates ``output_dir``. With ``resume`` it
    refuses nothing: the images whose files all exist (:func:`complete_stems`) are handed to the dataset as done
    (:attr:`FolderDataset.done`: neither read nor predicted, their files untouched, their ``summary.csv`` row rebuilt
    from their ``<stem>.json``), the others are processed, their partial files replaced. At each iteration it
    merges each image's batch and output records (the postprocessed prediction) and hands them to ``writer``; a
    failure record of :class:`FolderEvaluator`, or an error while writing, gets a log line ``FAILED <file>: <reason>``.
    Either way it leaves the image's ``summary.csv`` row in its output record for :class:`SummarySaver`.

    Args:
        writer: builds each image's record from its prediction and writes its files (it knows the model version,
            checkpoint and thresholds of the run).
        output_dir: where the files go (created).
        overwrite: replace existing outputs instead of refusing (strict flag: true/false).
        resume: keep the complete images' outputs and process the others (strict flag; not with ``overwrite``).

    Raises:
        ValueError: on a flag that is not true/false, or on ``overwrite`` and ``resume`` both true.
    """

    def __init__(
        self,
        writer: ImageResultWriter,
        output_dir: str | Path,
        overwrite: bool | str = False,
        resume: bool | str = False,
    ) -> None:
        self.writer = writer
        self.output_dir = Path(output_dir).expanduser()
        self.overwrite, self.resume = resume_mode(overwrite, resume)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._save)

    def _start(self, engine: Engine) -> None:
        dataset = engine.data_loader.dataset
        records = getattr(dataset, "data", [])
        if self.resume:
            done = complete_stems(self.output_dir, [r["stem"] for r in records], self.writer.outputs)
            if not hasattr(dataset, "done"):
                raise TypeError(f"resume needs the config's dataset to be a FolderDataset, not {type(dataset)}.")
            dataset.done = done
            logger.info(
                "resume: %d of %d image(s) already have all their files in %s; processing the other %d",
                len(done), len(records), self.output_dir, len(records) - len(done),
            )  # fmt: skip
        else:
            paths = [p for r in records for p in output_paths(self.output_dir, r["stem"], self.writer.outputs).values()]
            refuse_existing(paths, self.overwrite)
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def _resumed_row(self, item: Mapping[str, Any], file: str) -> dict[str, Any]:
        """The ``summary.csv`` row of a complete image, from its ``<stem>.json`` (named and file as listed now)."""
        path = output_paths(self.output_dir, item["stem"])["json"]
        try:
            record = json.loads(path.read_text())
            return {**self.writer.summary_row(record), "name": item["name"], "file": file}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"its output {path} cannot be read ({error}); rerun with --overwrite true") from error

    def _save(self, engine: Engine) -> None:
        for item, output in zip(engine.state.batch, engine.state.output, strict=True):
            file = _files(item["image"], 1)[0]
            reason = output.get(ERROR_KEY)
            if reason is None:
                try:
                    if output.get(DONE_KEY):
                        output[_ROW_KEY] = self._resumed_row(item, file)
                    else:
                        output[_ROW_KEY] = self.writer.summary_row(self.writer({**item, **output}, self.output_dir))
                    continue
                except Exception as error:  # one file that cannot be written must not stop the folder
                    reason = failure_reason(error)
                    logger.debug("details of the failure on %s", file, exc_info=error)
            logger.error("FAILED %s: %s", file, reason)
            output[_ROW_KEY] = {"name": item["name"], "file": file, "status": "failed", "error": reason}


class SummarySaver:
    """Ignite handler: ``summary.csv``, one row per image file of the folder, failed files included.

    Attach it after :class:`ImageResultSaver` (it reads the rows that handler leaves in the output records). When the
    run starts it refuses an existing ``summary.csv`` unless ``overwrite`` or ``resume`` (the file is rewritten whole,
    the resumed images' rows included); when the run completes it writes the file,
    logs how many images were processed, and leaves ``{"output_dir", "processed": [names], "failed": {name: reason}}``
    in ``engine.state.summary`` (:meth:`FolderEvaluator.run` returns it, or raises when files failed).

    Args:
        output_dir: where ``summary.csv`` goes (created).
        overwrite: replace an existing ``summary.csv`` instead of refusing (strict flag).
        resume: replace it too, the run being the continuation of the one that wrote it (strict flag; not with
            ``overwrite``).

    Raises:
        ValueError: on a flag that is not true/false, or on ``overwrite`` and ``resume`` both true.
    """

    def __init__(self, output_dir: str | Path, overwrite: bool | str = False, resume: bool | str = False) -> None:
        self.output_dir = Path(output_dir).expanduser()
        self.overwrite, self.resume = resume_mode(overwrite, resume)
        self.rows: list[Mapping[str, Any]] = []

    @property
    def path(self) -> Path:
        """``output_dir / summary.csv``."""
        return self.output_dir / SUMMARY_NAME

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self._start)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._collect)
        engine.add_event_handler(Events.COMPLETED, self._write)

    def _start(self, _engine: Engine) -> None:
        refuse_existing([self.path], self.overwrite or self.resume)
        self.rows = []

    def _collect(self, engine: Engine) -> None:
        for output in engine.state.output:
            if _ROW_KEY not in output:
                raise KeyError(f"no {_ROW_KEY!r} in the output: attach ImageResultSaver before SummarySaver.")
            self.rows.append(output[_ROW_KEY])

    def _write(self, engine: Engine) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        write_summary(self.path, self.rows)
        processed = [row["name"] for row in self.rows if row["status"] == "ok"]
        failed = {row["name"]: row["error"] for row in self.rows if row["status"] != "ok"}
        logger.info(
            "%d of %d image(s) processed; results in %s", len(processed), len(self.rows), self.output_dir.resolve()
        )
        engine.state.summary = {"output_dir": str(self.output_dir), "processed": processed, "failed": failed}
