# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The inference network under ONNX Runtime, an option for CPU inference (``runtime: onnxruntime`` in inference.yaml).

On this project's 2-core CPU, ONNX Runtime runs the CPU recipe's network several times faster than eager torch, with
the same output within float32 rounding (docs/performance.md). :func:`onnx_network` exports the trained network, weights
loaded, with ``torch.onnx.export`` for one image at a time (inference's batch size; another batch size is refused by
ONNX Runtime, never answered wrongly) and wraps an ONNX Runtime session in :class:`OnnxRuntimeNetwork`,
a module with the network's contract, ``(B, 1, h, w) -> (B, K + 4, h, w)``, so the evaluator, the flip check and the
postprocessing do not know the difference.

The export takes seconds, so it is kept in ``cache_dir`` under a name made of the checkpoint's MD5, the input size,
``flip_tta`` and the torch version: the next run of the same model reuses it, and a retrained ``model.pt`` gets its own
file. The file is written to a temporary name and renamed, so a killed export never leaves a torn model behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["OnnxRuntimeNetwork", "onnx_network"]

logger = logging.getLogger(__name__)


class OnnxRuntimeNetwork(nn.Module):
    """An ONNX Runtime session of the exported inference network, called like the network.

    Args:
        path: the exported ``.onnx`` file (input ``image``, output ``pred``).
        flip_tta: whether the exported network averages each answer with its mirror image's (read by the evaluator,
            which then skips its own flip check).
        threads: ONNX Runtime's intra-op threads (default: torch's thread count).

    Shapes:
        ``(1, 1, h, w)`` float32 on the CPU ``-> (1, K + 4, h, w)`` float32.
    """

    def __init__(self, path: str | Path, flip_tta: bool = False, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.path = Path(path)
        self.flip_tta = flip_tta
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        feed = {"image": image.detach().to("cpu", torch.float32).contiguous().numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    """
    if any(parameter.device.type != "cpu" for parameter in network.parameters()):
        raise ValueError("runtime onnxruntime runs the network on the CPU; use --device cpu (or runtime torch).")
    height, width = (int(v) for v in input_size)
    flip_tta = bool(getattr(network, "flip_tta", False))
    folder = Path(cache_dir).expanduser()
    key = _md5(Path(checkpoint)) if checkpoint else os.urandom(8).hex()
    path = folder / f"seg4reg-{key}-{height}x{width}-tta{int(flip_tta)}-torch{torch.__version__}.onnx"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        logger.info("exporting the network to ONNX: %s", path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on Python values it records as constants
            torch.onnx.export(
                network.eval(),
                (torch.zeros(1, 1, height, width),),
                str(temporary),
                dynamo=False,
                input_names=["image"],
                output_names=["pred"],
            )
        temporary.replace(path)
    return OnnxRuntimeNetwork(path, flip_tta=flip_tta)
