# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The training objective of each triangle-consistency stage, as a module whose forward returns the stage's loss.

Each objective wraps the whole :class:`~scripts.networks.seg4reg.Seg4RegPlus` model, freezes what its stage freezes, and
computes that stage's loss in ``forward``. Wrapping the objective (not the model) in DistributedDataParallel keeps
gradient synchronisation correct, because every trained parameter is reached through that one forward call.

===========  ==========================  ===============================================================
stage        objective                   loss
===========  ==========================  ===============================================================
(a)          SegmentationObjective       Eq. 1 on N_S(x), gate off; N_R frozen
(b), (e)     RegressionObjective         Eq. 3 + Eq. 4 (AR: Siamese N_R on [x, s] and [0, s]); N_S frozen
(c)          SegmentationObjective       Eq. 1 on N_S(x, CAM), CAM from frozen N_R on [x, s0]
(d)          ConsistencyObjective        SMAPE(N_R(x, s(x)), N_R(x, y)) (+ optional lambda * Eq. 1); N_R frozen
===========  ==========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from scripts.losses.ar_loss import ARLoss
from scripts.losses.seg_loss import SegmentationLoss
from scripts.losses.smape_loss import SMAPELoss
from scripts.networks.seg4reg import Seg4RegPlus, spine_probability
from scripts.networks.siamese import SiameseAR

__all__ = [
    "ConsistencyObjective",
    "RegressionObjective",
    "SegmentationObjective",
    "StageObjective",
    "objective_loss",
    "prepare_stage_batch",
]


