"""LDFnet (Lightweight Dynamic Fusion network, IEEE TCSVT 2023), rebuilt from the paper.

No public code exists; every number the paper leaves open is a choice made
here and recorded in docs/models-ldfnet.md. The shape of the network:

    image -> BaseNet: 5 x (depthwise-separable conv + SGE)          -> F_L  (local artifacts)
          -> GTR net: constrained conv + 5 x TraceBlock             -> F_G  (global texture)
    DFM:  pre-fusion  M_D   = DWSepConv(concat(F_L, F_G))
          post-fusion M_Att = softmax over positions of conv1x1(F_G)
          F_D = ReLU(LN(attention-weighted pooling of M_D))         -> linear head, 2 logits

Switches reproduce the paper's ablations (Table III) and DFM variants A-D
(Fig. 7, Table IV).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models.layers.constrained import ConstrainedConv2d
from ddtool.models.layers.init import init_conv_weights
from ddtool.models.layers.sge import SpatialGroupEnhance
from ddtool.models.registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, TrainDefaults, register_model

# Widths and strides of the five stages of both branches (equal, because DFM
# concatenates F_L and F_G position by position). Chosen to meet the paper's
# 963K parameters / 801M MACs at 256x256; see docs/models-ldfnet.md.
DEFAULT_WIDTHS = (32, 72, 128, 256, 400)
DEFAULT_STRIDES = (1, 2, 2, 2, 2)
DFM_VARIANTS = ("full", "A", "B", "C", "D")


class DepthwiseSeparableConv(nn.Sequential):
    """3x3 depthwise conv + BN + ReLU, then 1x1 pointwise conv + BN + ReLU (MobileNet style)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class BaseNetStage(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, stride: int, sge_groups: int | None):
        layers: list[nn.Module] = [DepthwiseSeparableConv(in_channels, out_channels, stride)]
        if sge_groups:
            layers.append(SpatialGroupEnhance(out_channels, sge_groups))
        super().__init__(*layers)


class GlobalMixer(nn.Module):
    """The TraceBlock's global branch: every output position sees every input position.

    Eq. (5) sums F_max(x_j) * u_ij over all positions j. A dense u_ij at the
    full resolution would cost (HW)^2 weights (268M at 128x128), so the
    max-pooled map is reduced to a fixed `grid` x `grid` token grid, mixed
    across all tokens (u_ij) and across channels, and resized back to the
    local branch's output size. The fixed grid keeps the block independent of
    the input resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, grid: int = 8):
        super().__init__()
        self.grid = grid
        self.token_mix = nn.Linear(grid * grid, grid * grid)
        self.channel_mix = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, out_size: tuple[int, int]) -> torch.Tensor:
        # Max pooling keeps the strongest grey-level changes, which is where
        # manipulation traces live (paper, Sec. III-B).
        tokens = _adaptive_max_pool_by_bins(x, self.grid) if torch.onnx.is_in_onnx_export() else F.adaptive_max_pool2d(x, self.grid)
        n, c = tokens.shape[:2]
        mixed = self.token_mix(tokens.reshape(n, c, -1)).reshape(n, c, self.grid, self.grid)
        mixed = F.relu(self.norm(self.channel_mix(mixed)))
        # Plain ints: when traced (ONNX export) the map keeps a known size, which the next block's adaptive pooling needs.
        return F.interpolate(mixed, size=tuple(int(s) for s in out_size), mode="bilinear", align_corners=False)


def _adaptive_max_pool_by_bins(x: torch.Tensor, grid: int) -> torch.Tensor:
    """F.adaptive_max_pool2d(x, grid) (the same bins, the same maxima: max is separable) from slices ONNX can express:
    ONNX has no adaptive pooling, and the TorchScript exporter turns it into MaxPool only when the size divides evenly."""
    height, width = int(x.shape[-2]), int(x.shape[-1])
    rows = torch.cat([x[:, :, (i * height) // grid : -((-(i + 1) * height) // grid)].amax(dim=2, keepdim=True) for i in range(grid)], dim=2)
    return torch.cat([rows[:, :, :, (j * width) // grid : -((-(j + 1) * width) // grid)].amax(dim=3, keepdim=True) for j in range(grid)], dim=3)


class TraceBlock(nn.Module):
    """y = W1 * local(x) + W2 * global(x), with W1, W2 in [0, 1] learnt (eq. 5)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, grid: int = 8):
        super().__init__()
        self.local = DepthwiseSeparableConv(in_channels, out_channels, stride)
        self.global_mix = GlobalMixer(in_channels, out_channels, grid)
        # sigmoid keeps both weights inside [0, 1]; 0 -> both start at 0.5.
        self.mix_logits = nn.Parameter(torch.zeros(2))

    @property
    def branch_weights(self) -> torch.Tensor:
        return torch.sigmoid(self.mix_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.local(x)
        w_local, w_global = self.branch_weights
        return w_local * local + w_global * self.global_mix(x, local.shape[-2:])


class GTRNet(nn.Module):
    """Constrained conv (low-level traces) followed by five TraceBlocks."""

    def __init__(self, widths, strides, trace_channels: int, grid: int):
        super().__init__()
        self.constrained = ConstrainedConv2d(3, trace_channels, 5, padding=2)
        blocks, in_channels = [], trace_channels
        for width, stride in zip(widths, strides):
            blocks.append(TraceBlock(in_channels, width, stride, grid))
            in_channels = width
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.constrained(x))


