# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Run the exported (TorchScript) bundle on a folder of radiographs, without the MONAI Deploy SDK.

``python -m monai.bundle ckpt_export`` stores the network as TorchScript and, beside it in the archive's ``extra/``
folder, ``metadata.json`` and every config file it was given as JSON (``inference.json``, and ``cpu.json`` when the
recipe overlay was given too). :func:`load_exported_bundle` reads them back and :func:`exported_folder_inference`
builds the bundle's own inference ``evaluator`` (``scripts.inference.runner.FolderEvaluator``, a MONAI evaluator)
from that embedded config, with the TorchScript network in place of ``network_def`` and no checkpoint to load. So the exported model
writes exactly the files ``python -m monai.bundle run inference`` writes: ``<stem>.json``, ``<stem>_mask.png``,
``<stem>_cam.png``, ``<stem>_overlay.png`` and ``summary.csv``.

Order of the embedded configs: ``inference.json`` first, then the others by name (TorchScript does not keep the
order ``ckpt_export`` was given); pass ``config_order`` when several overlays set the same keys.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from monai.bundle import ConfigParser

from scripts.inference.runner import FolderEvaluator
from scripts.networks.definition import RECORD_NAME

__all__ = ["ExportedBundle", "exported_folder_inference", "find_model_file", "load_exported_bundle"]

logger = logging.getLogger(__name__)

INFERENCE_CONFIG = "inference.json"
METADATA = "metadata.json"
MODEL_SUFFIXES = (".ts", ".pt", ".pth")


@dataclass
class ExportedBundle:
    """An exported bundle, read back.

    Attributes:
        path: the TorchScript file.
        network: the TorchScript network, ``(B, 1, h, w) -> (B, K + 4, h, w)``, in eval mode.
        metadata: the embedded ``metadata.json``.
        configs: the embedded config files by name (``inference.json`` first, then the merge order).
    """

    path: Path
    network: torch.jit.ScriptModule
    metadata: dict[str, Any]
    configs: dict[str, dict[str, Any]]


def find_model_file(path: str | Path) -> Path:
    """The TorchScript file at ``path``: the file itself, or the only ``.ts``/``.pt``/``.pth`` file of a folder.

    MONAI Deploy hands an application a model path that may be a folder (``-m models/``).

    Raises:
        FileNotFoundError: naming the path when it does not exist or the folder holds no model file.
        ValueError: when the folder holds several model files (naming them).
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"model path {path} does not exist.")
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"model folder {path} holds no TorchScript file ({', '.join(MODEL_SUFFIXES)}).")
    if len(found) > 1:
        raise ValueError(f"model folder {path} holds several model files, give one: {[str(p) for p in found]}.")
    return found[0]


def _extra_names(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [Path(n).name for n in archive.namelist() if Path(n).parent.name == "extra"]
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a TorchScript archive (not a zip file): {error}.") from error
    return names


def load_exported_bundle(
    path: str | Path, device: str | torch.device = "cpu", config_order: Sequence[str] | None = None
) -> ExportedBundle:
    """Load an exported bundle: its network and the metadata and configs stored with it.

    Args:
        path: the ``.ts`` file written by ``ckpt_export`` (or a folder holding only it).
        device: where to map the network's weights.
        config_order: the embedded config names (``["inference.json", "cpu.json"]``) in merge order; None:
            ``inference.json`` then the others by name.

    Returns:
        The :class:`ExportedBundle`.

    Raises:
        FileNotFoundError: naming a missing file.
        ValueError: naming the file when it is not a TorchScript archive, lacks ``metadata.json`` or
            ``inference.json`` (not exported by ``ckpt_export`` with the inference config), or ``config_order``
            names a config it does not hold.
    """
    path = find_model_file(path)
    names = _extra_names(path)
    missing = [name for name in (METADATA, INFERENCE_CONFIG) if name not in names]
    if missing:
        raise ValueError(
            f"{path} holds no {missing} in extra/: export it with `python -m monai.bundle ckpt_export network_def "
            "--meta_file configs/metadata.json --config_file configs/inference.yaml ...`."
        )
    others = sorted(n for n in names if n.endswith(".json") and n not in (METADATA, INFERENCE_CONFIG))
    order = list(config_order) if config_order is not None else [INFERENCE_CONFIG, *others]
    unknown = [name for name in order if name not in names]
    if unknown:
        raise ValueError(f"{path} holds no config {unknown}; it holds {sorted(names)}.")
    files = {name: "" for name in [METADATA, *order]}
    network = torch.jit.load(str(path), map_location=torch.device(device), _extra_files=files).eval()
    metadata = json.loads(files[METADATA])
    configs = {name: json.loads(files[name]) for name in order}
    logger.info("%s: bundle version %s, configs merged in the order %s", path, metadata.get("version"), order)
    return ExportedBundle(path=path, network=network, metadata=metadata, configs=configs)


def exported_folder_inference(
    bundle: ExportedBundle,
    input_dir: str | Path,
    output_dir: str | Path,
    overwrite: bool = False,
    progress_bar: bool = True,
    device: str | torch.device = "cpu",
) -> FolderEvaluator:
    """The bundle's inference ``evaluator``, built from the embedded config around the TorchScript network.

    Args:
        bundle: from :func:`load_exported_bundle`.
        input_dir: the folder of radiographs.
        output_dir: where the results go.
        overwrite: replace existing outputs instead of refusing.
        progress_bar: show a progress bar.
        device: where the network runs.

    Returns:
        The evaluator; its ``run()`` processes the folder (see ``scripts.inference.runner.FolderEvaluator.run``).
    """
    parser = ConfigParser()
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for name, content in bundle.configs.items():
            files.append(Path(folder) / name)
            files[-1].write_text(json.dumps(content))
        parser.read_config([str(f) for f in files])
    parser.read_meta(bundle.metadata)
    overrides = {
        "network_def": bundle.network,  # the TorchScript network replaces the eager definition
        "evaluator#checkpoint": None,  # its weights are inside it
        "ckpt_path": str(bundle.path),  # named in every result file as the weights used
        "dataset_dir": str(input_dir),
        "output_dir": str(output_dir),
        "overwrite": overwrite,
        "progress_bar": progress_bar,
        "device": torch.device(device),
    }
    if RECORD_NAME in bundle.configs:  # exported with the record training wrote: the network's own settings
        overrides["network_overrides"] = bundle.configs[RECORD_NAME]
    for key, value in overrides.items():
        parser[key] = value
    return parser.get_parsed_content("evaluator")
