# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Run the Seg4Reg+ network on one preprocessed radiograph and map its outputs back to the original resolution.

The pieces, in the order a config uses them:

- :func:`load_checkpoint` fills the network from ``model.pt`` and names the file when it is missing.
- :class:`CheckImageSized` refuses images too small to hold a spine (a 1-pixel-wide picture loads, but means nothing).
- :class:`SplitPredictiond` (the bundle's ``postprocessing``) turns the network's one-tensor output
  ``(K + 4, h, w)`` into the spine mask and CAM at the original ``(H, W)`` and the three angles.
- :class:`Seg4RegPredictor` ties network, inferer and postprocessing together for one image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.inferers import Inferer, SimpleInferer
from monai.transforms import MapTransform
from torch import nn

from scripts.data.resize_pad import restore_original_size
from scripts.engines.checkpoints import load_weights
from scripts.networks.seg4reg import split_output

__all__ = ["CheckImageSized", "Seg4RegPredictor", "SplitPredictiond", "load_checkpoint", "original_size_of"]

logger = logging.getLogger(__name__)


def load_checkpoint(network: nn.Module, path: str | Path) -> nn.Module:
    """Load the trained weights of the bundle (a state dict of ``Seg4RegPlus``) into ``network``.

    Args:
        network: the network built by ``network_def``; its hyper-parameters must match those that trained the file
            (merge the training recipe overlay, e.g. ``configs/cpu.yaml``, after ``inference.yaml``).
        path: the checkpoint, ``<ckpt_dir>/model.pt``.

    Returns:
        ``network`` in eval mode.

    Raises:
        FileNotFoundError: naming the missing file.
        ValueError: naming the file when it holds weights of another network (e.g. another recipe).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist: train the bundle first (configs/train.yaml writes models/model.pt), "
            "or give --ckpt_dir the folder that holds model.pt."
        )
    try:
        load_weights(network, path, stage="inference")
    except ValueError as error:
        raise ValueError(
            f"{error} Merge the recipe overlay that trained it after inference.yaml "
            "(e.g. --config_file \"['configs/inference.yaml','configs/cpu.yaml']\")."
        ) from error
    return network.eval()


def original_size_of(image: Any) -> tuple[int, int]:
    """The (H, W) on disk of a loaded image: its ``original_size`` metadata, or its own size without metadata."""
    meta = getattr(image, "meta", {}) or {}
    size = meta.get("original_size")
    if size is None:
        return int(image.shape[-2]), int(image.shape[-1])
    values = np.asarray(size).reshape(-1)[-2:]
    return int(values[0]), int(values[1])


class CheckImageSized(MapTransform):
    """Refuse images whose smaller side is below ``min_side`` pixels, naming the file.

    Such files load (a 1-pixel-wide png is a valid png), but resizing them to the network's input size produces a
    picture with no spine in it, and the network would still answer with confident-looking angles.

    Args:
        keys: the image keys, ``(C, H, W)`` as :class:`~scripts.data.loading.LoadGrayscaled` returns them.
        min_side: the smallest acceptable height and width in pixels.
        allow_missing_keys: skip absent keys.

    Raises:
        ValueError: on a bad ``min_side``; in a call, naming the file and its size.
    """

    def __init__(self, keys: KeysCollection, min_side: int = 32, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        if isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 1:
            raise ValueError(f"min_side must be an integer >= 1, got {min_side!r}.")
        self.min_side = min_side

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            height, width = int(d[key].shape[-2]), int(d[key].shape[-1])
            if min(height, width) < self.min_side:
                source = (getattr(d[key], "meta", {}) or {}).get("filename_or_obj", key)
                raise ValueError(
                    f"image {str(source)!r} is {height} x {width} pixels (H x W): too small to hold a spine "
                    f"radiograph (each side needs at least {self.min_side} pixels)."
                )
        return d


class SplitPredictiond(MapTransform):
    """Postprocessing of the Seg4Reg+ output for one image: mask, CAM and angles, back at the original resolution.

    Reads the decollated network output ``d[key]`` of shape ``(K + 4, h, w)`` (see
    :mod:`scripts.networks.seg4reg`) and the original size from ``d[ref_key]``'s ``original_size`` metadata, and adds:

    - ``mask``: ``(H, W)`` uint8 spine mask at the original resolution: the spine probability mapped back
      (bilinear, the padding cut away), then thresholded, so its edges are as smooth as the probability map.
    - ``cam``: ``(H, W)`` float32 mean class activation map in [0, 1] at the original resolution.
    - ``angles``: ``(3,)`` float64 Cobb angles in degrees (angle1 is the largest curve).
    - ``mask_network``: ``(1, h, w)`` float32 {0, 1} mask at the network's input resolution (the argmax).

    Args:
        keys: the network output key (``pred``).
        ref_key: the preprocessed image key whose metadata holds ``original_size``.
        spatial_size: the network's input (h, w), as given to ``ResizePadd``.
        num_seg_channels: segmentation classes K.
        threshold: spine probability above which a pixel is spine.

    Raises:
        ValueError: when the output does not have ``num_seg_channels + 4`` channels.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        ref_key: str = "image",
        spatial_size: Sequence[int] = (512, 256),
        num_seg_channels: int = 2,
        threshold: float = 0.5,
    ) -> None:
        super().__init__(keys)
        self.ref_key = ref_key
        self.spatial_size = tuple(int(v) for v in spatial_size)
        self.num_seg_channels = num_seg_channels
        self.threshold = float(threshold)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            output = torch.as_tensor(d[key]).detach().float().cpu()
            parts = split_output(output, self.num_seg_channels)
            size = original_size_of(d[self.ref_key]) if self.ref_key in d else tuple(output.shape[-2:])
            spine = parts["seg"][1:].sum(dim=0, keepdim=True)  # (1, h, w): every class but background
            spine_original = restore_original_size(spine, size, self.spatial_size, mode="bilinear")
            cam_original = restore_original_size(parts["cam"], size, self.spatial_size, mode="bilinear")
            d["mask"] = (spine_original[0] > self.threshold).numpy().astype(np.uint8)
            d["cam"] = cam_original[0].clamp(0.0, 1.0).numpy().astype(np.float32)
            d["angles"] = parts["angles"].double().numpy()
            d["mask_network"] = (parts["seg"].argmax(dim=0, keepdim=True) > 0).float()
        return d


