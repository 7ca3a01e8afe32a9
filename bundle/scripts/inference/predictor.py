# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Run the Seg4Reg+ network on one preprocessed radiograph and map its outputs back to the original resolution.

The pieces, in the order a config uses them:

- :func:`load_checkpoint` fills the network from ``model.pt`` and names the file when it is missing or damaged.
- :class:`CheckImageSized` refuses images too small to hold a spine (a 1-pixel-wide picture loads, but means nothing).
- The bundle's ``postprocessing``: :class:`SplitPredictiond` splits the network's one-tensor output ``(K + 4, h, w)``
  into the spine probability, the CAM and the three angles; MONAI's ``Invertd`` brings probability and CAM back to
  the original ``(H, W)`` by undoing the preprocessing's ``ResizePadd`` from its transform trace; :class:`SpineMaskd`
  thresholds the probability into the mask.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from torch import nn

from scripts.engines.checkpoint_files import DamagedCheckpointError
from scripts.engines.checkpoints import load_weights
from scripts.networks.definition import RECORD_NAME
from scripts.networks.seg4reg import split_output

__all__ = [
    "CheckImageSized",
    "SpineMaskd",
    "SplitPredictiond",
    "load_checkpoint",
    "original_size_of",
]

logger = logging.getLogger(__name__)


def load_checkpoint(network: nn.Module, path: str | Path) -> nn.Module:
    """Load the trained weights of the bundle (a state dict of ``Seg4RegPlus``) into ``network``.

    Args:
        network: the network built by ``network_def``; its settings must be those that trained the file (inference.yaml
            reads them from the ``network.json`` training wrote beside it).
        path: the checkpoint, ``<ckpt_dir>/model.pt``.

    Returns:
        ``network`` in eval mode.

    Raises:
        FileNotFoundError: naming the missing file.
        scripts.engines.checkpoint_files.DamagedCheckpointError: a ValueError naming the file when it is truncated
            or corrupted (a copy cut short, or bytes changed inside: every member's checksum is verified before the
            weights are used, since a changed byte in a tensor would load without complaint and serve wrong answers).
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
    except DamagedCheckpointError:
        raise  # the file itself is broken: the advice about network settings below would mislead
    except ValueError as error:
        raise ValueError(
            f"{error} Training writes the settings of its network beside the weights ({RECORD_NAME}), and "
            "inference.yaml builds the network from them: keep that file next to the model, or give the settings "
            "that trained it as --network_overrides."
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
    """Split the Seg4Reg+ output of one image into its parts, still at the network's input resolution.

    Reads the decollated network output ``d[key]`` of shape ``(K + 4, h, w)`` (see :mod:`scripts.networks.seg4reg`)
    and adds:

    - ``d[prob_key]``: ``(1, h, w)`` float32 MetaTensor, the spine probability (every class but background).
    - ``d[cam_key]``: ``(1, h, w)`` float32 MetaTensor, the mean class activation map.
    - ``angles``: ``(3,)`` float64 Cobb angles in degrees (angle1 is the largest curve).
    - ``mask_network``: ``(1, h, w)`` float32 {0, 1} mask at the network's input resolution (the argmax).
    - ``labels_network``: only for an N_S that labels each vertebra (K = 18): ``(h, w)`` uint8 argmax, 0 background
      and 1 (T1) .. 17 (L5), at the network's input resolution (:mod:`scripts.inference.geometry` measures it).

    Nothing here knows the resize-and-pad: MONAI's ``Invertd`` undoes it from the transform trace of the image
    (``configs/inference.yaml``'s ``postprocessing``), and :class:`SpineMaskd` thresholds the result.

    Args:
        keys: the network output key (``pred``).
        num_seg_channels: segmentation classes K.
        prob_key: where the spine probability goes.
        cam_key: where the CAM goes.

    Raises:
        ValueError: when the output does not have ``num_seg_channels + 4`` channels.
    """

    def __init__(
        self,
        keys: KeysCollection = "pred",
        num_seg_channels: int = 2,
        prob_key: str = "spine",
        cam_key: str = "cam",
    ) -> None:
        super().__init__(keys)
        self.num_seg_channels = num_seg_channels
        self.prob_key = prob_key
        self.cam_key = cam_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            output = torch.as_tensor(d[key]).detach().float().cpu()
            parts = split_output(output, self.num_seg_channels)
            # MetaTensors: Invertd skips plain tensors (with a mere warning) unless a separate trace key is present
            d[self.prob_key] = MetaTensor(parts["seg"][1:].sum(dim=0, keepdim=True))  # every class but background
            d[self.cam_key] = MetaTensor(parts["cam"])
            d["angles"] = parts["angles"].double().numpy()
            labels = parts["seg"].argmax(dim=0, keepdim=True)
            d["mask_network"] = (labels > 0).float()
            if self.num_seg_channels > 2:
                d["labels_network"] = labels[0].numpy().astype(np.uint8)
        return d


class SpineMaskd(MapTransform):
    """The final arrays of one image, once ``Invertd`` has brought probability and CAM back to ``(1, H, W)``.

    Adds ``mask``: ``(H, W)`` uint8 spine mask, the restored (bilinear) probability above ``threshold``, so its edges
    are as smooth as the probability map; and replaces ``d[cam_key]`` by the ``(H, W)`` float32 CAM in [0, 1].

    Args:
        keys: the spine probability key (``spine``), ``(1, H, W)``.
        cam_key: the CAM key, ``(1, H, W)``; None or absent: left alone.
        mask_key: where the mask goes.
        threshold: spine probability above which a pixel is spine.
        ref_key: the original image ``(1, H, W)``; when present, the mask must have its size.

    Raises:
        ValueError: in a call, naming the file, when the probability is not at the size of ``d[ref_key]`` (``Invertd``
            only warns when the image holding the trace is absent, and leaves the probability at the network's size).
    """

    def __init__(
        self,
        keys: KeysCollection = "spine",
        cam_key: str | None = "cam",
        mask_key: str = "mask",
        threshold: float = 0.5,
        ref_key: str | None = "image_original",
    ) -> None:
        super().__init__(keys)
        self.cam_key = cam_key
        self.mask_key = mask_key
        self.threshold = float(threshold)
        self.ref_key = ref_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        reference = d.get(self.ref_key) if self.ref_key is not None else None
        for key in self.key_iterator(d):
            probability = torch.as_tensor(d[key]).detach().cpu()  # a MetaTensor after Invertd: plain data is enough
            if reference is not None and tuple(probability.shape[-2:]) != tuple(reference.shape[-2:]):
                source = (getattr(reference, "meta", {}) or {}).get("filename_or_obj", key)
                raise ValueError(
                    f"image {str(source)!r}: the spine probability is {tuple(probability.shape[-2:])}, not the "
                    f"original {tuple(reference.shape[-2:])}: Invertd found no resize-and-pad trace to undo."
                )
            d[self.mask_key] = (probability[0] > self.threshold).numpy().astype(np.uint8)
        if self.cam_key is not None and self.cam_key in d:
            cam = torch.as_tensor(d[self.cam_key]).detach().cpu().float()
            d[self.cam_key] = cam[0].clamp(0.0, 1.0).numpy().astype(np.float32)
        return d
