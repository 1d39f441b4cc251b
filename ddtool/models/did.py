"""DID: Deep Information Decomposition (CrossDF, Yang et al.) around any image backbone.

Training: backbone G gives the feature map I_X; the deepfake attention network
A_df gives M_df in [0, 1]^(C, h, w); I_df = M_df * I_X feeds the real/fake
classifier C and I_os = (1 - M_df) * I_X the domain attention network A_dom,
whose I_dom = M_dom * I_os feeds the (k + 1)-way domain classifier. A critic T
behind a gradient reversal layer estimates the Jensen-Shannon mutual
information between I_df and I_os; T maximises it, G and A_df minimise it.
Inference: only G, A_df and C run (`forward`).

Choices the paper leaves open are listed, with reasons, in docs/models-did.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import CheckpointError, ConfigError
from ddtool.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, TrainDefaults, create_model, get_spec, register_model
from ddtool.models.checkpoint import load_checkpoint
from ddtool.models.layers.gradient_reversal import grad_reverse, grl_beta
from ddtool.models.layers.mutual_information import js_mutual_information
from ddtool.models.losses import bce_auc_loss

# The paper trains the attention networks, T and both heads 10x faster than G.
HEAD_LR_MULTIPLIER = 10.0
DECORRELATION_PARTNERS = ("os", "dom")


class DecompositionAttention(nn.Module):
    """Fig. 3: a feature map (N, C, h, w) -> attention map in [0, 1] of the same shape.

    A 1x1 then 3x3 conv (each with PReLU) embed the input into `width` channels.
    Two paths then pool the embedding:
    - cross-channel ("c-") pooling: mean, max and a learnt 1x1 conv (C-ADP)
      over channels give three (h, w) maps -> conv -> sigmoid: *where* to look;
    - cross-spatial ("s-") pooling: mean, max and a learnt channel-wise
      (depthwise) spatial conv followed by sum pooling (S-ADP) over positions
      give three (width,) vectors -> 1x1 conv + PReLU -> 1x1 conv to C ->
      sigmoid: *which* channels matter.
    The map is their Hadamard product, broadcast to (C, h, w).
    """

    def __init__(self, channels: int, reduction: int = 16, min_width: int = 8):
        super().__init__()
        width = max(min_width, channels // reduction)
        self.width = width
        self.embed = nn.Sequential(
            nn.Conv2d(channels, width, 1),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1),
            nn.PReLU(width),
        )
        self.channel_adaptive_pool = nn.Conv2d(width, 1, 1)
        self.spatial_gate = nn.Conv2d(3, 1, 3, padding=1)
        self.spatial_adaptive_pool = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.channel_gate = nn.Sequential(
            nn.Conv2d(3 * width, width, 1),
            nn.PReLU(width),
            nn.Conv2d(width, channels, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        embedded = self.embed(features)
        pooled_over_channels = torch.cat(
            [
                embedded.mean(dim=1, keepdim=True),
                embedded.amax(dim=1, keepdim=True),
                self.channel_adaptive_pool(embedded),
            ],
            dim=1,
        )
        pooled_over_space = torch.cat(
            [
                embedded.mean(dim=(2, 3), keepdim=True),
                embedded.amax(dim=(2, 3), keepdim=True),
                self.spatial_adaptive_pool(embedded).sum(dim=(2, 3), keepdim=True),
            ],
            dim=1,
        )
        where = torch.sigmoid(self.spatial_gate(pooled_over_channels))  # (N, 1, h, w)
        which = torch.sigmoid(self.channel_gate(pooled_over_space))  # (N, C, 1, 1)
        return where * which


class PooledMLP(nn.Module):
    """Global average pool, then an MLP (one hidden ReLU layer, or linear if hidden=0)."""

    def __init__(self, channels: int, outputs: int, hidden: int = 512):
        super().__init__()
        if hidden > 0:
            self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, outputs))
        else:
            self.mlp = nn.Linear(channels, outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features.mean(dim=(2, 3)))


class MutualInformationCritic(nn.Module):
    """T: scores a pair of feature maps; high for pairs from the same sample.

    Three convs with ReLU on the channel-concatenated pair (1x1 to `width`,
    then two 3x3), global average pool, one FC to a scalar.
    """

    def __init__(self, channels: int, width: int = 256):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(2 * channels, width, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Linear(width, 1)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        hidden = self.convs(torch.cat([first, second], dim=1))
        return self.fc(hidden.mean(dim=(2, 3))).squeeze(1)


def cyclic_derangement(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A permutation of range(n) with no fixed point (a random non-zero cyclic shift).

    Shuffled pairs must never pair a sample with itself, or some "independent"
    pairs would be joint ones.
    """
    if n < 2:
        raise ValueError("a derangement needs at least 2 items")
    shift = int(torch.randint(1, n, (1,)).item())
    return torch.roll(torch.arange(n, device=device), shifts=shift)


