"""SFIConv: space-frequency interactive convolution (Guo et al., IEEE TIFS 2023).

A drop-in replacement for a vanilla convolution that carries two feature
groups through a network: a spatial branch and a high-frequency branch whose
features come from MCSConv (multichannel constrained separable convolution,
paper eq. 1). Three stages (paper Sec. III-C, Fig. 4):

- Stage 1 "split": one input -> (spatial, frequency). The spatial part is a
  vanilla conv, the frequency part MCSConv.
- Stage 2 "dual": four convs f_S->S, f_S->F, f_F->F, f_F->S; each branch's
  output is the sum of its update and the other branch's interaction (eq. 2-5).
- Stage 3 "merge": f'_S->S(T_spa) + f'_F->S(T_fre) -> one output (eq. 6-7).

alpha sets the channel split: the frequency branch has int(alpha * C)
channels, the spatial branch the rest. beta (flexible form, eq. 8) keeps the
frequency branch at beta x the spatial resolution: a conv runs at its input's
resolution and its result is nearest-neighbour resized to the resolution of
the branch it feeds. A stride > 1 is done by AvgPool2d before the convs, as
the official code does, so both branches shrink alike.

Depthwise convs (MobileNet) cannot mix channels, so there a stage splits the
channels between the branches and has no cross-branch convs: the interaction
happens in the pointwise convs around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.models.layers.constrained import ConstrainedConv2d
from ddtool.models.layers.conv_factory import PerBranch, VanillaConvFactory
from ddtool.models.registry import ModelSpec, register_model

MCS_KERNEL = 5
SFICONV_PAPER = "Guo et al., SFIConv, IEEE TIFS 2023, Table III"
SFIC_DEFAULTS = {"alpha": 0.5, "beta": 1.0, "mcs_fixed": False}


def check_alpha_beta(alpha: float, beta: float) -> None:
    """alpha: share of channels in the frequency branch; beta: its resolution relative to the spatial one."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta}")


