# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""Tests of the combined Seg4Reg+ inference network: the two passes, the output contract, TorchScript."""

from __future__ import annotations

import io

import pytest
import torch

from scripts.networks.cam_regressor import CAMRegressor
from scripts.networks.pspnet import PSPNet
from scripts.networks.seg4reg import Seg4RegPlus, spine_probability, split_output


def small_net(regressor_input: str = "both", roie: bool = True, backbone: str = "resnet18") -> Seg4RegPlus:
    segmenter = PSPNet(depth=18, pyramid_channels=8, fuse_channels=8, roie=roie)
    in_channels = {"image": 1, "segmentation": 1, "both": 2}[regressor_input]
    regressor = CAMRegressor(backbone, in_channels=in_channels)
    net = Seg4RegPlus(segmenter, regressor, regressor_input=regressor_input).eval()
    with torch.no_grad():
        if roie:
            segmenter.gate.alpha.fill_(0.5)  # make the gate matter
        regressor.fc.weight.normal_()  # and the CAMs non-trivial
        regressor.fc.bias.normal_()
    return net


@pytest.mark.parametrize(
    ("size", "regressor_input", "roie"),
    [((64, 32), "both", True), ((65, 33), "both", False), ((65, 33), "image", True), ((64, 32), "segmentation", True)],
)
def test_output_contract(size: tuple[int, int], regressor_input: str, roie: bool) -> None:
    torch.manual_seed(0)
    net = small_net(regressor_input, roie)
    with torch.no_grad():
        out = net(torch.rand(2, 1, *size))
    assert tuple(out.shape) == (2, 6, *size) and net.out_channels == 6
    parts = split_output(out)
    torch.testing.assert_close(parts["seg"].sum(dim=1), torch.ones(2, *size))
    assert parts["cam"].min() >= 0.0 and parts["cam"].max() <= 1.0
    assert tuple(parts["angles"].shape) == (2, 3)
    assert ((parts["angles"] > 0.0) & (parts["angles"] < 180.0)).all()
    # the angle planes are constant
    torch.testing.assert_close(out[:, 3:], parts["angles"][:, :, None, None].expand(-1, -1, *size))


def test_two_pass_semantics() -> None:
    torch.manual_seed(0)
    net = small_net("both", roie=True)
    segmenter, regressor = net.segmenter, net.regressor
    x = torch.rand(2, 1, 64, 32)
    with torch.no_grad():
        out = net(x)
        parts = net.forward_parts(x)
        # our two-pass reading (bundle/docs/README.md), step by step
        s0 = torch.softmax(segmenter(x), dim=1)
        cam0 = regressor(torch.cat([x, s0[:, 1:]], dim=1)).cam
        s = torch.softmax(segmenter(x, cam0), dim=1)
        final = regressor(torch.cat([x, s[:, 1:]], dim=1))
    torch.testing.assert_close(out[:, :2], s)
    torch.testing.assert_close(parts["attention"], cam0)
    torch.testing.assert_close(parts["cam"], final.cam)
    torch.testing.assert_close(parts["angles"], final.scaled_angles * 180.0)
    torch.testing.assert_close(split_output(out)["angles"], final.scaled_angles * 180.0)
    cam_plane = torch.nn.functional.interpolate(final.cam.mean(1, keepdim=True), size=(64, 32), mode="bilinear")
    torch.testing.assert_close(out[:, 2:3], cam_plane)
    assert not torch.allclose(s, s0)  # the gate changed the segmentation


def test_split_output_without_batch_dimension() -> None:
    output = torch.zeros(6, 4, 2)
    output[3:] = torch.tensor([30.0, 20.0, 10.0])[:, None, None]
    parts = split_output(output)
    assert tuple(parts["seg"].shape) == (2, 4, 2) and tuple(parts["cam"].shape) == (1, 4, 2)
    torch.testing.assert_close(parts["angles"], torch.tensor([30.0, 20.0, 10.0]))
    with pytest.raises(ValueError, match="channels"):
        split_output(torch.zeros(1, 5, 4, 2))
    with pytest.raises(ValueError, match="shape"):
        split_output(torch.zeros(5, 4))


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet-b1"])
def test_torchscript_round_trip(backbone: str) -> None:
    torch.manual_seed(0)
    net = small_net(backbone=backbone)
    x = torch.rand(1, 1, 65, 33)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    # the profiling executor's optimisation passes cost seconds and do not change the result
    with torch.no_grad(), torch.jit.optimized_execution(False):
        torch.testing.assert_close(loaded(x), net(x))
        other = torch.rand(2, 1, 64, 32)
        torch.testing.assert_close(loaded(other), net(other))


def test_trace_round_trip() -> None:
    torch.manual_seed(0)
    net = small_net()
    x = torch.rand(1, 1, 64, 32)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        traced = torch.jit.trace(net, x, check_trace=False)
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
        torch.testing.assert_close(loaded(x), net(x))
        other = torch.rand(2, 1, 97, 45)  # the traced graph keeps sizes symbolic
        torch.testing.assert_close(loaded(other), net(other))


def test_bad_arguments() -> None:
    segmenter = PSPNet(depth=18, pyramid_channels=8, fuse_channels=8)
    regressor = CAMRegressor("resnet18", in_channels=2)
    with pytest.raises(ValueError, match="regressor_input"):
        Seg4RegPlus(segmenter, regressor, regressor_input="mask")
    with pytest.raises(ValueError, match="angle_scale"):
        Seg4RegPlus(segmenter, regressor, angle_scale=0)
    with pytest.raises(ValueError, match="in_channels"):
        Seg4RegPlus(segmenter, regressor, regressor_input="image")
    with pytest.raises(TypeError, match="segmenter"):
        Seg4RegPlus(regressor, regressor)
    with pytest.raises(TypeError, match="regressor"):
        Seg4RegPlus(segmenter, segmenter)