class Seg4RegPredictor:
    """Segment one preprocessed radiograph and measure its Cobb angles.

    The weights are read by :meth:`load` (the workflows call it before touching any image), not when the object is
    built, so that checking the bundle's properties needs no checkpoint.

    Args:
        network: the Seg4Reg+ network built by ``network_def``, ``(B, 1, h, w) -> (B, K + 4, h, w)``.
        checkpoint: ``model.pt`` with its trained weights, or None when ``network`` is already trained.
        postprocessing: turns ``{"pred": (K + 4, h, w), "image": (1, h, w)}`` into the final results
            (:class:`SplitPredictiond`, or a ``Compose`` holding it).
        inferer: how the network is called (``SimpleInferer`` by default: the whole padded image at once).
        device: where the network runs.
    """

    def __init__(
        self,
        network: nn.Module,
        checkpoint: str | Path | None,
        postprocessing: Callable[[dict], dict],
        inferer: Inferer | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.network = network
        self.checkpoint = None if checkpoint in (None, "") else Path(checkpoint).expanduser()
        self.postprocessing = postprocessing
        self.inferer = inferer or SimpleInferer()
        self.device = torch.device(device)
        self._loaded = False

    def load(self) -> Seg4RegPredictor:
        """Load the checkpoint (once) and move the network to the device.

        Raises:
            FileNotFoundError: naming a missing checkpoint.
            ValueError: naming a checkpoint of another network.
        """
        if not self._loaded:
            if self.checkpoint is not None:
                load_checkpoint(self.network, self.checkpoint)
            self.network = self.network.to(self.device).eval()
            self._loaded = True
        return self

    def __call__(self, item: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        """Predict on one preprocessed record.

        Args:
            item: a record of the bundle's ``dataset``: ``image`` ``(1, h, w)`` with ``original_size`` metadata.

        Returns:
            The record with ``pred`` and the keys :class:`SplitPredictiond` adds (``mask``, ``cam``, ``angles``,
            ``mask_network``).
        """
        self.load()
        image = item["image"]
        image = image.as_tensor() if isinstance(image, MetaTensor) else torch.as_tensor(image)  # no metadata overhead
        batch = image.float()[None].to(self.device)
        with torch.no_grad():
            pred = self.inferer(batch, self.network)[0]
        return self.postprocessing({**item, "pred": pred.cpu()})
