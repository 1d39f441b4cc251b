"""ResNet / VGG / MobileNet, vanilla and SFIConv: contract, sizes, cost, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_macs, count_params

FAMILIES = ["resnet26", "resnet50", "resnet101", "vgg13", "vgg16", "vgg19", "mobilenet"]
MODELS = FAMILIES + [f"sfic_{n}" for n in FAMILIES]
# Measured here; the SFIConv variants add 25 x C_in depthwise trace weights for their one MCSConv.
EXACT_PARAMS = {
    "resnet26": 13_950_274,  # = the official code's count
    "sfic_resnet26": 13_951_874,  # official 13,953,538 minus 1,664 dead weights (see docs/models.md)
    "mobilenet": 3_209_026,
}
# MACs at 256 x 256 counting conv + linear only (FlopCounterMode / 2); see docs/models.md for the gap.
EXACT_MACS = {"resnet26": 3_056_603_136, "sfic_resnet26": 3_063_156_736, "mobilenet": 741_509_120}


def _meta(name: str, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs)


@pytest.mark.parametrize("name", MODELS)
def test_params_match_table_iii(name):
    params = count_params(_meta(name))
    if name in EXACT_PARAMS:
        assert params == EXACT_PARAMS[name]
    assert abs(params - get_spec(name).paper_params) / get_spec(name).paper_params < 0.02


# Real forward + backward for the small members of each family; the large
# ones (same code, more blocks) are checked with shape-only meta tensors.
LIGHT = ["resnet26", "sfic_resnet26", "vgg13", "sfic_vgg13", "mobilenet", "sfic_mobilenet"]


@pytest.mark.parametrize("name", LIGHT)
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 2)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", MODELS)
def test_feature_contract(name):
    model = _meta(name).eval()
    x = torch.randn(2, 3, 64, 64, device="meta")
    assert model(x).shape == (2, 2)
    feats = model.forward_features(x)
    assert feats.ndim == 4 and feats.shape[1] == model.num_features
    spec = get_spec(name)
    seen = []
    handle = model.get_submodule(spec.gradcam_layer).register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    model(x)
    handle.remove()
    assert seen == [feats.shape]  # Grad-CAM explains the last feature map, the one the head pools
    assert spec.input_size == 256 and spec.train.lr == 1e-4 and spec.train.batch_size == 64


@pytest.mark.parametrize("name", sorted(EXACT_MACS))
def test_macs_at_256_match_documented_numbers(name):
    macs = count_macs(_meta(name), torch.randn(1, 3, 256, 256, device="meta"))
    assert macs == EXACT_MACS[name]
    paper = get_spec(name).paper_macs
    # ResNets land within 1% of Table III; MobileNet's ptflops figure also counts BN/ReLU (2.6%).
    assert abs(macs - paper) / paper < (0.03 if "mobilenet" in name else 0.01)


@pytest.mark.parametrize(
    "alpha,beta,paper_gmacs", [(0.25, 0.75, 2.80), (0.5, 0.5, 2.10), (0.5, 0.25, 1.86), (0.75, 0.5, 1.61), (0.75, 0.25, 1.24)]
)
def test_flexible_form_macs_follow_table_ii(alpha, beta, paper_gmacs):
    model = _meta("sfic_resnet26", alpha=alpha, beta=beta)
    assert count_params(model) == EXACT_PARAMS["sfic_resnet26"]  # beta changes cost, never size
    macs = count_macs(model, torch.randn(1, 3, 256, 256, device="meta"))
    assert abs(macs / 1e9 - paper_gmacs) / paper_gmacs < 0.02


@pytest.mark.parametrize("family", ["resnet26", "vgg13", "mobilenet"])
def test_alpha_zero_sfic_backbone_equals_vanilla_size_and_cost(family):
    vanilla, sfic = _meta(family), _meta(f"sfic_{family}", alpha=0.0)
    x = torch.randn(1, 3, 64, 64, device="meta")
    assert count_params(sfic) == count_params(vanilla)
    assert count_macs(sfic, x) == count_macs(vanilla, x)


def test_mcs_fixed_option_freezes_only_the_trace_kernels():
    learnable, fixed = _meta("sfic_resnet26"), _meta("sfic_resnet26", mcs_fixed=True)
    assert count_params(fixed) == count_params(learnable)
    assert count_params(learnable, trainable_only=True) - count_params(fixed, trainable_only=True) == 25 * 64


def _separable_batch(generator: torch.Generator, n: int = 16):
    """Fake = smooth noise plus a fine checkerboard; real = smooth noise only."""
    y = torch.arange(n) % 2
    smooth = F.interpolate(torch.randn(n, 3, 8, 8, generator=generator), size=32, mode="bilinear")
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2).float() * 2 - 1
    return smooth + y[:, None, None, None] * 0.8 * checker, y


@pytest.mark.parametrize("name", ["resnet26", "sfic_resnet26", "sfic_mobilenet", "sfic_vgg13"])
def test_short_training_lowers_loss(name):
    torch.manual_seed(7)
    model = create_model(name).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = _separable_batch(torch.Generator().manual_seed(0))
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{name}: loss {losses}"