class DIDModel(nn.Module):
    """Deep Information Decomposition around an image backbone.

    `backbone` is a registered model name (built with `create_model`, extra
    arguments in `backbone_kwargs`) or any module with `forward_features(x) ->
    (N, C, h, w)` and `num_features`. `num_domains` is k, the number of forgery
    methods in the training data; domain labels are 0 (real) .. k.
    `pretrained_backbone` is a ddtool checkpoint of the same backbone whose
    weights initialise G.
    """

    def __init__(
        self,
        backbone: str | nn.Module = "sfic_resnet26",
        num_domains: int = 4,
        *,
        backbone_kwargs: dict[str, Any] | None = None,
        pretrained_backbone: str | None = None,
        attention_reduction: int = 16,
        critic_width: int = 256,
        head_hidden: int = 512,
        alpha: float = 0.5,
        auc_gamma: float = 0.15,
        auc_p: float = 2.0,
        cls_weight: float = 1.0,
        dom_weight: float = 1.0,
        dec_weight: float = 0.01,
        decorrelate_with: str = "os",
    ):
        super().__init__()
        if isinstance(num_domains, bool) or not isinstance(num_domains, int) or num_domains < 1:
            raise ConfigError(
                f"num_domains must be the number of forgery methods in the training data (>= 1), got {num_domains!r}"
            )
        if decorrelate_with not in DECORRELATION_PARTNERS:
            raise ConfigError(f"decorrelate_with must be one of {DECORRELATION_PARTNERS}, got {decorrelate_with!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha (BCE share of the classification loss) must be in [0, 1], got {alpha}")

        self.backbone_name, self.backbone = _build_backbone(backbone, backbone_kwargs or {}, pretrained_backbone)
        channels = int(self.backbone.num_features)
        self.num_features = channels
        self.num_domains = num_domains
        self.input_size, self.mean, self.std = _input_convention(self.backbone_name)
        if backbone_kwargs and "input_size" in backbone_kwargs:
            self.input_size = backbone_kwargs["input_size"]
        freeze_parameters_outside_features(self.backbone, self.input_size)

        self.deepfake_attention = DecompositionAttention(channels, reduction=attention_reduction)
        # An identity whose output is I_df, so Grad-CAM can hook the map the classifier sees.
        self.df_features = nn.Identity()
        self.classifier = PooledMLP(channels, 2, hidden=head_hidden)

        self.domain_attention = DecompositionAttention(channels, reduction=attention_reduction)
        self.domain_classifier = PooledMLP(channels, num_domains + 1, hidden=head_hidden)
        self.critic = MutualInformationCritic(channels, width=critic_width)

        self.alpha = alpha
        self.auc_gamma = auc_gamma
        self.auc_p = auc_p
        self.cls_weight = cls_weight
        self.dom_weight = dom_weight
        self.dec_weight = dec_weight
        self.decorrelate_with = decorrelate_with

    gradcam_layer = "df_features"

    def decompose(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(I_df, I_os) for normalised images (N, 3, H, W)."""
        features = self.backbone.forward_features(image)
        deepfake_mask = self.deepfake_attention(features)
        return self.df_features(deepfake_mask * features), (1.0 - deepfake_mask) * features

    def forward_features(self, image: torch.Tensor) -> torch.Tensor:
        """I_df, the deepfake-relevant feature map (N, C, h, w) the classifier reads."""
        features = self.backbone.forward_features(image)
        return self.df_features(self.deepfake_attention(features) * features)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Real/fake logits (N, 2), index 1 = fake; runs only G, A_df and C."""
        return self.classifier(self.forward_features(image))

    def training_losses(
        self,
        image: torch.Tensor,
        label: torch.Tensor,
        domain: torch.Tensor,
        progress: float,
    ) -> dict[str, Any]:
        """The CrossDF objective: cls_weight*L_cls + dom_weight*L_dom + dec_weight*L_dec.

        `progress` = epoch / max_epochs in [0, 1] sets the reversal strength
        beta. Returns `loss` (to backpropagate), the detached terms `cls`,
        `dom`, `dec` (critic loss = -MI estimate) and `mi`, detached `logits`
        (N, 2) and `beta`.
        """
        label = label.reshape(-1).long()
        domain = domain.reshape(-1).long()
        self._check_domains(domain)
        beta = grl_beta(progress)

        deepfake_info, other_info = self.decompose(image)
        domain_info = self.domain_attention(other_info) * other_info
        logits = self.classifier(deepfake_info)
        domain_logits = self.domain_classifier(domain_info)

        cls = bce_auc_loss(logits, label, alpha=self.alpha, gamma=self.auc_gamma, p=self.auc_p)
        dom = F.cross_entropy(domain_logits, domain)
        partner = other_info if self.decorrelate_with == "os" else domain_info
        dec, mi = self.decorrelation_loss(deepfake_info, partner, beta)
        loss = self.cls_weight * cls + self.dom_weight * dom + self.dec_weight * dec
        return {
            "loss": loss,
            "cls": cls.detach(),
            "dom": dom.detach(),
            "dec": dec.detach(),
            "mi": mi.detach(),
            "logits": logits.detach(),
            "beta": beta,
        }

    def decorrelation_loss(self, first: torch.Tensor, second: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_dec, MI estimate): L_dec = -MI is the critic's loss; the features see it reversed.

        A batch of one has no shuffled pair to contrast with: L_dec is then 0
        and the estimate NaN, but T still runs (at zero weight) so every
        trainable parameter takes part in the step, as
        DistributedDataParallel requires.
        """
        if first.shape[0] < 2:
            return self.critic(first, second).sum() * 0.0, torch.full((), float("nan"), device=first.device)
        mi = self.mutual_information(first, second, beta)
        return -mi, mi

    def mutual_information(self, first: torch.Tensor, second: torch.Tensor, beta: float) -> torch.Tensor:
        """Jensen-Shannon MI estimate between two feature maps (N >= 2), through the reversal layer.

        Gradients reach the critic unchanged (it learns to maximise the
        estimate when the loss holds -MI) and reach the features times -beta
        (they learn to minimise it).
        """
        first = grad_reverse(first, beta)
        second = grad_reverse(second, beta)
        shuffled = second[cyclic_derangement(second.shape[0], device=second.device)]
        return js_mutual_information(self.critic(first, second), self.critic(first, shuffled))

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimizer groups: the backbone at `lr`, everything DID adds at 10 x `lr` (as in the paper)."""
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        added = [p for p in self.parameters() if id(p) not in backbone_ids]
        return [
            {"params": list(self.backbone.parameters()), "lr": lr},
            {"params": added, "lr": lr * HEAD_LR_MULTIPLIER},
        ]

    def _check_domains(self, domain: torch.Tensor) -> None:
        outside = domain[(domain < 0) | (domain > self.num_domains)]
        if outside.numel():
            raise ConfigError(
                f"domain label {int(outside[0])} is outside 0..{self.num_domains} (0 = real, 1..k = forgery methods); "
                f"build DID with num_domains = the number of forgery methods in the training data"
            )


def freeze_parameters_outside_features(backbone: nn.Module, input_size: Any) -> list[str]:
    """Stop training backbone parameters that `forward_features` never uses; return their names.

    DID reads G through `forward_features`, so the backbone's own classifier
    gets no gradient. Left trainable it would only break
    DistributedDataParallel (which expects a gradient for every trainable
    parameter); frozen, it still loads and saves with the weights. Found with
    one eval-mode probe pass (no BatchNorm statistics change).
    """
    height, width = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)[-2:]
    parameter = next(backbone.parameters(), None)
    if parameter is None:
        return []
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.enable_grad():
            probe = torch.zeros(1, 3, height, width, device=parameter.device, dtype=parameter.dtype)
            outputs = backbone.forward_features(probe)
            trainable = [p for p in backbone.parameters() if p.requires_grad]
            grads = torch.autograd.grad(outputs.sum(), trainable, allow_unused=True)
    finally:
        backbone.train(was_training)
    used = {id(p) for p, g in zip(trainable, grads) if g is not None}
    frozen = []
    for name, p in backbone.named_parameters():
        if p.requires_grad and id(p) not in used:
            p.requires_grad_(False)
            frozen.append(name)
    return frozen