class StageObjective(nn.Module):
    """Base of the stage objectives: owns the model and keeps the frozen parts frozen and in eval mode.

    Args:
        model: the Seg4Reg+ model.
        frozen: dotted names of the model's submodules this stage does not train (``"segmenter"``, ``"regressor"``,
            ``"segmenter.gate"``); their parameters get ``requires_grad=False`` and they stay in eval mode, so that batch
            normalisation statistics do not drift either.

    Raises:
        TypeError: if ``model`` is not a Seg4RegPlus.
        ValueError: if a frozen name is not a submodule of the model.
    """

    def __init__(self, model: Seg4RegPlus, frozen: Sequence[str] = ()) -> None:
        super().__init__()
        if not isinstance(model, Seg4RegPlus):
            raise TypeError(f"model must be a Seg4RegPlus, got {type(model).__name__}.")
        self.model = model
        self.frozen = tuple(frozen)
        for name in self.frozen:
            try:
                module = model.get_submodule(name)
            except AttributeError as error:
                raise ValueError(f"frozen names an unknown submodule {name!r} of the model.") from error
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> StageObjective:
        super().train(mode)
        for name in self.frozen:
            self.model.get_submodule(name).eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters this stage trains (give these to the optimiser)."""
        return [p for p in self.parameters() if p.requires_grad]

    def forward(self, image: torch.Tensor, label: torch.Tensor, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        """The stage's loss and what it saw.

        Args:
            image: ``(B, 1, H, W)``.
            label: ``(B, 1, H, W)``: the spine mask (0, 1), or the vertebra label map (0, 1 = T1 .. 17 = L5) of an
                N_S that segments each vertebra.
            angles: Cobb angles in degrees ``(B, 3)``.

        Returns:
            ``loss`` (scalar) and stage-specific terms (scalars, detached) for logging.
        """
        raise NotImplementedError


class SegmentationObjective(StageObjective):
    """Stages (a) and (c): Eq. 1 on the segmentation logits, with the ROIE gate fed by the frozen N_R in stage (c).

    Args:
        model: the Seg4Reg+ model.
        loss: Eq. 1 (soft Dice + lambda * cross-entropy).
        use_gate: feed N_R's CAM to the ROIE gate (stage (c)); the CAM is computed without gradient, as at inference.
        frozen: submodules not trained (``("regressor", "segmenter.gate")`` in stage (a), ``("regressor",)`` in (c)).
    """

    def __init__(
        self, model: Seg4RegPlus, loss: SegmentationLoss, use_gate: bool = False, frozen: Sequence[str] = ("regressor",)
    ) -> None:
        super().__init__(model, frozen)
        if use_gate and not model.use_roie:
            raise ValueError("use_gate=True needs a segmenter built with roie=True.")
        self.loss = loss
        self.use_gate = use_gate

    def forward(self, image: torch.Tensor, label: torch.Tensor, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.model.gated_segment(image)[0] if self.use_gate else self.model.segment(image)
        return {"loss": self.loss(logits, label)}


class RegressionObjective(StageObjective):
    """Stages (b) and (e): N_R on the frozen N_S's segmentation, with the AR module's Siamese pair or without it.

    Args:
        model: the Seg4Reg+ model (its ``angle_scale`` turns degrees into the sigmoid targets).
        loss: :class:`ARLoss` (AR on; needs ``regressor_input="both"``) or :class:`SMAPELoss` (AR off).
        use_gate: segment with the ROIE gate (stage (e), after stage (c) trained it).
        frozen: submodules not trained (``("segmenter",)``).
    """

    def __init__(
        self,
        model: Seg4RegPlus,
        loss: ARLoss | SMAPELoss,
        use_gate: bool = False,
        frozen: Sequence[str] = ("segmenter",),
    ) -> None:
        super().__init__(model, frozen)
        if isinstance(loss, ARLoss) and model.regressor_input != "both":
            raise ValueError(
                f"the AR module needs regressor_input='both' (its branch B zeroes the image), got {model.regressor_input!r}."
            )
        if use_gate and not model.use_roie:
            raise ValueError("use_gate=True needs a segmenter built with roie=True.")
        self.loss = loss
        self.use_gate = use_gate
        self.siamese = SiameseAR(model.regressor) if isinstance(loss, ARLoss) else None

    def forward(self, image: torch.Tensor, label: torch.Tensor, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        target = angles / self.model.angle_scale
        with torch.no_grad():
            seg = self.model.segmentation(image, use_gate=self.use_gate)
        if self.siamese is None:
            prediction = self.model.regress(image, seg).scaled_angles
            return {"loss": self.loss(prediction, target)}
        out = self.siamese(image, spine_probability(seg))
        terms = self.loss.terms(out.scaled_angles_a, out.scaled_angles_b, out.cam_a, out.cam_b, target)
        return {"loss": self.loss.total(terms), **{name: value.detach() for name, value in terms.items()}}


class ConsistencyObjective(StageObjective):
    """Stage (d): N_S learns from the frozen N_R that its mask must give the angles the true mask gives.

    ``SMAPE(N_R(x, s(x)), N_R(x, y))`` with ``s(x)`` the (gated, when the model has a gate) segmentation and ``y`` the
    ground-truth mask (our reading of the paper's consistency loss), plus ``lambda_seg`` times Eq. 1 to keep masks sane
    (off by default).

    Args:
        model: the Seg4Reg+ model.
        loss: Eq. 3 (SMAPE loss).
        seg_loss: Eq. 1, used when ``lambda_seg > 0``.
        lambda_seg: weight of Eq. 1, >= 0.
        frozen: submodules not trained (``("regressor",)``).
    """

    def __init__(
        self,
        model: Seg4RegPlus,
        loss: SMAPELoss,
        seg_loss: SegmentationLoss | None = None,
        lambda_seg: float = 0.0,
        frozen: Sequence[str] = ("regressor",),
    ) -> None:
        super().__init__(model, frozen)
        if not float(lambda_seg) >= 0:
            raise ValueError(f"lambda_seg must be >= 0, got {lambda_seg!r}.")
        if lambda_seg > 0 and seg_loss is None:
            raise ValueError("lambda_seg > 0 needs a seg_loss.")
        self.loss = loss
        self.seg_loss = seg_loss
        self.lambda_seg = float(lambda_seg)

    def forward(self, image: torch.Tensor, label: torch.Tensor, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            spine = (label > 0).float()  # the spine of a vertebra label map too
            truth = torch.cat([1 - spine, spine], dim=1)
            target = self.model.regress(image, truth).scaled_angles
        logits = self.model.gated_segment(image)[0] if self.model.use_roie else self.model.segment(image)
        prediction = self.model.regress(image, torch.softmax(logits, dim=1)).scaled_angles
        consistency = self.loss(prediction, target)
        if self.lambda_seg == 0:
            return {"loss": consistency}
        segmentation = self.seg_loss(logits, label)
        return {
            "loss": consistency + self.lambda_seg * segmentation,
            "consistency": consistency.detach(),
            "segmentation": segmentation.detach(),
        }


def prepare_stage_batch(
    batchdata: dict[str, torch.Tensor], device: str | torch.device | None = None, non_blocking: bool = False, **kwargs
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor], dict]:
    """``prepare_batch`` for a MONAI ``SupervisedTrainer`` whose network is a :class:`StageObjective`.

    The trainer then calls ``objective(image, label, angles)`` through its inferer and :func:`objective_loss` on the result,
    so MONAI's own iteration (AMP, gradient accumulation, events) runs every stage.

    Args:
        batchdata: a collated batch with ``image`` (B, 1, H, W), ``label`` (B, 1, H, W) and ``angles`` (B, 3) degrees.
        device: where to move the tensors.
        non_blocking: passed to ``Tensor.to``.

    Returns:
        ``(image, label, (label, angles), {})``, the layout MONAI's trainer unpacks into inputs, targets, args, kwargs.
    """
    missing = [key for key in ("image", "label", "angles") if key not in batchdata]
    if missing:
        raise ValueError(f"a training batch needs the keys image, label and angles; missing {missing}.")
    image, label, angles = (
        torch.as_tensor(batchdata[key]).to(device=device, non_blocking=non_blocking, **kwargs)
        for key in ("image", "label", "angles")
    )
    return image, label, (label, angles.float()), {}


def objective_loss(output: dict[str, torch.Tensor], target: torch.Tensor | None = None) -> torch.Tensor:
    """``loss_function`` for a MONAI ``SupervisedTrainer`` whose network is a :class:`StageObjective`: its ``loss``."""
    return output["loss"]
