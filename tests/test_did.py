"""DID (CrossDF): decomposition model, its losses and its training objective."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_params
from ddtool.models.did import DIDModel, MutualInformationCritic, cyclic_derangement
from ddtool.train.losses import (
    GradientReversal,
    auc_loss,
    bce_auc_loss,
    grad_reverse,
    grl_beta,
    js_mutual_information,
)


# Tiny tensors: a second thread only adds synchronisation cost on the shared 2-core machine.
pytestmark = pytest.mark.usefixtures("single_thread")


class TinyBackbone(nn.Module):
    """Follows the backbone contract: forward_features -> (N, C, h, w), num_features = C."""

    def __init__(self, channels: int = 16):
        super().__init__()
        self.num_features = channels
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, channels, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.fc = nn.Linear(channels, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.forward_features(x).mean(dim=(2, 3)))


def tiny_did(num_domains: int = 2, **kwargs) -> DIDModel:
    return DIDModel(TinyBackbone(), num_domains=num_domains, critic_width=16, head_hidden=16, **kwargs)


def batch(n: int = 6, size: int = 16):
    torch.manual_seed(0)
    x = torch.randn(n, 3, size, size)
    y = torch.tensor([0, 1, 1, 0, 1, 0][:n])
    domain = torch.tensor([0, 1, 2, 0, 2, 0][:n])
    return x, y, domain


# --- model ------------------------------------------------------------------


def test_forward_returns_two_logits_and_exposes_the_deepfake_feature_map():
    model = tiny_did().eval()
    x, _, _ = batch()
    assert model(x).shape == (6, 2)
    features = model.forward_features(x)
    assert features.shape == (6, model.num_features, 4, 4)
    assert model.num_features == 16
    # Grad-CAM hooks this layer: its output must be exactly the map C reads.
    seen = {}
    model.get_submodule(model.gradcam_layer).register_forward_hook(lambda m, i, o: seen.setdefault("map", o))
    logits = model(x)
    torch.testing.assert_close(model.classifier(seen["map"]), logits)
    assert get_spec("did").gradcam_layer == model.gradcam_layer


def test_attention_map_lies_in_unit_interval_and_splits_features_exactly():
    model = tiny_did()
    x, _, _ = batch()
    features = model.backbone.forward_features(x)
    mask = model.deepfake_attention(features).detach()
    assert mask.shape == features.shape
    assert float(mask.std()) > 0  # it attends: not one weight for every position and channel
    deepfake_info, other_info = model.decompose(x)
    torch.testing.assert_close(other_info, (1.0 - mask) * features)
    torch.testing.assert_close(deepfake_info + other_info, features)


def test_training_losses_are_finite_and_reach_every_part():
    model = tiny_did()
    x, y, domain = batch()
    out = model.training_losses(x, y, domain, progress=0.5)
    for key in ("loss", "cls", "dom", "dec", "mi"):
        assert torch.isfinite(out[key]), key
    assert out["logits"].shape == (6, 2)
    assert out["beta"] == pytest.approx(grl_beta(0.5))
    expected = out["cls"] + out["dom"] + 0.01 * out["dec"]
    torch.testing.assert_close(out["loss"].detach(), expected)
    out["loss"].backward()
    for part in ("backbone", "deepfake_attention", "domain_attention", "critic", "classifier", "domain_classifier"):
        grads = [p.grad for p in getattr(model, part).parameters() if p.requires_grad]
        assert any(g is not None and float(g.abs().sum()) > 0 for g in grads), f"no gradient reached {part}"


def test_inference_never_runs_domain_branch_or_critic():
    model = tiny_did()
    called = []
    for part in ("domain_attention", "domain_classifier", "critic"):
        getattr(model, part).register_forward_hook(lambda m, i, o, part=part: called.append(part))
    x, _, _ = batch()
    model(x)[:, 1].sum().backward()
    assert called == []
    for part in ("domain_attention", "domain_classifier", "critic"):
        assert all(p.grad is None for p in getattr(model, part).parameters())
    assert all(p.grad is not None for p in model.deepfake_attention.parameters())


def test_critic_gradient_reaches_features_reversed_and_scaled_by_beta():
    model = tiny_did()
    torch.manual_seed(1)
    first = torch.randn(4, 16, 4, 4, requires_grad=True)
    second = torch.randn(4, 16, 4, 4)

    torch.manual_seed(2)
    (-model.mutual_information(first, second, beta=0.3)).backward()
    through_grl = first.grad.clone()
    first.grad = None

    torch.manual_seed(2)  # the same shuffled partner
    shuffled = second[cyclic_derangement(4)]
    (-js_mutual_information(model.critic(first, second), model.critic(first, shuffled))).backward()
    torch.testing.assert_close(through_grl, -0.3 * first.grad)


def test_decorrelating_with_domain_information_is_supported():
    model = tiny_did(decorrelate_with="dom")
    x, y, domain = batch()
    out = model.training_losses(x, y, domain, progress=1.0)
    out["loss"].backward()
    assert torch.isfinite(out["dec"])
    # With I_dom as partner the reversed critic gradient also reaches A_dom.
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.domain_attention.parameters())


def test_batch_of_one_trains_without_a_decorrelation_term():
    model = tiny_did()
    x, y, domain = batch()
    out = model.training_losses(x[:1], y[:1], domain[:1], progress=0.2)
    assert float(out["dec"]) == 0.0 and math.isnan(float(out["mi"]))
    out["loss"].backward()
    # T still takes part (zero gradient) so distributed training sees every parameter.
    assert all(p.grad is not None and float(p.grad.abs().sum()) == 0.0 for p in model.critic.parameters())


def test_backbone_classifier_is_frozen_because_did_never_uses_it():
    model = tiny_did()
    assert not any(p.requires_grad for p in model.backbone.fc.parameters())
    assert all(p.requires_grad for p in model.backbone.features.parameters())
    x, y, domain = batch()
    model.training_losses(x, y, domain, progress=0.3)["loss"].backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_parameter_groups_cover_every_parameter_once_with_tenfold_head_rate():
    model = tiny_did()
    groups = model.parameter_groups(1e-5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert groups[0]["lr"] == 1e-5 and groups[1]["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.backbone.parameters()}


def test_added_parameter_count_for_a_2048_channel_backbone():
    # Only num_features matters for what DID adds: 2048 is ResNet26/50's and SFIC-ResNet26's.
    backbone = TinyBackbone(channels=2048)
    model = DIDModel(backbone, num_domains=4)
    assert count_params(model) - count_params(backbone) == 5_781_314
    assert count_params(model.deepfake_attention) + count_params(model.classifier) == 1_775_263
    assert count_params(model.critic) == 2_229_249


# --- errors -----------------------------------------------------------------


def test_invalid_configuration_raises_config_errors():
    with pytest.raises(ConfigError, match="num_domains"):
        DIDModel(TinyBackbone(), num_domains=0)
    with pytest.raises(ConfigError, match="forward_features"):
        DIDModel(nn.Linear(3, 2), num_domains=2)
    with pytest.raises(ConfigError, match="decorrelate_with"):
        DIDModel(TinyBackbone(), num_domains=2, decorrelate_with="identity")
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("did", backbone="no_such_backbone")


def test_domain_label_outside_num_domains_is_a_config_error():
    model = tiny_did(num_domains=2)
    x, y, _ = batch()
    with pytest.raises(ConfigError, match="outside 0..2"):
        model.training_losses(x, y, torch.tensor([0, 1, 3, 0, 1, 0]), progress=0.0)


# --- losses -----------------------------------------------------------------


def test_gradient_reversal_is_identity_forward_and_negates_scaled_gradient():
    x = torch.randn(5, requires_grad=True)
    upstream = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0])
    y = grad_reverse(x, beta=0.7)
    torch.testing.assert_close(y, x)
    (y * upstream).sum().backward()
    torch.testing.assert_close(x.grad, -0.7 * upstream)

    layer = GradientReversal(beta=0.25)
    z = torch.randn(3, requires_grad=True)
    layer(z).sum().backward()
    torch.testing.assert_close(z.grad, torch.full((3,), -0.25))


def test_beta_schedule_values():
    assert grl_beta(0.0) == 0.0
    assert grl_beta(0.5) == pytest.approx(2 / (1 + math.exp(-2.5)) - 1)
    assert grl_beta(0.5) == pytest.approx(0.848284, abs=1e-6)
    assert grl_beta(1.0) == pytest.approx(0.986614, abs=1e-6)
    with pytest.raises(ValueError):
        grl_beta(1.5)


def test_auc_loss_matches_hand_computation():
    scores = torch.tensor([0.9, 0.2, 0.3, 0.4])
    labels = torch.tensor([1, 0, 1, 0])
    # pairs (fake - real): 0.7, 0.5 -> beyond the 0.15 margin; 0.1 -> 0.05^2; -0.1 -> 0.25^2
    expected = (0.05**2 + 0.25**2) / 4
    assert float(auc_loss(scores, labels, gamma=0.15, p=2)) == pytest.approx(expected)


def test_auc_loss_is_zero_when_fakes_rank_far_above_reals_and_without_pairs():
    assert float(auc_loss(torch.tensor([0.99, 0.01, 0.95, 0.05]), torch.tensor([1, 0, 1, 0]))) == 0.0
    one_class = torch.tensor([0.3, 0.7], requires_grad=True)
    loss = auc_loss(one_class, torch.tensor([1, 1]))
    assert float(loss.detach()) == 0.0
    loss.backward()  # still part of the graph
    # reversed ranking costs more than a correct one
    assert float(auc_loss(torch.tensor([0.1, 0.9]), torch.tensor([1, 0]))) > 0.5


def test_bce_auc_loss_combines_cross_entropy_and_auc_on_fake_probability():
    logits = torch.tensor([[0.2, 1.0], [1.5, -0.5], [0.0, 0.1], [0.3, 0.2]])
    labels = torch.tensor([1, 0, 1, 0])
    fake_probability = torch.softmax(logits, 1)[:, 1]
    expected = 0.5 * F.cross_entropy(logits, labels) + 0.5 * auc_loss(fake_probability, labels)
    torch.testing.assert_close(bce_auc_loss(logits, labels, alpha=0.5), expected)
    # two logits: cross-entropy is the paper's BCE on sigmoid(l1 - l0)
    bce = F.binary_cross_entropy_with_logits(logits[:, 1] - logits[:, 0], labels.float())
    torch.testing.assert_close(bce_auc_loss(logits, labels, alpha=1.0), bce)


def test_js_mutual_information_formula():
    # A critic that cannot tell joint from shuffled pairs: -2 log 2.
    assert float(js_mutual_information(torch.zeros(3), torch.zeros(3))) == pytest.approx(-2 * math.log(2))
    value = js_mutual_information(torch.tensor([3.0, 1.0]), torch.tensor([-2.0]))
    expected = 0.5 * (math.log(1 / (1 + math.exp(-3))) + math.log(1 / (1 + math.exp(-1)))) + math.log(1 - 1 / (1 + math.exp(2)))
    assert float(value) == pytest.approx(expected)


def test_trained_critic_finds_more_information_in_dependent_pairs():
    def estimate_after_training(dependent: bool) -> float:
        torch.manual_seed(3)
        critic = MutualInformationCritic(channels=4, width=16)
        optimizer = torch.optim.Adam(critic.parameters(), lr=1e-2)
        for _ in range(40):
            first = torch.randn(16, 4, 3, 3)
            second = first + 0.1 * torch.randn_like(first) if dependent else torch.randn(16, 4, 3, 3)
            shuffled = second[cyclic_derangement(16)]
            mi = js_mutual_information(critic(first, second), critic(first, shuffled))
            optimizer.zero_grad()
            (-mi).backward()
            optimizer.step()
        with torch.no_grad():
            first = torch.randn(64, 4, 3, 3)
            second = first + 0.1 * torch.randn_like(first) if dependent else torch.randn(64, 4, 3, 3)
            return float(js_mutual_information(critic(first, second), critic(first, second[cyclic_derangement(64)])))

    dependent, independent = estimate_after_training(True), estimate_after_training(False)
    assert dependent > independent + 0.3
    assert independent < -2 * math.log(2) + 0.2  # near the "no information" floor


def test_cyclic_derangement_has_no_fixed_point():
    for n in (2, 3, 7):
        for _ in range(5):
            perm = cyclic_derangement(n)
            assert sorted(perm.tolist()) == list(range(n))
            assert not bool((perm == torch.arange(n)).any())


# --- training ---------------------------------------------------------------


def synthetic_domains(n_per_class: int = 12, size: int = 16):
    """Real: noise. Fake method 1: bright top half. Fake method 2: bright left half."""
    generator = torch.Generator().manual_seed(5)
    real = torch.randn(n_per_class, 3, size, size, generator=generator)
    fake_top = torch.randn(n_per_class, 3, size, size, generator=generator)
    fake_top[:, :, : size // 2] += 1.5
    fake_left = torch.randn(n_per_class, 3, size, size, generator=generator)
    fake_left[:, :, :, : size // 2] += 1.5
    x = torch.cat([real, fake_top, fake_left])
    y = torch.tensor([0] * n_per_class + [1] * (2 * n_per_class))
    domain = torch.tensor([0] * n_per_class + [1] * n_per_class + [2] * n_per_class)
    return x, y, domain


def test_short_training_run_lowers_the_loss_and_separates_real_from_fake():
    torch.manual_seed(0)
    model = tiny_did(num_domains=2)
    x, y, domain = synthetic_domains()
    optimizer = torch.optim.Adam(model.parameter_groups(1e-3))
    steps = 60
    losses = []
    for step in range(steps):
        out = model.training_losses(x, y, domain, progress=step / steps)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    assert accuracy >= 0.9


# --- registered backbones ---------------------------------------------------


@pytest.mark.parametrize("backbone", ["resnet26", "sfic_resnet26"])
def test_registered_did_on_a_real_backbone(backbone):
    torch.manual_seed(0)
    model = create_model("did", backbone=backbone, num_domains=4)
    assert model.backbone_name == backbone
    assert model.input_size == get_spec(backbone).input_size
    assert count_params(model) - count_params(model.backbone) == 5_781_314
    x = torch.randn(2, 3, 64, 64)
    out = model.training_losses(x, torch.tensor([0, 1]), torch.tensor([0, 3]), progress=0.1)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert any(p.grad is not None for p in model.backbone.parameters())
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 2)


def test_pretrained_backbone_initialises_g_and_did_checkpoints_round_trip(tmp_path):
    from ddtool.errors import CheckpointError
    from ddtool.models.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    backbone = create_model("mobilenet")
    save_checkpoint(backbone, tmp_path / "mobilenet", "mobilenet", {})
    weights = str(tmp_path / "mobilenet.safetensors")
    model = create_model("did", backbone="mobilenet", num_domains=2, pretrained_backbone=weights)
    for name, tensor in backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[name], tensor), name

    kwargs = {"backbone": "mobilenet", "num_domains": 2}
    save_checkpoint(model, tmp_path / "did", "did", kwargs)
    restored, card = load_checkpoint(tmp_path / "did.safetensors")
    assert card["model"] == "did"
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x))

    with pytest.raises(CheckpointError, match="holds a 'mobilenet' model"):
        create_model("did", backbone="sfic_mobilenet", num_domains=2, pretrained_backbone=weights)


def test_gradcam_explains_the_deepfake_feature_map():
    from ddtool.explain import gradcam as gradcam_module

    model = tiny_did()
    layer = gradcam_module.resolve_layer(model, get_spec("did").gradcam_layer)
    assert layer is model.df_features
    maps = gradcam_module.gradcam(model, torch.randn(2, 3, 16, 16), layer)
    assert maps.shape == (2, 16, 16)
    # per-image min-max: each map spans [0, 1] (an all-zero map would mean the layer got no gradient)
    np.testing.assert_allclose(maps.reshape(2, -1).min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(maps.reshape(2, -1).max(axis=1), 1.0, atol=1e-6)
