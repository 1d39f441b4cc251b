"""LDFnet: size targets, forward/backward, ablation switches, learning a toy task."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_macs, count_params
from ddtool.models.layers.sge import SpatialGroupEnhance
from ddtool.models.ldfnet import LDFNet, TraceBlock

PAPER_PARAMS = 963_000
PAPER_MACS = 801_000_000


def toy_batch(n: int = 16, size: int = 64, seed: int = 0):
    """Real = smooth noise; fake = the same plus a fine checkerboard (a 'trace')."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g) * 0.3
    y = torch.arange(n) % 2
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = ((yy + xx) % 2).float() * 2 - 1
    x[y == 1] += 0.8 * checker
    return x, y


def batch_loss(model: nn.Module, x, y) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def test_registered_spec():
    spec = get_spec("ldfnet")
    assert spec.input_size == 256 and spec.input_kind == "image"
    assert spec.train.lr == 1e-3 and spec.train.lr_decay == 0.5 and spec.train.epochs == 20
    assert spec.train.batch_size == 64 and spec.train.seed == 7
    model = create_model("ldfnet")
    assert isinstance(dict(model.named_modules())[spec.gradcam_layer], nn.Module)


def test_size_matches_paper_within_5_percent():
    model = create_model("ldfnet")
    params = count_params(model)
    macs = count_macs(model, torch.randn(1, 3, 256, 256))
    assert abs(params - PAPER_PARAMS) / PAPER_PARAMS < 0.05, params
    assert abs(macs - PAPER_MACS) / PAPER_MACS < 0.05, macs


def test_forward_backward_and_features():
    model = create_model("ldfnet")
    x = torch.randn(2, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 2)
    logits.sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    feats = model.forward_features(x)
    assert feats.shape[:2] == (2, model.num_features) and feats.dim() == 4


def test_sge_starts_neutral_and_has_two_params_per_group():
    sge = SpatialGroupEnhance(32, groups=8)
    assert count_params(sge) == 16
    x = torch.randn(2, 32, 8, 8)
    # weight 0, bias 1: every position gated by sigmoid(1) until training moves it.
    torch.testing.assert_close(sge(x), x * torch.sigmoid(torch.tensor(1.0)))
    with torch.no_grad():
        sge.weight.fill_(5.0)
    assert not torch.allclose(sge(x), x * torch.sigmoid(torch.tensor(1.0)))
    with pytest.raises(ConfigError):
        SpatialGroupEnhance(30, groups=8)


def test_traceblock_weights_stay_in_unit_interval_and_branches_are_global():
    block = TraceBlock(8, 16, stride=2)
    with torch.no_grad():
        block.mix_logits.copy_(torch.tensor([-40.0, 40.0]))
    w = block.branch_weights
    torch.testing.assert_close(w, torch.tensor([0.0, 1.0]), atol=1e-6, rtol=0)  # the mix follows its logits
    block.eval()
    # Only the global branch is active now: a change in one corner must reach the opposite corner.
    x = torch.randn(1, 8, 32, 32)
    x2 = x.clone()
    x2[..., :4, :4] += 10.0
    delta = (block(x2) - block(x)).abs()
    assert delta.shape[-2:] == (16, 16)
    assert delta[..., -1, -1].sum() > 0


@pytest.mark.parametrize(
    "switches",
    [
        dict(sge=False, gtr=False, dfm=False),
        dict(sge=True, gtr=False, dfm=False),
        dict(sge=False, gtr=True, dfm=False),
        dict(sge=True, gtr=True, dfm=False),
        dict(dfm_variant="A"),
        dict(dfm_variant="B"),
        dict(dfm_variant="C"),
        dict(dfm_variant="D"),
    ],
)
def test_ablations_change_structure_and_run(switches):
    full = create_model("ldfnet")
    model = create_model("ldfnet", **switches)
    assert count_params(model) != count_params(full) or switches.get("dfm_variant") == "D"
    if switches.get("dfm_variant") == "D":
        assert model.dfm.variant == "D"
    if not switches.get("sge", True):
        assert not any(isinstance(m, SpatialGroupEnhance) for m in model.modules())
    if switches.get("gtr") is False:
        assert model.gtr is None
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 2)
    out.sum().backward()


def test_bad_switches_are_config_errors():
    with pytest.raises(ConfigError, match="dfm=False"):
        LDFNet(gtr=False)
    with pytest.raises(ConfigError, match="variant"):
        LDFNet(dfm_variant="E")
    with pytest.raises(ConfigError, match="five"):
        LDFNet(widths=(32, 64))


def test_short_training_lowers_loss():
    torch.manual_seed(7)
    model = create_model("ldfnet", widths=(8, 16, 16, 32, 32), trace_channels=8)
    x, y = toy_batch(n=8, size=32)
    before = batch_loss(model, x, y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    after = batch_loss(model, x, y)
    assert after < 0.5 * before, (before, after)