class MCSConv(nn.Module):
    """Depthwise 5x5 constrained conv (one kernel per input channel), then a vanilla conv f().

    f() has the kernel size of the convolution SFIConv replaces, so the cost
    over a vanilla conv is only the depthwise trace maps. With
    `learnable=True` the constrained kernels train and the constraint is
    re-applied every forward pass (the paper's reading); with False they stay
    at their constrained random init (the official code).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1, learnable: bool = True):
        super().__init__()
        self.trace = ConstrainedConv2d(
            in_channels, in_channels, MCS_KERNEL, padding=MCS_KERNEL // 2, groups=in_channels, learnable=learnable
        )
        self.aggregate = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.trace(x))


def _conv(in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> nn.Conv2d | None:
    if in_channels == 0 or out_channels == 0:
        return None
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, groups=groups, bias=False)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    if t.shape[1] == 0:
        return t.new_zeros(t.shape[0], 0, *size)
    return F.interpolate(t, size=size, mode="nearest")


def _sum_terms(terms: list[torch.Tensor | None], like: torch.Tensor, channels: int, size) -> torch.Tensor:
    present = [t for t in terms if t is not None]
    if not present:
        # Only reached when this branch has no channels (alpha = 0 or 1).
        return like.new_zeros(like.shape[0], channels, *size)
    out = present[0]
    for t in present[1:]:
        out = out + t
    return out


class SFIConv(nn.Module):
    """One SFIConv stage replacing a k x k conv with `in_channels` -> `out_channels`.

    Input: a tensor for stage "split", a (spatial, frequency) pair otherwise.
    Output: a pair for "split" and "dual", a tensor for "merge".
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        stage: str = "dual",
        alpha: float = 0.5,
        beta: float = 1.0,
        mcs_fixed: bool = False,
    ):
        super().__init__()
        if stage not in ("split", "dual", "merge"):
            raise ValueError(f"SFIConv stage must be split, dual or merge, got {stage!r}")
        check_alpha_beta(alpha, beta)
        if kernel_size % 2 == 0:
            raise ValueError("SFIConv needs an odd kernel size to keep both branches aligned")
        self.depthwise = groups > 1 and groups == in_channels
        if groups != 1 and not self.depthwise:
            raise ValueError("SFIConv supports dense (groups=1) and depthwise convs only")
        if self.depthwise and (in_channels != out_channels or stage == "merge"):
            raise ValueError("a depthwise SFIConv must keep its channel count and cannot be the merge stage")
        self.stage = stage
        self.alpha = alpha
        self.beta = beta
        self.pool = PerBranch(nn.AvgPool2d(stride)) if stride > 1 else None

        in_f = int(alpha * in_channels)
        in_s = in_channels - in_f
        self.in_channels_spatial, self.in_channels_freq = in_s, in_f
        if stage == "merge":
            out_s, out_f = out_channels, 0
        else:
            out_f = int(alpha * out_channels)
            out_s = out_channels - out_f
        self.out_channels_spatial, self.out_channels_freq = out_s, out_f
        k = kernel_size
        learnable = not mcs_fixed

        self.s2s = self.s2f = self.f2f = self.f2s = None
        if stage == "split":
            if self.depthwise:
                self.s2s = _conv(in_s, in_s, k, groups=in_s)
                self.f2f = MCSConv(in_f, in_f, k, groups=in_f, learnable=learnable) if in_f else None
            else:
                self.s2s = _conv(in_channels, out_s, k)
                self.f2f = MCSConv(in_channels, out_f, k, learnable=learnable) if out_f else None
        elif stage == "dual":
            if self.depthwise:
                self.s2s = _conv(in_s, in_s, k, groups=in_s)
                self.f2f = _conv(in_f, in_f, k, groups=in_f)
            else:
                self.s2s = _conv(in_s, out_s, k)
                self.s2f = _conv(in_s, out_f, k)
                self.f2f = _conv(in_f, out_f, k)
                self.f2s = _conv(in_f, out_s, k)
        else:
            self.s2s = _conv(in_s, out_channels, k)
            self.f2s = _conv(in_f, out_channels, k)

    @staticmethod
    def _run(conv: nn.Module | None, x: torch.Tensor) -> torch.Tensor | None:
        return conv(x) if conv is not None else None

    def forward(self, x):
        if self.pool is not None:
            x = self.pool(x)
        if self.stage == "split":
            return self._split(x)
        x_s, x_f = x
        size_s, size_f = tuple(x_s.shape[-2:]), tuple(x_f.shape[-2:])
        if size_s == size_f and self._fusable():
            return self._fused(x_s, x_f)
        if self.stage == "merge":
            f2s = self._run(self.f2s, x_f)
            terms = [self._run(self.s2s, x_s), _resize(f2s, size_s) if f2s is not None else None]
            return _sum_terms(terms, x_s, self.out_channels_spatial, size_s)
        s2s, f2s = self._run(self.s2s, x_s), self._run(self.f2s, x_f)
        f2f, s2f = self._run(self.f2f, x_f), self._run(self.s2f, x_s)
        # Eq. 8: the interaction terms change resolution to meet the branch they join.
        out_s = _sum_terms([s2s, _resize(f2s, size_s) if f2s is not None else None], x_s, self.out_channels_spatial, size_s)
        out_f = _sum_terms([f2f, _resize(s2f, size_f) if s2f is not None else None], x_f, self.out_channels_freq, size_f)
        return out_s, out_f

    def _fusable(self) -> bool:
        if self.depthwise:
            return self.stage == "dual" and self.s2s is not None and self.f2f is not None
        if self.stage == "merge":
            return self.s2s is not None and self.f2s is not None
        return all(c is not None for c in (self.s2s, self.s2f, self.f2f, self.f2s))

    def _fused(self, x_s: torch.Tensor, x_f: torch.Tensor):
        """Same result as the separate convs, as one conv over both branches.

        With both branches at one resolution the four (or two) convs are the
        blocks of one weight matrix; one large conv runs ~3x faster on CPU
        than four small ones. Parameters stay separate so the state dict
        names the paper's f_S->S, f_S->F, f_F->F, f_F->S.
        """
        if self.depthwise:
            # Per-channel kernels: both branches are one depthwise conv over the joined channels.
            weight = torch.cat([self.s2s.weight, self.f2f.weight], dim=0)
            out = F.conv2d(torch.cat([x_s, x_f], dim=1), weight, padding=self.s2s.padding, groups=weight.shape[0])
            return out[:, : self.out_channels_spatial], out[:, self.out_channels_spatial :]
        if self.stage == "merge":
            weight = torch.cat([self.s2s.weight, self.f2s.weight], dim=1)
        else:
            weight = torch.cat(
                [
                    torch.cat([self.s2s.weight, self.f2s.weight], dim=1),
                    torch.cat([self.s2f.weight, self.f2f.weight], dim=1),
                ],
                dim=0,
            )
        out = F.conv2d(torch.cat([x_s, x_f], dim=1), weight, padding=self.s2s.padding)
        if self.stage == "merge":
            return out
        return out[:, : self.out_channels_spatial], out[:, self.out_channels_spatial :]

    def _split(self, x: torch.Tensor):
        h, w = x.shape[-2:]
        size = tuple(x.shape[-2:])
        size_f = (max(1, int(h * self.beta)), max(1, int(w * self.beta)))
        if self.depthwise:
            x_s, x_f = x[:, : self.in_channels_spatial], x[:, self.in_channels_spatial :]
        else:
            x_s = x_f = x
        out_s = _sum_terms([self._run(self.s2s, x_s)], x, self.out_channels_spatial, size)
        out_f = self._run(self.f2f, x_f)
        out_f = _resize(out_f, size_f) if out_f is not None else x.new_zeros(x.shape[0], 0, *size_f)
        return out_s, out_f


