"""Seed-study temporal models: sizes, shapes, input errors, learning a toy task."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ddtool.errors import InputError
from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_params


def test_specs():
    volume, sequence = get_spec("cnn3d"), get_spec("gru")
    assert volume.input_kind == "volume" and volume.input_size == (20, 100, 100)
    assert sequence.input_kind == "sequence" and sequence.input_size == (20, 1)


def test_parameter_counts_documented():
    # cnn3d: conv 1->20 (27*20+20) + 20->16 (540*16+16) + 16->8 (432*8+8) + dense 8->16 + 16->2
    assert count_params(create_model("cnn3d")) == 560 + 8656 + 3464 + 144 + 34
    # gru: 3 gates x (32*1 + 32*32 + 2*32 biases) + head 32*2+2
    assert count_params(create_model("gru")) == 3 * (32 + 1024 + 64) + 66


def test_cnn3d_full_size_forward_and_backward():
    model = create_model("cnn3d")
    out = model(torch.randn(1, 20, 100, 100))
    assert out.shape == (1, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.forward_features(torch.randn(1, 20, 100, 100)).shape == (1, 8, 10, 50, 50)


def test_gru_forward_backward_and_2d_input():
    model = create_model("gru")
    seq = torch.randn(4, 20, 1)
    out = model(seq)
    assert out.shape == (4, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    torch.testing.assert_close(model(seq.squeeze(-1)), out.detach())


def test_wrong_shapes_are_input_errors():
    with pytest.raises(InputError, match=r"\(N, T, H, W\)"):
        create_model("cnn3d")(torch.randn(2, 1, 20, 100, 100))
    with pytest.raises(InputError, match=r"\(N, T, 1\)"):
        create_model("gru")(torch.randn(2, 20, 3))


def _train(model, x, y, steps: int, lr: float) -> tuple[float, float]:
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def loss() -> float:
        with torch.no_grad():
            return F.cross_entropy(model(x), y).item()

    before = loss()
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return before, loss()


def test_cnn3d_learns_low_vs_high_residual_energy():
    torch.manual_seed(7)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(16) % 2
    # The study's premise: fakes are blurrier, so their residuals are weaker.
    scale = torch.where(y == 1, 0.2, 1.0).view(-1, 1, 1, 1)
    x = torch.randn(16, 6, 16, 16, generator=g).abs() * scale
    before, after = _train(create_model("cnn3d"), x, y, steps=40, lr=1e-2)
    assert after < 0.5 * before, (before, after)


def test_gru_learns_a_dropping_sequence():
    torch.manual_seed(7)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(32) % 2
    x = torch.randn(32, 20, 1, generator=g) * 0.1 + 0.5
    x[y == 1, 10:] -= 0.4  # a face swap half-way: the residual level drops
    before, after = _train(create_model("gru"), x, y, steps=60, lr=1e-2)
    assert after < 0.5 * before, (before, after)
