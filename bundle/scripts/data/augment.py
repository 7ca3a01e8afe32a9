# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The paper's augmentation: random horizontal flip, rotation and isotropic scale of image, mask and landmarks together.

One random draw gives one (3, 3) affine map of pixel coordinates (the convention of :mod:`scripts.data.resize_pad`):
``p' = c + s R(theta) (F p - c)``, with ``F`` the optional mirror ``x -> W - x``, ``c = (W / 2, H / 2)`` the image centre,
``R`` a rotation and ``s`` a scale. Images are resampled through that map (:func:`~scripts.data.resize_pad.warp_affine`)
and landmarks are multiplied by the very same matrix, so the two stay aligned to the pixel. After a flip the corners
are relabelled (TL <-> TR, BL <-> BR) so that the landmark order stays the conventional one. The output has the input's
size; landmarks may leave the image after a rotation or an enlargement and are kept as they are.

Flips and scales leave the official Cobb angles unchanged exactly; a rotation can make the rule pick another branch for
angles 2 and 3 (about 1% of the AASCE training images within +-45 degrees), which ``recompute_angles`` takes into account.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, MapTransform, Randomizable
from monai.utils import TraceKeys, convert_to_dst_type, convert_to_tensor, ensure_tuple_rep

from scripts.data.cobb import NUM_LANDMARKS, cobb_angles
from scripts.data.resize_pad import INTERPOLATION_MODES, index_affine, map_points, warp_affine

__all__ = ["FLIP_PERMUTATION", "RandSpineAffine", "RandSpineAffined", "flip_landmark_order", "spine_affine_matrix"]

