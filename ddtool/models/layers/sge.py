"""Spatial Group-wise Enhance (SGE, Li et al. 2019), as LDFnet's BaseNet uses it.

The channels are split into groups; inside a group every position is scored
by how similar its feature vector is to the group's mean vector (LDFnet eq.
1-2). The scores are standardised over the positions, scaled and shifted by
one learnable (weight, bias) pair per group and squashed with a sigmoid that
gates the features (eq. 3). Only 2 x groups parameters are added.

weight starts at 0 and bias at 1, so a fresh module gates every position by
the same sigmoid(1): training starts from a plain, uniformly scaled network
and learns where to emphasise.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ddtool.errors import ConfigError


class SpatialGroupEnhance(nn.Module):
    def __init__(self, channels: int, groups: int = 8, eps: float = 1e-5):
        super().__init__()
        if groups < 1 or channels % groups:
            raise ConfigError(f"SGE needs the channel count ({channels}) to be a multiple of groups ({groups})")
        self.groups = groups
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(1, groups, 1, 1))
        self.bias = nn.Parameter(torch.ones(1, groups, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        grouped = x.reshape(n * self.groups, c // self.groups, h, w)
        group_mean = grouped.mean(dim=(2, 3), keepdim=True)
        similarity = (grouped * group_mean).sum(dim=1)  # (n*g, h, w)
        similarity = similarity.reshape(n, self.groups, h * w)
        centred = similarity - similarity.mean(dim=2, keepdim=True)
        # Unbiased std needs two positions; a 1x1 map has nothing to rank anyway.
        spread = centred.std(dim=2, keepdim=True, unbiased=bool(h * w > 1)) + self.eps  # bool(): a Python flag also when traced (ONNX export)
        score = (centred / spread).reshape(n, self.groups, h, w)
        gate = torch.sigmoid(score * self.weight + self.bias)
        return (grouped * gate.reshape(n * self.groups, 1, h, w)).reshape(n, c, h, w)
