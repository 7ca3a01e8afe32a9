# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Each stage trains exactly what the paper trains: one optimiser step leaves the frozen parts bit-identical."""

from __future__ import annotations

import pytest
import torch

from scripts.engines.objectives import (
    ConsistencyObjective,
    RegressionObjective,
    SegmentationObjective,
    objective_loss,
    prepare_stage_batch,
)
from scripts.losses.ar_loss import ARLoss
from scripts.losses.seg_loss import SegmentationLoss
from scripts.losses.smape_loss import SMAPELoss
from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.pspnet import PSPNet
from scripts.networks.seg4reg import Seg4RegPlus


def _model(roie: bool = True, regressor_input: str = "both") -> Seg4RegPlus:
    torch.manual_seed(0)
    segmenter = PSPNet(depth=18, pyramid_channels=8, fuse_channels=8, roie=roie)
    regressor = CAMRegressor(in_channels=2 if regressor_input == "both" else 1)
    return Seg4RegPlus(segmenter, regressor, regressor_input=regressor_input)


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    image = torch.rand(2, 1, 64, 32)
    label = torch.zeros(2, 1, 64, 32)
    label[:, :, 8:56, 12:20] = 1
    return image, label, torch.tensor([[30.0, 12.0, 8.0], [18.0, 9.0, 2.0]])


def _step(objective) -> dict[str, torch.Tensor]:
    """One training step; returns the model's state (parameters and buffers) before it."""
    with torch.no_grad():
        # a non-zero gate lets the step reach everything the gate touches
        if objective.model.use_roie:
            objective.model.segmenter.gate.alpha.fill_(0.5)
    before = {k: v.detach().clone() for k, v in objective.model.state_dict().items()}
    optimizer = torch.optim.Adam(objective.trainable_parameters(), lr=1e-2)
    objective.train()
    loss = objective(*_batch())["loss"]
    loss.backward()
    optimizer.step()
    return before


def _changed(objective, before: dict[str, torch.Tensor], prefix: str) -> tuple[bool, bool]:
    """(any tensor under prefix changed, every parameter under prefix changed)."""
    after = objective.model.state_dict()
    keys = [k for k in before if k.startswith(prefix) and before[k].is_floating_point()]
    params = {n for n, _ in objective.model.named_parameters() if n.startswith(prefix)}
    diffs = {k: not torch.equal(before[k], after[k]) for k in keys}
    return any(diffs.values()), all(diffs[k] for k in keys if k in params)


def test_stage_a_trains_the_segmenter_only():
    objective = SegmentationObjective(_model(), SegmentationLoss(), frozen=["regressor", "segmenter.gate"])
    before = _step(objective)
    assert _changed(objective, before, "segmenter.encoder")[1]
    assert not _changed(objective, before, "regressor")[0]  # weights and batch-norm statistics
    assert not _changed(objective, before, "segmenter.gate")[0]


def test_stage_b_trains_the_regressor_with_ar_and_keeps_the_segmenter():
    objective = RegressionObjective(_model(), ARLoss(lambda_ar=1.0), frozen=["segmenter"])
    before = _step(objective)
    assert _changed(objective, before, "regressor")[1]
    assert not _changed(objective, before, "segmenter")[0]
    terms = objective(*_batch())
    assert {"smape_a", "smape_b", "attention"} <= set(terms)


def test_stage_c_trains_segmenter_and_gate_through_the_frozen_regressor():
    objective = SegmentationObjective(_model(), SegmentationLoss(), use_gate=True, frozen=["regressor"])
    before = _step(objective)
    assert _changed(objective, before, "segmenter.gate")[1]
    assert _changed(objective, before, "segmenter.encoder")[1]
    assert not _changed(objective, before, "regressor")[0]


def test_stage_d_trains_the_segmenter_from_the_consistency_loss():
    objective = ConsistencyObjective(_model(), SMAPELoss(), frozen=["regressor"])
    before = _step(objective)
    assert _changed(objective, before, "segmenter.classifier")[1]
    assert not _changed(objective, before, "regressor")[0]


def test_stage_d_optional_segmentation_term_is_logged():
    objective = ConsistencyObjective(_model(), SMAPELoss(), SegmentationLoss(), lambda_seg=0.5)
    out = objective(*_batch())
    assert out["loss"].item() == pytest.approx(out["consistency"].item() + 0.5 * out["segmentation"].item(), rel=1e-5)


def test_stage_e_uses_the_gate_and_freezes_the_segmenter():
    objective = RegressionObjective(_model(), ARLoss(), use_gate=True, frozen=["segmenter"])
    before = _step(objective)
    assert _changed(objective, before, "regressor")[1]
    assert not _changed(objective, before, "segmenter")[0]


def test_ablation_without_ar_uses_branch_a_only():
    objective = RegressionObjective(_model(regressor_input="image"), SMAPELoss(), frozen=["segmenter"])
    assert objective.siamese is None
    before = _step(objective)
    assert _changed(objective, before, "regressor")[1]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="regressor_input='both'"):
        RegressionObjective(_model(regressor_input="image"), ARLoss())
    with pytest.raises(ValueError, match="roie=True"):
        SegmentationObjective(_model(roie=False), SegmentationLoss(), use_gate=True)
    with pytest.raises(ValueError, match="unknown submodule 'decoder'"):
        SegmentationObjective(_model(), SegmentationLoss(), frozen=["decoder"])
    with pytest.raises(TypeError, match="Seg4RegPlus"):
        SegmentationObjective(torch.nn.Linear(2, 2), SegmentationLoss())


def test_prepare_stage_batch_and_objective_loss():
    image, label, angles = _batch()
    inputs, targets, args, kwargs = prepare_stage_batch({"image": image, "label": label, "angles": angles})
    assert inputs is not None and targets.shape == label.shape and args[1].dtype == torch.float32 and kwargs == {}
    assert objective_loss({"loss": torch.tensor(2.0)}) == 2.0
    with pytest.raises(ValueError, match=r"missing \['angles'\]"):
        prepare_stage_batch({"image": image, "label": label})


def test_the_stages_run_on_vertebra_labels_and_n_r_sees_the_union():
    torch.manual_seed(0)
    segmenter = PSPNet(out_channels=18, depth=18, pyramid_channels=8, fuse_channels=8)
    model = Seg4RegPlus(segmenter, CAMRegressor(in_channels=2))
    image, spine, angles = _batch()
    labels = spine * torch.arange(64).div(4, rounding_mode="floor").clamp(1, 17).view(1, 1, 64, 1)  # 1..17 rows
    seg_loss = SegmentationLoss()
    for objective in (
        SegmentationObjective(model, seg_loss, frozen=["regressor", "segmenter.gate"]),
        RegressionObjective(model, ARLoss(), frozen=["segmenter"]),
        ConsistencyObjective(model, SMAPELoss(), seg_loss, lambda_seg=1.0),
    ):
        loss = objective(image, labels, angles)["loss"]
        assert torch.isfinite(loss)
    # stage d's target: N_R on the true spine, whatever the vertebra labels are
    stage_d = ConsistencyObjective(model, SMAPELoss()).eval()
    with torch.no_grad():
        torch.testing.assert_close(stage_d(image, labels, angles)["loss"], stage_d(image, spine, angles)["loss"])