# After a horizontal mirror, the corner that was top-left is on the right: new (TL, TR, BL, BR) = old (TR, TL, BR, BL).
FLIP_PERMUTATION = np.array([4 * v + k for v in range(NUM_LANDMARKS // 4) for k in (1, 0, 3, 2)])


def spine_affine_matrix(spatial_size: Sequence[int], flip: bool, angle_deg: float, scale: float) -> np.ndarray:
    """The (3, 3) map of pixel coordinates (x, y, 1) for one draw of the augmentation.

    Args:
        spatial_size: (H, W) of the image (input and output).
        flip: mirror horizontally first.
        angle_deg: rotation about the image centre, degrees (positive turns +x towards +y, clockwise on screen).
        scale: isotropic scale about the image centre.

    Returns:
        (3, 3) float64 matrix from input to output coordinates.
    """
    height, width = float(spatial_size[0]), float(spatial_size[1])
    mirror = np.array([[-1.0, 0.0, width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if flip else np.eye(3)
    cos, sin = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    linear = np.array([[scale * cos, -scale * sin, 0.0], [scale * sin, scale * cos, 0.0], [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0.0, -width / 2], [0.0, 1.0, -height / 2], [0.0, 0.0, 1.0]])
    return np.linalg.inv(to_origin) @ linear @ to_origin @ mirror


def flip_landmark_order(landmarks: Any) -> Any:
    """Relabel the corners of mirrored landmarks (TL <-> TR, BL <-> BR) so they are in the conventional order.

    Args:
        landmarks: (68, 2) points, numpy array or torch tensor.

    Returns:
        The same points, reordered; the permutation is its own inverse.
    """
    if tuple(landmarks.shape) != (NUM_LANDMARKS, 2):
        raise ValueError(f"landmarks must have shape ({NUM_LANDMARKS}, 2), got {tuple(landmarks.shape)}.")
    if isinstance(landmarks, torch.Tensor):
        return landmarks[torch.as_tensor(FLIP_PERMUTATION, device=landmarks.device)]
    return np.asarray(landmarks)[FLIP_PERMUTATION]


def _check_arguments(prob_flip: float, rotate_deg: float, scale_range: Sequence[float]) -> tuple[float, float]:
    if not 0.0 <= prob_flip <= 1.0:
        raise ValueError(f"prob_flip must lie in [0, 1], got {prob_flip!r}.")
    if not (math.isfinite(rotate_deg) and 0.0 <= rotate_deg <= 180.0):
        raise ValueError(f"rotate_deg must lie in [0, 180], got {rotate_deg!r}.")
    scales = tuple(float(v) for v in scale_range)
    if len(scales) != 2 or not (0.0 < scales[0] <= scales[1] and math.isfinite(scales[1])):
        raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, got {scale_range!r}.")
    return scales  # type: ignore[return-value]


class RandSpineAffine(Randomizable, InvertibleTransform):
    """Random flip, rotation and isotropic scale about the image centre: ``(C, H, W) -> (C, H, W)``.

    The array transform draws ``(flip, angle, scale)`` and applies it to one image; :meth:`map_landmarks` maps
    landmarks with the current draw. :class:`RandSpineAffined` applies one draw to several keys. With metadata tracking
    on, the draw is recorded so :meth:`inverse` undoes it (useful for test-time augmentation).

    Args:
        prob_flip: probability of the horizontal flip.
        rotate_deg: the angle is drawn uniformly in ``[-rotate_deg, rotate_deg]`` degrees.
        scale_range: the scale is drawn uniformly in this range.
        mode: ``"bilinear"`` (images) or ``"nearest"`` (masks).

    Raises:
        ValueError: on a probability outside [0, 1], a negative angle, a bad scale range or mode.
    """

    def __init__(
        self,
        prob_flip: float = 0.5,
        rotate_deg: float = 45.0,
        scale_range: Sequence[float] = (0.85, 1.25),
        mode: str = "bilinear",
    ) -> None:
        self.scale_range = _check_arguments(prob_flip, rotate_deg, scale_range)
        self.prob_flip = float(prob_flip)
        self.rotate_deg = float(rotate_deg)
        if mode not in INTERPOLATION_MODES:
            raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {mode!r}.")
        self.mode = mode
        self.flip, self.angle_deg, self.scale = False, 0.0, 1.0

    def randomize(self, data: Any = None) -> None:
        # always three draws in the same order, so a seed gives the same stream whatever the settings
        self.flip = bool(self.R.random() < self.prob_flip)
        self.angle_deg = float(self.R.uniform(-self.rotate_deg, self.rotate_deg))
        self.scale = float(self.R.uniform(*self.scale_range))

    def matrix(self, spatial_size: Sequence[int]) -> np.ndarray:
        """The current draw as a (3, 3) map of pixel coordinates for an image of ``spatial_size`` (H, W)."""
        return spine_affine_matrix(spatial_size, self.flip, self.angle_deg, self.scale)

    def map_landmarks(self, landmarks: Any, spatial_size: Sequence[int]) -> Any:
        """Map (68, 2) landmarks (x, y) with the current draw, relabelling corners after a flip.

        Args:
            landmarks: (68, 2) points of an image of ``spatial_size`` (H, W).
            spatial_size: (H, W) of that image.

        Returns:
            (68, 2) mapped points, same container; floating dtypes are kept.
        """
        mapped = map_points(landmarks, self.matrix(spatial_size))
        return flip_landmark_order(mapped) if self.flip else mapped

    def __call__(self, img: Any, mode: str | None = None, randomize: bool = True) -> torch.Tensor:
        """Args:
            img: (C, H, W) image or mask.
            mode: overrides the interpolation mode of this call.
            randomize: draw anew (False reuses the current draw, as the dictionary version does).

        Returns:
            (C, H, W) MetaTensor (plain tensor when metadata tracking is off).
        """
        if randomize:
            self.randomize()
        mode = mode or self.mode
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        if img_t.ndim != 3:
            raise ValueError(f"img must be a (C, H, W) image, got shape {tuple(img_t.shape)}.")
        size = (int(img_t.shape[1]), int(img_t.shape[2]))
        matrix = self.matrix(size)
        out, *_ = convert_to_dst_type(warp_affine(img_t, matrix, size, mode=mode), img_t)
        if not isinstance(out, MetaTensor):
            return out
        extra = {"flip": self.flip, "angle_deg": self.angle_deg, "scale": self.scale, "mode": mode}
        return self.push_transform(out, orig_size=size, extra_info=extra, affine=index_affine(matrix))

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Undo the most recent draw recorded on ``data`` (a MetaTensor this transform produced)."""
        transform = self.pop_transform(data)
        extra = transform[TraceKeys.EXTRA_INFO]
        size = tuple(int(v) for v in transform[TraceKeys.ORIG_SIZE])
        undo = np.linalg.inv(spine_affine_matrix(size, extra["flip"], extra["angle_deg"], extra["scale"]))
        out, *_ = convert_to_dst_type(warp_affine(data, undo, size, mode=extra["mode"]), data)
        with self.trace_transform(False):
            return self.push_transform(out, affine=index_affine(undo))


class RandSpineAffined(Randomizable, MapTransform, InvertibleTransform):
    """Dictionary wrapper of :class:`RandSpineAffine`: one draw for the image, mask and landmarks keys.

    Args:
        keys: image and mask keys; all must share one (H, W).
        landmarks_key: key of the (68, 2) landmarks, or None. Absent landmarks are skipped.
        angles_key: key of the (3,) angles, rewritten only when ``recompute_angles`` is set.
        prob_flip: probability of the horizontal flip (0.5).
        rotate_deg: rotation range in degrees, ``[-rotate_deg, rotate_deg]`` (45).
        scale_range: isotropic scale range ((0.85, 1.25)).
        mode: one mode for every key, or one per key in order; the default suits keys ``(image, mask)``, and modes
            beyond the number of keys are ignored.
        recompute_angles: replace the angles by the official rule applied to the transformed landmarks, with the output
            image height; the honest target when a rotation changes the rule's branch.
        allow_missing_keys: skip absent image keys instead of raising.

    Raises:
        ValueError: on bad arguments, keys of different sizes, landmarks without any image key, or
            ``recompute_angles`` without landmarks.
    """

    def __init__(
        self,
        keys: KeysCollection,
        landmarks_key: Hashable | None = "landmarks",
        angles_key: Hashable | None = "angles",
        prob_flip: float = 0.5,
        rotate_deg: float = 45.0,
        scale_range: Sequence[float] = (0.85, 1.25),
        mode: str | Sequence[str] = ("bilinear", "nearest"),
        recompute_angles: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
        if len(modes) != 1 and len(modes) < len(self.keys):
            raise ValueError(f"mode must be one mode or one per key ({len(self.keys)} keys), got {mode!r}.")
        self.mode = ensure_tuple_rep(modes[0], len(self.keys)) if len(modes) == 1 else modes[: len(self.keys)]
        for item in self.mode:
            if item not in INTERPOLATION_MODES:
                raise ValueError(f"mode must be one of {INTERPOLATION_MODES}, got {item!r}.")
        if recompute_angles and (landmarks_key is None or angles_key is None):
            raise ValueError("recompute_angles needs landmarks_key and angles_key, got None.")
        self.landmarks_key = landmarks_key
        self.angles_key = angles_key
        self.recompute_angles = recompute_angles
        self.affine = RandSpineAffine(prob_flip, rotate_deg, scale_range)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None) -> RandSpineAffined:
        self.affine.set_random_state(seed, state)
        super().set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        self.affine.randomize()

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        self.randomize()
        sizes = {key: (int(d[key].shape[-2]), int(d[key].shape[-1])) for key in self.key_iterator(d)}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"all keys must share one spatial size, got {sizes}.")
        size = next(iter(sizes.values()), None)
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.affine(d[key], mode=mode, randomize=False)
        has_landmarks = self.landmarks_key is not None and self.landmarks_key in d
        if has_landmarks:
            if size is None:
                raise ValueError(
                    f"landmarks {self.landmarks_key!r} cannot be mapped: none of the keys {self.keys} is present."
                )
            d[self.landmarks_key] = self.affine.map_landmarks(d[self.landmarks_key], size)
        if self.recompute_angles and self.angles_key in d:
            if not has_landmarks or size is None:
                raise ValueError(f"recompute_angles needs {self.landmarks_key!r} and an image key in the data.")
            angles = cobb_angles(np.asarray(_as_numpy(d[self.landmarks_key]), dtype=np.float64), size[0])
            d[self.angles_key] = _like(angles, d[self.angles_key])
        return d

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        record = None
        for key in self.key_iterator(d):
            record = self.affine.get_most_recent_transform(d[key])
            d[key] = self.affine.inverse(d[key])
        if record is not None and self.landmarks_key is not None and self.landmarks_key in d:
            extra = record[TraceKeys.EXTRA_INFO]
            size = tuple(int(v) for v in record[TraceKeys.ORIG_SIZE])
            points = d[self.landmarks_key]
            if extra["flip"]:
                points = flip_landmark_order(points)
            undo = np.linalg.inv(spine_affine_matrix(size, extra["flip"], extra["angle_deg"], extra["scale"]))
            d[self.landmarks_key] = map_points(points, undo)
        return d


def _as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _like(values: np.ndarray, template: Any) -> Any:
    """``values`` in the container, dtype and device of ``template``."""
    if isinstance(template, torch.Tensor):
        return torch.as_tensor(values, dtype=template.dtype, device=template.device)
    dtype = np.asarray(template).dtype
    return values.astype(dtype if np.issubdtype(dtype, np.floating) else np.float32)
