# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""How much Dice a segmentation head at a given output stride can reach: the true masks, coarsened and upsampled.

    python scripts/mask_ceiling.py <boostnet_labeldata> [--fold 0] [--images 30] [--sizes 256x128 384x192 512x256]
        [--strides 4 8]

For the first ``--images`` records of a fold's inner validation part (``inner_val_folds`` 6, as cross-validation uses
it), each true spine mask is rendered at the network size, reduced by area averaging to 1/stride, upsampled bilinearly
and thresholded at 0.5; the table gives the mean Dice against the original mask. A network whose logits live at that
stride cannot be expected to do better.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bundle"))

from monai.transforms import Compose

from scripts.data.aasce import DatasetError
from scripts.data.datasets import fold_datalists
from scripts.data.loading import LoadGrayscaled
from scripts.data.resize_pad import ResizePadd
from scripts.data.spine_mask import RenderSpineMaskd


def ceiling_dice(mask: torch.Tensor, stride: int) -> float:
    """Dice of ``mask`` ``(H, W)`` against itself reduced to ``1/stride`` and upsampled again."""
    truth = mask[None, None].float()
    coarse = F.interpolate(truth, scale_factor=1 / stride, mode="area")
    restored = F.interpolate(coarse, size=truth.shape[2:], mode="bilinear", align_corners=False) > 0.5
    overlap = (restored & (truth > 0.5)).sum()
    return float(2 * overlap / (restored.sum() + (truth > 0.5).sum()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset_root", type=Path, help="AASCE root (boostnet_labeldata)")
    parser.add_argument("--fold", type=int, default=0, help="held-out fold whose inner validation part is used")
    parser.add_argument("--images", type=int, default=30, help="how many of its images (default 30)")
    parser.add_argument("--sizes", nargs="+", default=["256x128", "384x192", "512x256"], help="network sizes HxW")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8], help="output strides")
    args = parser.parse_args(argv)
    try:
        sizes = [[int(v) for v in size.lower().split("x")] for size in args.sizes]
        records = fold_datalists(args.dataset_root, fold=args.fold, inner_val_folds=6)["val"][: args.images]
    except (DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Dice ceiling, {len(records)} images of fold {args.fold}'s inner validation part")
    print("| size | " + " | ".join(f"stride {s}" for s in args.strides) + " |")
    print("|---" * (len(args.strides) + 1) + "|")
    for size in sizes:
        transform = Compose(
            [
                LoadGrayscaled(keys="image"),
                ResizePadd(keys="image", spatial_size=size, mode="bilinear", landmarks_key="landmarks"),
                RenderSpineMaskd(keys="landmarks", mask_keys="label", ref_key="image"),
            ]
        )
        masks = [torch.as_tensor(transform(dict(record))["label"])[0] for record in records]
        cells = [np.mean([ceiling_dice(mask, stride) for mask in masks]) for stride in args.strides]
        print(f"| {size[0]}x{size[1]} | " + " | ".join(f"{value:.3f}" for value in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