def test_bad_inputs() -> None:
    net = small_net()
    with pytest.raises(ValueError, match="4D"):
        net(torch.rand(1, 64, 32))
    with pytest.raises(ValueError, match="1 input channels"):
        net(torch.rand(1, 3, 64, 32))


def test_parts_for_the_stages() -> None:
    torch.manual_seed(0)
    net = small_net("both", roie=True)
    x = torch.rand(1, 1, 64, 32)
    with torch.no_grad():
        single = torch.softmax(net.segmenter(x), dim=1)
        ungated = net.forward_parts(x, use_gate=False)
        unregressed = net.forward_parts(x, regress=False)
        torch.testing.assert_close(ungated["seg"], single)
        assert "attention" not in ungated
        assert "attention" in unregressed and not {"cam", "scaled_angles", "angles"} & set(unregressed)
        torch.testing.assert_close(net.segmentation(x, use_gate=True), net(x)[:, :2])
        torch.testing.assert_close(net.segmentation(x, use_gate=False), single)
        torch.testing.assert_close(net.attention(x), net.forward_parts(x)["attention"])


def test_gated_segment_runs_the_backbone_once_and_matches_two_passes() -> None:
    torch.manual_seed(0)
    net = small_net("both", roie=True)
    x = torch.rand(2, 1, 64, 32)
    calls = []
    hook = net.segmenter.encoder.layer4.register_forward_hook(lambda *args: calls.append(1))  # once per backbone pass
    logits, attention = net.gated_segment(x)
    hook.remove()
    assert len(calls) == 1
    with torch.no_grad():
        cam0 = net.regressor(torch.cat([x, torch.softmax(net.segmenter(x), dim=1)[:, 1:]], dim=1)).cam
        two_pass = net.segmenter(x, cam0)
    torch.testing.assert_close(attention, cam0)
    torch.testing.assert_close(logits, two_pass)
    # the gate still trains through the shared features
    logits.square().mean().backward()
    assert net.segmenter.gate.alpha.grad is not None and net.segmenter.gate.alpha.grad.abs() > 0
    assert all(p.grad is None for p in net.regressor.parameters())  # the CAM is an input, as in stages c-e


def test_flip_tta_averages_the_mirrored_answer() -> None:
    torch.manual_seed(0)
    net = small_net("both", roie=True)
    x = torch.rand(2, 1, 64, 32)
    with torch.no_grad():
        plain, mirrored = net.forward_parts(x), net.forward_parts(torch.flip(x, dims=[3]))
        net.flip_tta = True
        tta = net.forward_parts(x)
        tta_of_mirror = net.forward_parts(torch.flip(x, dims=[3]))
        out = net(x)
    torch.testing.assert_close(tta["angles"], 0.5 * (plain["angles"] + mirrored["angles"]))
    expected_logits = 0.5 * (plain["seg_logits"] + torch.flip(mirrored["seg_logits"], dims=[3]))
    torch.testing.assert_close(tta["seg"], torch.softmax(expected_logits, dim=1))
    torch.testing.assert_close(tta_of_mirror["angles"], tta["angles"])  # a mirrored radiograph gets the same angles
    torch.testing.assert_close(split_output(out)["angles"], tta["angles"])
    net.train()
    assert net.forward_parts(x)["angles"].shape == (2, 3)  # training batches are not doubled
    assert not torch.allclose(tta["angles"], plain["angles"])


def test_torchscript_round_trip_of_the_cpu_recipe_layout() -> None:
    """Lite0 encoder with the skip decoder, Lite0 regressor and flip TTA: what `ckpt_export` scripts for cpu.yaml."""
    torch.manual_seed(0)
    segmenter = PSPNet(
        backbone="efficientnet-lite0", output_stride=16, pyramid_rates=[1, 2], pyramid_channels=8, fuse_channels=8,
        skip_channels=4,
    )  # fmt: skip
    net = Seg4RegPlus(segmenter, CAMRegressor("efficientnet-lite0", in_channels=2), flip_tta=True).eval()
    with torch.no_grad():
        segmenter.gate.alpha.fill_(0.5)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.rand(1, 1, 64, 32)
    with torch.no_grad(), torch.jit.optimized_execution(False):
        torch.testing.assert_close(loaded(x), net(x))


def test_a_vertebra_segmenter_feeds_the_union_of_its_classes() -> None:
    torch.manual_seed(0)
    segmenter = PSPNet(out_channels=18, depth=18, pyramid_channels=8, fuse_channels=8)
    net = Seg4RegPlus(segmenter, CAMRegressor("resnet18", in_channels=2)).eval()
    image = torch.rand(2, 1, 64, 32)
    with torch.no_grad():
        out = net(image)
        parts = net.forward_parts(image, use_gate=False)
    assert tuple(out.shape) == (2, 22, 64, 32) and net.out_channels == 22
    union = 1 - parts["seg"][:, :1]  # every vertebra: all but background
    torch.testing.assert_close(spine_probability(parts["seg"]), union)
    torch.testing.assert_close(net.regression_input(image, parts["seg"]), torch.cat([image, union], dim=1))
    assert tuple(split_output(out, 18)["seg"].shape) == (2, 18, 64, 32)


def test_with_two_classes_the_spine_probability_is_the_spine_channel() -> None:
    seg = torch.softmax(torch.randn(2, 2, 8, 4), dim=1)
    assert torch.equal(spine_probability(seg), seg[:, 1:])