class DualBatchNorm(nn.Module):
    """One BatchNorm per branch (the branches have different statistics)."""

    def __init__(self, spatial_channels: int, freq_channels: int):
        super().__init__()
        self.bn_s = nn.BatchNorm2d(spatial_channels) if spatial_channels else None
        self.bn_f = nn.BatchNorm2d(freq_channels) if freq_channels else None

    def forward(self, x):
        x_s, x_f = x
        return (
            self.bn_s(x_s) if self.bn_s is not None else x_s,
            self.bn_f(x_f) if self.bn_f is not None else x_f,
        )


class SFIConvBN(nn.Module):
    """An SFIConv stage followed by its BatchNorm(s): what a conv factory hands a backbone."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, groups=1, stage="dual", alpha=0.5, beta=1.0, mcs_fixed=False):
        super().__init__()
        self.conv = SFIConv(in_channels, out_channels, kernel_size, stride, groups, stage, alpha, beta, mcs_fixed)
        if stage == "merge":
            self.bn = nn.BatchNorm2d(out_channels)
        else:
            self.bn = DualBatchNorm(self.conv.out_channels_spatial, self.conv.out_channels_freq)

    def forward(self, x):
        return self.bn(self.conv(x))


class SFIConvFactory(VanillaConvFactory):
    """SFIConv stages with per-branch BatchNorm; "single" stays vanilla (the stem)."""

    dual = True

    def __init__(self, alpha: float = 0.5, beta: float = 1.0, mcs_fixed: bool = False):
        check_alpha_beta(alpha, beta)
        self.alpha = alpha
        self.beta = beta
        self.mcs_fixed = mcs_fixed

    def conv_bn(self, in_channels, out_channels, kernel_size, stride=1, groups=1, stage="single"):
        if stage == "single":
            return super().conv_bn(in_channels, out_channels, kernel_size, stride, groups)
        return SFIConvBN(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            groups=groups,
            stage=stage,
            alpha=self.alpha,
            beta=self.beta,
            mcs_fixed=self.mcs_fixed,
        )


@dataclass(frozen=True)
class PairedConfig:
    """One backbone of SFIConv Table III, in its vanilla and its SFIC form: the data both specs are made of."""

    name: str  # the vanilla model; the SFIConv one is sfic_<name>
    description: str
    paper_params: int
    paper_macs: int  # vanilla
    paper_macs_sfic: int
    build_args: tuple = ()  # what the family's builder takes before (factory, num_classes)


def paired_specs(config: PairedConfig, build: Callable, family: str, gradcam_layer: str) -> tuple[ModelSpec, ModelSpec]:
    """The vanilla and the SFIC ModelSpec of one backbone, built by `build(*config.build_args, factory, num_classes)`.

    The paper trains every backbone in Table III the same way, so both share
    the default TrainDefaults (Adam 1e-4, x0.5 per epoch, 20 epochs, batch 64,
    seed 7, flip + rotation 10) and 256 x 256 ImageNet-normalised input.
    """
    make = partial(build, *config.build_args)

    def build_vanilla(num_classes: int = 2):
        return make(VanillaConvFactory(), num_classes)

    def build_sfic(alpha: float = 0.5, beta: float = 1.0, mcs_fixed: bool = False, num_classes: int = 2):
        return make(SFIConvFactory(alpha, beta, mcs_fixed), num_classes)

    shared = dict(family=family, gradcam_layer=gradcam_layer, paper=SFICONV_PAPER, paper_params=config.paper_params)
    vanilla = ModelSpec(name=config.name, builder=build_vanilla, description=f"{config.description}, vanilla convolutions",
                        paper_macs=config.paper_macs, **shared)
    sfic = ModelSpec(name=f"sfic_{config.name}", builder=build_sfic, description=f"{config.description} with SFIConv (alpha 0.5, beta 1.0)",
                     paper_macs=config.paper_macs_sfic, default_kwargs=dict(SFIC_DEFAULTS), **shared)
    return vanilla, sfic


def register_vanilla_and_sfic(configs: tuple[PairedConfig, ...], build: Callable, family: str, gradcam_layer: str) -> None:
    """Register `name` and `sfic_<name>` for every row of `configs` (see `paired_specs`)."""
    for config in configs:
        for spec in paired_specs(config, build, family, gradcam_layer):
            register_model(spec)
