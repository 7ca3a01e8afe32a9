# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Inference on a folder of radiographs: every file tried, every failure named, nothing overwritten by surprise.

:class:`FolderInference` is the ``evaluator`` of ``configs/inference.yaml``. Its :meth:`~FolderInference.run`:

1. refuses an empty or missing folder and a missing checkpoint, and refuses to start when any output it would write already exists (unless
   ``overwrite``), before anything is written;
2. runs every image through the bundle's ``preprocessing``, the network and the ``postprocessing``, with a progress
   bar; a file that fails (truncated, not an image, too small, ...) gets one log line naming it and the reason, and the
   loop goes on;
3. writes ``summary.csv`` (failed files included) and, when some files failed, raises :class:`InferenceError` listing
   them, so that ``python -m monai.bundle run`` ends with a non-zero status.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from tqdm import tqdm

from scripts.data.loading import DICOM_SUFFIXES, is_dicom, read_grayscale
from scripts.flags import as_flag
from scripts.inference.predictor import Seg4RegPredictor, original_size_of
from scripts.inference.writers import SUMMARY_NAME, ImageResultWriter, output_paths, result_record, write_summary

__all__ = [
    "IMAGE_SUFFIXES",
    "FolderInference",
    "InferenceError",
    "failure_reason",
    "list_images",
    "refuse_existing",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", *DICOM_SUFFIXES)
"""File suffixes taken as images (any case); files without a suffix are taken when they are DICOM."""


class InferenceError(RuntimeError):
    """Some images of the folder could not be processed; the message lists each file and why."""


def list_images(folder: str | Path | None) -> list[dict[str, str]]:
    """The image files of a folder (not its subfolders), sorted by name, as records for the bundle's ``dataset``.

    Files with other suffixes (notes, csv, hidden files) are skipped with a log line. Two files with one stem
    (``a.jpg`` and ``a.png``) would write the same outputs: such files keep their whole name as the output stem.

    Args:
        folder: the folder, or empty / None (then no records: the workflow asks for ``--dataset_dir`` when it runs).

    Returns:
        ``[{"image": path, "name": file name, "stem": output stem}, ...]``.

    Raises:
        FileNotFoundError: when ``folder`` is given but is not a folder.
    """
    if not folder:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset_dir {root} does not exist or is not a folder.")
    images, skipped = [], []
    for path in sorted(root.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES or (not suffix and is_dicom(path)):
            images.append(path)
        else:
            skipped.append(path.name)
    if skipped:
        logger.info("%s: skipped %d file(s) that are not images by suffix: %s", root, len(skipped), ", ".join(skipped))
    stems = Counter(path.stem for path in images)
    return [
        {"image": str(path), "name": path.name, "stem": path.stem if stems[path.stem] == 1 else path.name}
        for path in images
    ]


def failure_reason(error: BaseException) -> str:
    """The most telling message of an error: MONAI wraps transform errors in "applying transform ..."; unwrap them."""
    current: BaseException | None = error
    while current is not None:
        if not str(current).startswith("applying transform"):
            return f"{type(current).__name__}: {current}" if not isinstance(current, ValueError) else str(current)
        current = current.__cause__ or current.__context__
    return str(error)


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise before anything is written when an output exists and ``overwrite`` is off.

    Raises:
        FileExistsError: naming the existing files (the first ten) and the switch that replaces them.
    """
    if overwrite:
        return
    existing = [path for path in paths if path.exists()]
    if existing:
        listed = "\n  ".join(str(path) for path in existing[:10])
        more = f"\n  ... and {len(existing) - 10} more" if len(existing) > 10 else ""
        raise FileExistsError(
            f"{len(existing)} output file(s) already exist; nothing was written (--overwrite true replaces them):"
            f"\n  {listed}{more}"
        )


class FolderInference:
    """Seg4Reg+ inference on every image of a folder (the ``evaluator`` of ``configs/inference.yaml``).

    Args:
        dataset: the bundle's ``dataset``: records of :func:`list_images`, transformed by ``preprocessing``.
        predictor: network, inferer and postprocessing for one record.
        dataset_dir: the folder (for messages; required when running).
        output_dir: where the files go (created).
        model_version: the bundle version written into each JSON.
        checkpoint: the weights used, written into each JSON.
        writer: writes the per-image files.
        overwrite: replace existing outputs instead of refusing (strict flag: true/false).
        progress_bar: show a tqdm bar (strict flag).
    """

    def __init__(
        self,
        dataset: Dataset,
        predictor: Seg4RegPredictor,
        dataset_dir: str | Path,
        output_dir: str | Path,
        model_version: str,
        checkpoint: str | Path,
        writer: ImageResultWriter | None = None,
        overwrite: bool | str = False,
        progress_bar: bool | str = True,
    ) -> None:
        self.dataset = dataset
        self.predictor = predictor
        self.dataset_dir = str(dataset_dir or "")
        self.output_dir = Path(output_dir).expanduser()
        self.model_version = model_version
        self.checkpoint = str(checkpoint)
        self.writer = writer or ImageResultWriter()
        self.overwrite = as_flag(overwrite, "overwrite")
        self.progress_bar = as_flag(progress_bar, "progress_bar")

    @property
    def records(self) -> list[Mapping[str, Any]]:
        """The untransformed records of the dataset."""
        return list(getattr(self.dataset, "data", []))

    def planned_outputs(self) -> list[Path]:
        """Every file :meth:`run` may write."""
        paths = [p for record in self.records for p in output_paths(self.output_dir, record["stem"]).values()]
        return [*paths, self.output_dir / SUMMARY_NAME]

    def _process(self, index: int, record: Mapping[str, Any]) -> dict[str, Any]:
        result = self.predictor(self.dataset[index])
        image, meta = read_grayscale(record["image"])  # the radiograph at its own resolution, for the overlay
        size = original_size_of(result["image"])
        summary = result_record(
            record["name"],
            record["image"],
            result["angles"],
            size,
            meta,
            self.model_version,
            self.checkpoint,
            self.writer.curve_threshold,
            self.writer.severity_thresholds,
        )
        self.writer(output_paths(self.output_dir, record["stem"]), summary, image, result["mask"], result["cam"])
        return self.writer.summary_row(summary)

    def run(self) -> dict[str, Any]:
        """Process the folder (see the module docstring).

        Returns:
            ``{"output_dir": ..., "processed": [names], "failed": {name: reason}}``.

        Raises:
            ValueError: when no folder was given or it holds no image files.
            FileNotFoundError: naming a missing checkpoint (before anything is read or written).
            FileExistsError: when outputs exist and ``overwrite`` is off (before anything is written).
            InferenceError: after writing everything else, when some files failed.
        """
        if not self.dataset_dir:
            raise ValueError("no folder of radiographs given: run with --dataset_dir <folder>.")
        records = self.records
        if not records:
            raise ValueError(
                f"{self.dataset_dir} holds no image files (looked for {', '.join(IMAGE_SUFFIXES)} and DICOM files)."
            )
        self.predictor.load()  # a missing checkpoint is named before any image is read
        refuse_existing(self.planned_outputs(), self.overwrite)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        rows, processed, failed = [], [], {}
        bar = tqdm(records, desc="inference", unit="image", disable=not self.progress_bar)
        for index, record in enumerate(bar):
            try:
                rows.append(self._process(index, record))
                processed.append(record["name"])
            except Exception as error:  # one bad file must not stop the folder: report it and go on
                reason = failure_reason(error)
                failed[record["name"]] = reason
                logger.error("FAILED %s: %s", record["image"], reason)
                logger.debug("details of the failure on %s", record["image"], exc_info=error)
                rows.append({"name": record["name"], "file": record["image"], "status": "failed", "error": reason})
        bar.close()
        write_summary(self.output_dir / SUMMARY_NAME, rows)
        logger.info(
            "%d of %d image(s) processed; results in %s", len(processed), len(records), self.output_dir.resolve()
        )
        if failed:
            listed = "\n  ".join(
                f"{record['image']}: {failed[record['name']]}" for record in records if record["name"] in failed
            )
            raise InferenceError(
                f"{len(failed)} of {len(records)} image(s) failed (the others were written to {self.output_dir}):"
                f"\n  {listed}"
            )
        return {"output_dir": str(self.output_dir), "processed": processed, "failed": failed}
