"""SFIConv layer: MCSConv constraint, stages, alpha/beta behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddtool.models.complexity import count_macs, count_params
from ddtool.models.layers.conv_factory import VanillaConvFactory
from ddtool.models.sficonv import SFIConvFactory
from ddtool.models.sficonv import MCSConv, SFIConv, SFIConvBN


def _check_constraint(weight: torch.Tensor) -> None:
    centre = weight[..., 2, 2]
    assert torch.allclose(centre, torch.full_like(centre, -1.0))
    off_sum = weight.sum(dim=(-2, -1)) - centre
    assert torch.allclose(off_sum, torch.ones_like(off_sum), atol=1e-5)


def test_learnable_mcsconv_keeps_constraint_after_optimiser_steps():
    torch.manual_seed(0)
    mcs = MCSConv(8, 4, kernel_size=3)
    before = mcs.trace.weight.detach().clone()
    opt = torch.optim.SGD(mcs.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        mcs(torch.randn(2, 8, 12, 12)).pow(2).mean().backward()
        opt.step()
    assert not torch.allclose(before, mcs.trace.weight), "the constrained kernels should train"
    _check_constraint(mcs.trace.constrained_weight())


def test_fixed_mcsconv_kernels_do_not_change():
    mcs = MCSConv(4, 4, kernel_size=1, learnable=False)
    before = mcs.trace.weight.detach().clone()
    opt = torch.optim.SGD([p for p in mcs.parameters() if p.requires_grad], lr=0.5)
    mcs(torch.randn(2, 4, 8, 8)).sum().backward()
    opt.step()
    assert torch.equal(before, mcs.trace.weight)
    _check_constraint(mcs.trace.weight)


def test_mcs_trace_removes_flat_content():
    # Centre -1 and neighbours summing to 1: a constant image gives zero residual inside the border.
    mcs = MCSConv(3, 3, kernel_size=1)
    trace = mcs.trace(torch.full((1, 3, 16, 16), 5.0))
    assert trace[..., 2:-2, 2:-2].abs().max() < 1e-4


@pytest.mark.parametrize("alpha,in_c,out_c,expected_f", [(0.5, 64, 128, 64), (0.25, 64, 100, 25), (0.75, 32, 10, 7)])
def test_channel_split_uses_int_alpha_c(alpha, in_c, out_c, expected_f):
    conv = SFIConv(in_c, out_c, 3, stage="dual", alpha=alpha)
    assert conv.out_channels_freq == expected_f
    assert conv.out_channels_spatial == out_c - expected_f
    assert conv.in_channels_freq == int(alpha * in_c)


@pytest.mark.parametrize("stage", ["split", "dual", "merge"])
@pytest.mark.parametrize("stride", [1, 2])
def test_alpha_zero_reduces_to_vanilla_shape_and_cost(stage, stride):
    vanilla = VanillaConvFactory().conv_bn(16, 24, 3, stride=stride)
    sfic = SFIConvFactory(alpha=0.0).conv_bn(16, 24, 3, stride=stride, stage=stage)
    x = torch.randn(2, 16, 20, 20)
    sfic_in = x if stage == "split" else (x, x.new_zeros(2, 0, 20, 20))
    y_vanilla, y_sfic = vanilla(x), sfic(sfic_in)
    if stage != "merge":
        assert y_sfic[1].shape[1] == 0
        y_sfic = y_sfic[0]
    assert y_sfic.shape == y_vanilla.shape
    assert count_params(sfic) == count_params(vanilla)
    assert count_macs(sfic, sfic_in) == count_macs(vanilla, x)


def test_alpha_half_costs_vanilla_plus_mcs_only():
    vanilla = VanillaConvFactory().conv_bn(32, 64, 3)
    dual = SFIConvBN(32, 64, 3, stage="dual")
    split = SFIConvBN(32, 64, 3, stage="split")
    assert count_params(dual) == count_params(vanilla)
    assert count_params(split) == count_params(vanilla) + 25 * 32  # the depthwise 5x5 trace kernels
    x = torch.randn(1, 32, 16, 16)
    assert count_macs(dual, (x[:, :16], x[:, 16:])) == count_macs(vanilla, x)
    assert count_macs(split, x) == count_macs(vanilla, x) + 25 * 32 * 16 * 16


def test_fused_dual_matches_separate_convs():
    torch.manual_seed(1)
    conv = SFIConv(12, 8, 3, stage="dual", alpha=0.5)
    x_s, x_f = torch.randn(2, 6, 9, 9), torch.randn(2, 6, 9, 9)
    out_s, out_f = conv((x_s, x_f))
    assert torch.allclose(out_s, F.conv2d(x_s, conv.s2s.weight, padding=1) + F.conv2d(x_f, conv.f2s.weight, padding=1), atol=1e-5)
    assert torch.allclose(out_f, F.conv2d(x_f, conv.f2f.weight, padding=1) + F.conv2d(x_s, conv.s2f.weight, padding=1), atol=1e-5)


def test_beta_below_one_shrinks_frequency_branch_and_keeps_output():
    torch.manual_seed(2)
    split = SFIConvBN(8, 8, 3, stage="split", beta=0.5)
    dual = SFIConvBN(8, 16, 3, stride=2, stage="dual", beta=0.5)
    merge = SFIConvBN(16, 12, 1, stage="merge", beta=0.5)
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    s, f = split(x)
    assert s.shape == (2, 4, 16, 16) and f.shape == (2, 4, 8, 8)
    s, f = dual((s, f))
    assert s.shape == (2, 8, 8, 8) and f.shape == (2, 8, 4, 4)
    out = merge((s, f))
    assert out.shape == (2, 12, 8, 8)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # The frequency branch runs at a quarter of the pixels: fewer MACs than beta = 1.
    full = SFIConvBN(8, 16, 3, stride=2, stage="dual", beta=1.0)
    sf = (torch.randn(1, 4, 16, 16), torch.randn(1, 4, 16, 16))
    assert count_macs(dual, (sf[0], sf[1][..., ::2, ::2])) < count_macs(full, sf)


def test_depthwise_stages_split_channels():
    split = SFIConvBN(16, 16, 3, groups=16, stage="split")
    dual = SFIConvBN(16, 16, 3, stride=2, groups=16, stage="dual")
    s, f = dual(split(torch.randn(2, 16, 8, 8)))
    assert s.shape == (2, 8, 4, 4) and f.shape == (2, 8, 4, 4)
    with pytest.raises(ValueError):
        SFIConv(16, 16, 3, groups=16, stage="merge")


@pytest.mark.parametrize("kwargs", [{"alpha": 1.5}, {"beta": 0.0}, {"stage": "middle"}, {"groups": 4}])
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SFIConv(16, 16, 3, **kwargs)


def test_fused_depthwise_dual_matches_separate_convs():
    torch.manual_seed(3)
    conv = SFIConv(8, 8, 3, groups=8, stage="dual")
    x_s, x_f = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    out_s, out_f = conv((x_s, x_f))
    assert torch.allclose(out_s, F.conv2d(x_s, conv.s2s.weight, padding=1, groups=4), atol=1e-5)
    assert torch.allclose(out_f, F.conv2d(x_f, conv.f2f.weight, padding=1, groups=4), atol=1e-5)