class DynamicFusion(nn.Module):
    """DFM (Fig. 6) and its ablation variants (Fig. 7).

    full: concat(F_L, F_G) -> 3x3 DW-sep conv -> M_D; M_Att = softmax(conv1x1(F_G)) over positions
    A:    no concat: F_L + F_G -> 3x3 DW-sep conv
    B:    no attention: plain average pooling of M_D
    C:    1x1 conv instead of the DW-sep conv in pre-fusion
    D:    max pooling instead of the (attention-weighted) average pooling
    """

    def __init__(self, channels: int, variant: str = "full"):
        super().__init__()
        if variant not in DFM_VARIANTS:
            raise ConfigError(f"unknown DFM variant {variant!r}; choose one of {', '.join(DFM_VARIANTS)}")
        self.variant = variant
        mixed = channels if variant == "A" else 2 * channels
        if variant == "C":
            self.pre = nn.Sequential(nn.Conv2d(mixed, channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        else:
            self.pre = DepthwiseSeparableConv(mixed, channels)
        self.attention = None if variant == "B" else nn.Conv2d(channels, channels, 1)

    def refined(self, local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
        """M_D refined by the attention, scaled so that its spatial mean is the pooled feature."""
        fused = local + global_ if self.variant == "A" else torch.cat([local, global_], dim=1)
        m_d = self.pre(fused)
        if self.attention is None:
            return m_d
        n, c, h, w = m_d.shape
        m_att = torch.softmax(self.attention(global_).reshape(n, c, h * w), dim=2).reshape(n, c, h, w)
        # The softmax weights sum to 1 over positions, so their weighted sum is
        # already an average; the plain mean of M_D * M_Att would shrink it by
        # H*W and let LayerNorm's eps swamp the signal. Scaling by H*W makes
        # the later spatial mean equal that weighted average.
        return m_d * m_att * (h * w)

    def pool(self, refined: torch.Tensor) -> torch.Tensor:
        if self.variant == "D":
            return refined.amax(dim=(2, 3))
        return refined.mean(dim=(2, 3))


class LDFNet(nn.Module):
    """LDFnet detector: (N, 3, H, W) normalised images -> (N, 2) logits (index 1 = fake).

    sge / gtr / dfm switch the paper's components for the Table III ablation:
    without the GTR branch only BaseNet runs; with GTR but without DFM the two
    branches are joined by element-wise sum (the paper's "joint prediction").
    """

    def __init__(
        self,
        num_classes: int = 2,
        sge: bool = True,
        gtr: bool = True,
        dfm: bool = True,
        dfm_variant: str = "full",
        widths: tuple[int, ...] = DEFAULT_WIDTHS,
        strides: tuple[int, ...] = DEFAULT_STRIDES,
        sge_groups: int = 8,
        trace_channels: int = 48,
        global_grid: int = 8,
    ):
        super().__init__()
        widths, strides = tuple(widths), tuple(strides)
        if len(widths) != 5 or len(strides) != 5:
            raise ConfigError("LDFnet has five stages per branch: give five widths and five strides")
        if dfm and not gtr:
            raise ConfigError("DFM fuses the BaseNet and GTR branches; with gtr=False also pass dfm=False")
        self.use_dfm = dfm
        stages, in_channels = [], 3
        for width, stride in zip(widths, strides):
            stages.append(BaseNetStage(in_channels, width, stride, sge_groups if sge else None))
            in_channels = width
        self.basenet = nn.Sequential(*stages)
        self.gtr = GTRNet(widths, strides, trace_channels, global_grid) if gtr else None
        self.dfm = DynamicFusion(widths[-1], dfm_variant) if dfm else None
        self.num_features = widths[-1]
        self.norm = nn.LayerNorm(self.num_features) if dfm else nn.Identity()
        self.head = nn.Linear(self.num_features, num_classes)
        init_conv_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last map before pooling: (N, C, h, w), C = num_features."""
        local = self.basenet(x)
        if self.gtr is None:
            return local
        global_ = self.gtr(x)
        if self.dfm is None:
            return local + global_
        return self.dfm.refined(local, global_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(x)
        pooled = self.dfm.pool(features) if self.dfm is not None else features.mean(dim=(2, 3))
        if self.dfm is not None:
            pooled = F.relu(self.norm(pooled))
        return self.head(pooled)


def build_ldfnet(**kwargs) -> LDFNet:
    return LDFNet(**kwargs)


register_model(
    ModelSpec(
        name="ldfnet",
        builder=build_ldfnet,
        description="LDFnet: lightweight dual-branch detector (BaseNet+SGE, GTR TraceBlocks, dynamic fusion)",
        family="ldfnet",
        input_size=256,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        train=TrainDefaults(optimizer="adam", lr=1e-3, lr_decay=0.5, epochs=20, batch_size=64, seed=7, augment=()),
        gradcam_layer="dfm.pre",
        paper="Lightweight dynamic fusion network for face forgery detection, IEEE TCSVT 2023",
        paper_params=963_000,
        paper_macs=801_000_000,
    )
)
