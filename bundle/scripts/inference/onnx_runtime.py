# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The inference network under ONNX Runtime, an option for CPU inference (``runtime: onnxruntime`` in inference.yaml).

On this project's 2-core CPU, ONNX Runtime runs the CPU recipe's network several times faster than eager torch, with
the same output within float32 rounding (docs/performance.md). :func:`onnx_network` exports the trained network, weights
loaded, with ``torch.onnx.export`` for one image at a time (inference's batch size; another batch size is refused by
ONNX Runtime, never answered wrongly) and wraps an ONNX Runtime session in :class:`OnnxRuntimeNetwork`,
a module with the network's contract, ``(B, 1, h, w) -> (B, K + 4, h, w)``, so the evaluator, the flip check and the
postprocessing do not know the difference.

The export takes seconds, so it is kept in ``cache_dir`` under a name made of the checkpoint's MD5, the input size,
``flip_tta`` and the torch version (:mod:`scripts.inference.onnx_model`): the next run of the same model reuses it, and
a retrained ``model.pt`` gets its own file. It records the settings serving it needs, so the fast single-image path
(:mod:`scripts.inference.fast`) runs it without torch. The file is written to a temporary name and renamed, so a
killed export never leaves a torn model behind. :func:`export_checkpoint` is the ``export_onnx`` run id of
inference.yaml: it makes the export ahead of time.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from scripts.inference.onnx_model import ExportedModel, export_name, file_md5
from scripts.inference.predictor import load_checkpoint
from scripts.inference.verdict import regressor_status

__all__ = ["OnnxRuntimeNetwork", "export_checkpoint", "onnx_network"]

logger = logging.getLogger(__name__)


class OnnxRuntimeNetwork(nn.Module):
    """An ONNX Runtime session of the exported inference network, called like the network.

    Args:
        path: the exported ``.onnx`` file (input ``image``, output ``pred``, the settings of
            :data:`scripts.inference.onnx_model.METADATA_KEYS`).
        threads: ONNX Runtime's intra-op threads (default: torch's thread count).

    Attributes:
        flip_tta: whether the exported network averages each answer with its mirror image's (read by the evaluator,
            which then skips its own flip check).

    Shapes:
        ``(1, 1, h, w)`` float32 on the CPU ``-> (1, K + 4, h, w)`` float32.
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.model = ExportedModel(path, threads or torch.get_num_threads())
        self.path = self.model.path
        self.flip_tta = self.model.flip_tta

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.model(image.detach().to("cpu", torch.float32).contiguous().numpy()))


def _record_settings(path: Path, settings: dict[str, str]) -> None:
    import onnx  # only when exporting

    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {f"seg4reg.{key}": value for key, value in settings.items()})
    onnx.save(model, str(path))


def onnx_network(
    network: nn.Module, input_size: Sequence[int], checkpoint: str | Path | None, cache_dir: str | Path
) -> OnnxRuntimeNetwork:
    """The trained ``network`` under ONNX Runtime, exported once per checkpoint and input size (module docstring).

    Args:
        network: the inference network with its weights loaded, on the CPU.
        input_size: the network input ``(h, w)``.
        checkpoint: the weights' file (its MD5 names the export); None exports afresh every time.
        cache_dir: where exports are kept.

    Raises:
        ValueError: when the network is not on the CPU.
        UntrainedRegressorError: when the checkpoint's record shows its regressor N_R never trained.
    """
    if any(parameter.device.type != "cpu" for parameter in network.parameters()):
        raise ValueError("runtime onnxruntime runs the network on the CPU; use --device cpu (or runtime torch).")
    height, width = (int(v) for v in input_size)
    flip_tta = bool(getattr(network, "flip_tta", False))
    folder = Path(cache_dir).expanduser()
    key = file_md5(checkpoint) if checkpoint else os.urandom(8).hex()
    path = folder / export_name(key, (height, width), flip_tta, torch.__version__)
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        logger.info("exporting the network to ONNX: %s", path)
        example = torch.zeros(1, 1, height, width)
        with torch.inference_mode():
            channels = int(network.eval()(example).shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
            torch.onnx.export(
                network.eval(), (example,), str(temporary), dynamo=False, input_names=["image"], output_names=["pred"]
            )
        settings = {
            "num_seg_channels": str(channels - 4),
            "input_size": f"{height},{width}",
            "flip_tta": str(int(flip_tta)),
            "checkpoint": str(checkpoint or ""),
            "checkpoint_md5": key if checkpoint else "",
            "regressor": regressor_status(checkpoint) if checkpoint else "unknown",
        }
        _record_settings(temporary, settings)
        temporary.replace(path)
    return OnnxRuntimeNetwork(path)


def export_checkpoint(
    network: nn.Module, checkpoint: str | Path, input_size: Sequence[int], cache_dir: str | Path
) -> Path:
    """Export the trained ``checkpoint`` ahead of time (inference.yaml's ``export_onnx``) and return the file.

    Args:
        network: the inference network as inference.yaml builds it (its settings from ``network.json``).
        checkpoint: the ``model.pt`` to export.
        input_size: the network input ``(h, w)``.
        cache_dir: where exports are kept (inference.yaml: ``.onnx_cache`` beside the checkpoint).

    Raises:
        FileNotFoundError, ValueError: from :func:`~scripts.inference.predictor.load_checkpoint`, naming the file.
        UntrainedRegressorError: when the checkpoint's record shows its regressor N_R never trained.
    """
    regressor_status(checkpoint)  # an untrained N_R is refused before the export's seconds are spent
    load_checkpoint(network.to("cpu"), checkpoint)
    exported = onnx_network(network, input_size, checkpoint, cache_dir)
    logger.info("ONNX export of %s: %s", checkpoint, exported.path)
    return exported.path
