# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The MONAI evaluator under both inference workflows: weights read at the start, one network pass per batch.

:class:`InferenceEvaluator` is a ``SupervisedEvaluator`` that overrides only what Seg4Reg+ needs: :meth:`run` checks
there is data and loads ``model.pt`` before the engine starts (a missing file is named before any image is read), and
the iteration runs the network through the inferer on the batch's ``image``. MONAI then decollates the batch and
applies the bundle's ``postprocessing`` to each image, and the handlers read ``engine.state.batch`` /
``engine.state.output``, one record per image.

Its subclasses: ``scripts.inference.runner.FolderEvaluator`` (``configs/inference.yaml``: a folder of radiographs, bad
files named and skipped) and ``scripts.inference.evaluation.SplitEvaluator`` (``configs/evaluate.yaml``: a labelled
split scored by training's metric handlers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from monai.data import MetaTensor
from monai.engines import SupervisedEvaluator
from monai.engines.utils import IterationEvents
from monai.inferers import Inferer, SimpleInferer
from monai.utils import CommonKeys as Keys
from torch import nn
from torch.utils.data import DataLoader

from scripts.inference.onnx_runtime import onnx_network
from scripts.inference.predictor import load_checkpoint
from scripts.networks.seg4reg import split_output

__all__ = ["RUNTIMES", "InferenceEvaluator"]

RUNTIMES = ("torch", "onnxruntime")


class InferenceEvaluator(SupervisedEvaluator):
    """A MONAI evaluator that loads the bundle's weights when it runs and applies the postprocessing per image.

    Each iteration's output is ``{"pred": (B, K + 4, h, w)}`` (plus what :meth:`model_output` adds in a subclass);
    MONAI decollates it and the batch, then applies ``postprocessing`` to each image's merged batch and output record.

    Args:
        device: where the network runs.
        val_data_loader: batches of the bundle's ``dataset`` through its ``preprocessing``; ``image`` ``(B, 1, h, w)``.
        network: the network of ``network_def``, ``(B, 1, h, w) -> (B, K + 4, h, w)``.
        checkpoint: its weights, read when :meth:`run` starts; None or empty when the network is already trained (the
            exported TorchScript network).
        postprocessing: the bundle's ``postprocessing`` (one decollated record).
        inferer: how the network is called (``SimpleInferer`` by default: the whole padded image at once).
        flip_check: also run the mirrored image and add its angles, ``angles_flipped`` ``(B, 3)``, to the output (the
            quality verdict's flip check, :mod:`scripts.inference.verdict`); skipped for a network that already
            averages both (``flip_tta``), whose two answers are one. Twice the network's cost.
        runtime: ``"torch"`` (eager), or ``"onnxruntime"``: once the weights are loaded, the network is exported and
            run by ONNX Runtime on the CPU (:mod:`scripts.inference.onnx_runtime`; needs ``input_size``).
        input_size: the network input ``(h, w)``, for ``runtime="onnxruntime"``.
        onnx_cache_dir: where the ONNX exports are kept (inference.yaml: ``.onnx_cache`` beside the checkpoint; None:
            the same).
        kwargs: passed to ``SupervisedEvaluator`` (``val_handlers``, ``key_val_metric``, ...).
    """

    def __init__(
        self,
        device: str | torch.device,
        val_data_loader: DataLoader,
        network: nn.Module,
        checkpoint: str | Path | None,
        postprocessing: Callable[[dict], dict],
        inferer: Inferer | None = None,
        flip_check: bool = False,
        runtime: str = "torch",
        input_size: Sequence[int] | None = None,
        onnx_cache_dir: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}.")
        if runtime == "onnxruntime" and input_size is None:
            raise ValueError("runtime onnxruntime needs the network's input_size to export it.")
        super().__init__(
            device=torch.device(device),
            val_data_loader=val_data_loader,
            network=network,
            inferer=inferer or SimpleInferer(),
            postprocessing=postprocessing,
            decollate=True,
            **kwargs,
        )
        self.checkpoint = None if checkpoint in (None, "") else Path(checkpoint).expanduser()
        self.flip_check = bool(flip_check) and not getattr(network, "flip_tta", False)
        self.runtime = runtime
        self.input_size = None if input_size is None else tuple(int(v) for v in input_size)
        self.onnx_cache_dir = onnx_cache_dir

    @property
    def records(self) -> list[Mapping[str, Any]]:
        """The untransformed records of the data loader's dataset (before its ``preprocessing``)."""
        return list(getattr(self.data_loader.dataset, "data", []))

    def check_data(self) -> None:
        """Raise, before the weights are read, when there is nothing to run on (subclasses say what is missing)."""

    def load_network(self) -> None:
        """Read the checkpoint (when there is one) into the network and move it to the device.

        Raises:
            FileNotFoundError: naming a missing checkpoint.
            ValueError: naming a checkpoint of another network.
        """
        if self.checkpoint is not None:
            self.network = load_checkpoint(self.network, self.checkpoint)
        self.network = self.network.to(self.state.device).eval()
        if self.runtime == "onnxruntime":
            cache = self.onnx_cache_dir or (self.checkpoint.parent if self.checkpoint else Path.cwd()) / ".onnx_cache"
            self.network = onnx_network(self.network, self.input_size, self.checkpoint, cache)

    def run(self, global_epoch: int = 1) -> None:  # type: ignore[override]
        """Check the data, load the weights, then run every batch once (the handlers see the usual Ignite events).

        Raises:
            What :meth:`check_data` and :meth:`load_network` raise, before any image is read.
        """
        self.check_data()
        self.load_network()
        super().run(global_epoch)

    def model_output(self, engine: SupervisedEvaluator, batchdata: Mapping[str, Any]) -> dict[str, Any]:
        """The network's answer on the batch, ``{"pred": (B, K + 4, h, w)}``; subclasses add batch entries to it."""
        image = batchdata[Keys.IMAGE]
        # the network gets a plain tensor; the metadata and transform trace stay in the batch for the postprocessing
        image = image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)
        image = image.float().to(engine.state.device, non_blocking=engine.non_blocking)
        with engine.mode(engine.network):
            pred = engine.inferer(image, engine.network)
            if not self.flip_check:
                return {Keys.PRED: pred}
            mirrored = engine.inferer(torch.flip(image, dims=[3]), engine.network)
        return {Keys.PRED: pred, "angles_flipped": split_output(mirrored, mirrored.shape[1] - 4)["angles"]}

    def _iteration(self, engine: SupervisedEvaluator, batchdata: dict[str, Any]) -> dict[str, Any]:
        if batchdata is None:
            raise ValueError("the evaluator needs a batch for each iteration.")
        engine.state.output = self.model_output(engine, batchdata)
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output  # decollated and postprocessed by MONAI's MODEL_COMPLETED handlers, one per image