def _build_backbone(
    backbone: str | nn.Module, backbone_kwargs: dict[str, Any], pretrained_backbone: str | None
) -> tuple[str | None, nn.Module]:
    if isinstance(backbone, nn.Module):
        name, module = None, backbone
    elif isinstance(backbone, str):
        if backbone == "did":
            raise ConfigError("DID cannot wrap itself; pick an image backbone such as sfic_resnet26")
        if get_spec(backbone).input_kind != "image":
            raise ConfigError(f"DID needs an image backbone; {backbone!r} takes {get_spec(backbone).input_kind} input")
        name, module = backbone, create_model(backbone, **backbone_kwargs)
    else:
        raise ConfigError(f"backbone must be a model name or an nn.Module, got {type(backbone).__name__}")
    if not callable(getattr(module, "forward_features", None)) or not isinstance(getattr(module, "num_features", None), int):
        raise ConfigError(
            f"backbone {name or type(module).__name__} lacks forward_features()/num_features; "
            "DID needs an image backbone that exposes its last feature map"
        )
    if pretrained_backbone is not None:
        _load_backbone_weights(module, name, pretrained_backbone)
    return name, module


def _load_backbone_weights(module: nn.Module, name: str | None, path: str) -> None:
    trained, card = load_checkpoint(path)
    if name is not None and card["model"] != name:
        raise CheckpointError(
            f"pretrained_backbone {path} holds a {card['model']!r} model, but the DID backbone is {name!r}; "
            "pass a checkpoint of the same backbone"
        )
    try:
        module.load_state_dict(trained.state_dict(), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"pretrained_backbone {path} does not fit the backbone: {first}") from None


