"""MesoNet family: exact parameter counts of both code bases, MACs, features, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_macs, count_params


def ptflops_style_extra_ops(model: nn.Module, x: torch.Tensor) -> int:
    """Element-wise operations ptflops adds to conv/linear MACs (BN 2/elem, ReLU, pool, bias)."""
    total = [0]

    def hook(module, inputs, output):
        if isinstance(module, nn.BatchNorm2d):
            total[0] += 2 * inputs[0].numel()
        elif isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            total[0] += output.numel()
        elif isinstance(module, nn.MaxPool2d):
            total[0] += inputs[0].numel()
        elif isinstance(module, nn.Linear):
            total[0] += output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return total[0]


@pytest.mark.parametrize(
    "name, variant, params",
    [
        ("mesoinception4", "torch_port", 28_525),  # SFIConv Table V / LDFnet Table I: 28.52K
        ("mesoinception4", "keras", 28_615),  # Keras original, trainable
        ("meso4", "keras", 27_977),  # Keras original, trainable
        ("meso4", "torch_port", 27_898),  # port: no conv bias, shared BatchNorms
    ],
)
def test_exact_parameter_counts(name, variant, params):
    assert count_params(create_model(name, variant=variant)) == params


def test_mesoinception4_macs_match_benchmark():
    model = create_model("mesoinception4")
    x = torch.randn(1, 3, 256, 256)
    conv_linear = count_macs(model, x)
    assert conv_linear == 57_098_272
    # The papers' 60.18M comes from ptflops, which also counts BN/ReLU/pool/bias ops.
    total = conv_linear + ptflops_style_extra_ops(model, x)
    assert abs(total - 60_180_000) < 10_000, total


def test_meso_cnn150_count_and_shape():
    model = create_model("meso_cnn150")
    # conv 224+1608+3216+6416, BN 16+16+32+32, dense 256*16+16, out 16*2+2
    assert count_params(model) == 15_706
    assert get_spec("meso_cnn150").input_size == 150
    out = model(torch.randn(2, 3, 150, 150))
    assert out.shape == (2, 2)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("meso4", {"variant": "torch_port"}),
        ("meso4", {"variant": "keras"}),
        ("mesoinception4", {"variant": "torch_port"}),
        ("mesoinception4", {"variant": "keras"}),
        ("meso_cnn150", {}),
    ],
)
def test_forward_backward_features_gradcam(name, kwargs):
    spec = get_spec(name)
    model = create_model(name, **kwargs)
    size = spec.input_size
    x = torch.rand(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, 2)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    feats = model.forward_features(x)
    assert feats.dim() == 4 and feats.shape[1] == model.num_features
    assert spec.gradcam_layer in dict(model.named_modules())


def test_keras_head_is_sigmoid_of_single_logit():
    model = create_model("meso4", variant="keras").eval()
    with torch.no_grad():
        logits = model(torch.rand(3, 3, 256, 256))
    assert torch.all(logits[:, 0] == 0)
    torch.testing.assert_close(logits.softmax(1)[:, 1], torch.sigmoid(logits[:, 1]))


def test_port_shares_batchnorm_without_duplicate_tensors():
    model = create_model("meso4")
    assert len(model.norms) == 2
    keys = list(model.state_dict())
    assert len(keys) == len(set(keys))


def test_bad_options():
    with pytest.raises(ConfigError, match="variant"):
        create_model("meso4", variant="tf")
    with pytest.raises(ConfigError, match="too small"):
        create_model("mesoinception4", input_size=16)


@pytest.mark.parametrize("name, kwargs", [("meso4", {}), ("mesoinception4", {"variant": "keras"}), ("meso_cnn150", {})])
def test_short_training_lowers_loss(name, kwargs):
    torch.manual_seed(7)
    model = create_model(name, input_size=64, dropout=0.0, **kwargs)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 64, 64, generator=g) * 0.5
    y = torch.arange(16) % 2
    x[y == 1, :, 16:48, 16:48] += 0.5  # a bright patch marks the fakes
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()

    before = loss()
    for _ in range(30):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    assert loss() < 0.5 * before
