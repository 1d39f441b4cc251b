"""Conv factories: one backbone builder, two kinds of convolution (the SFIConv one lives in ddtool.models.sficonv).

SFIConv's idea is that "SFIC-X is X with its convolutions replaced". The
backbones (ResNet, VGG, MobileNet) therefore never build a convolution
themselves; they ask a factory for `conv_bn(..., stage=...)` and get either a
vanilla Conv2d + BatchNorm or an SFIConv stage with one BatchNorm per branch.

Between convolutions an activation may be a single tensor or a
(spatial, frequency) pair. `PerBranch` and `add_branches` apply the
non-convolution parts of a network (ReLU, pooling, residual sums) to either
form, so block code is written once.

Stages (paper Fig. 2): "single" = vanilla conv, "split" = Stage 1 (one input,
two outputs), "dual" = Stage 2 (two in, two out), "merge" = Stage 3 (two in,
one out).
"""

from __future__ import annotations

from typing import Union

import torch
import torch.nn as nn

Branches = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]

STAGES = ("single", "split", "dual", "merge")


class PerBranch(nn.Module):
    """Run a stateless module (ReLU, pooling) on a tensor or on each branch."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: Branches) -> Branches:
        if isinstance(x, tuple):
            return tuple(self._apply_one(t) for t in x)
        return self.module(x)

    def _apply_one(self, t: torch.Tensor) -> torch.Tensor:
        # A branch with no channels (alpha = 0 or 1) carries only its shape.
        if t.shape[1] == 0:
            probe = self.module(t.new_zeros(t.shape[0], 1, *t.shape[2:]))
            return t.new_zeros(t.shape[0], 0, *probe.shape[2:])
        return self.module(t)


def add_branches(a: Branches, b: Branches) -> Branches:
    """Residual sum of two activations of the same form."""
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


class VanillaConvFactory:
    """Plain Conv2d (no bias: BatchNorm follows) + BatchNorm2d; ignores `stage`."""

    dual = False

    def conv_bn(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        stage: str = "single",
    ) -> nn.Module:
        if stage not in STAGES:
            raise ValueError(f"unknown conv stage {stage!r}; expected one of {STAGES}")
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels),
        )