def _input_convention(backbone_name: str | None) -> tuple[Any, tuple[float, ...], tuple[float, ...]]:
    """Input size and normalisation of the backbone's spec (ImageNet at 256 for a bare module)."""
    if backbone_name is None:
        return 256, IMAGENET_MEAN, IMAGENET_STD
    spec = get_spec(backbone_name)
    return spec.input_size, spec.mean, spec.std


def _build_did(
    backbone: str = "sfic_resnet26",
    num_domains: int = 4,
    pretrained_backbone: str | None = None,
    input_size: int | None = None,
    backbone_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DIDModel:
    backbone_kwargs = dict(backbone_kwargs or {})
    if input_size is not None:
        # Only backbones that bake the size into their layers take it; the
        # others raise TypeError naming input_size, which callers can catch.
        backbone_kwargs["input_size"] = input_size
    return DIDModel(
        backbone,
        num_domains=num_domains,
        pretrained_backbone=pretrained_backbone,
        backbone_kwargs=backbone_kwargs,
        **kwargs,
    )


register_model(
    ModelSpec(
        name="did",
        builder=_build_did,
        description="CrossDF deep information decomposition (attention split + MI de-correlation + AUC loss) around an image backbone",
        family="did",
        input_kind="image",
        # The default backbone's convention; an instance carries its own
        # backbone's input_size/mean/std as attributes.
        input_size=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        train=TrainDefaults(
            optimizer="adam",
            lr=1e-5,
            lr_decay=1.0,
            epochs=20,
            batch_size=15,
            seed=7,
            weight_decay=5e-4,
        ),
        gradcam_layer="df_features",
        paper="CrossDF: Improving Cross-Domain Deepfake Detection with Deep Information Decomposition (Yang et al.)",
    )
)
