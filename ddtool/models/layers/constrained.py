"""Constrained convolution (Bayar & Stamm style), as SFIConv's MCSConv eq. (1)
and LDFnet's GTR net use it.

Each k x k kernel is forced to predict its centre pixel from its neighbours:
centre weight = -1, off-centre weights sum to 1. The response is then a
prediction residual that suppresses image content and keeps manipulation
traces. The constraint is re-applied on the weights every forward pass, so it
holds after any optimiser step (the paper's "constrained layer"); with
`learnable=False` the kernels are fixed at their constrained random init (what
the official SFIConv code does).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def project_constrained(weight: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Return `weight` with every kernel's centre = -1 and off-centre sum = 1.

    weight: (C_out, C_in/groups, k, k) with odd k.
    """
    k_h, k_w = weight.shape[-2:]
    if k_h % 2 == 0 or k_w % 2 == 0:
        raise ValueError("constrained kernels need an odd size")
    ch, cw = k_h // 2, k_w // 2
    mask = torch.ones_like(weight)
    mask[..., ch, cw] = 0
    off = weight * mask
    total = off.sum(dim=(-2, -1), keepdim=True)
    # Keep the sign of a sum near zero stable instead of dividing by ~0.
    total = torch.where(total.abs() < eps, torch.full_like(total, eps), total)
    off = off / total
    centre = torch.zeros_like(weight)
    centre[..., ch, cw] = -1.0
    return off + centre


class ConstrainedConv2d(nn.Conv2d):
    """nn.Conv2d whose kernels obey the constraint of `project_constrained`."""

    def __init__(self, *args, learnable: bool = True, **kwargs):
        kwargs.setdefault("bias", False)
        super().__init__(*args, **kwargs)
        self.learnable = learnable
        with torch.no_grad():
            # Positive init so every off-centre sum is far from zero.
            self.weight.uniform_(0.0, 1.0)
            self.weight.copy_(project_constrained(self.weight))
        self.weight.requires_grad_(learnable)

    def constrained_weight(self) -> torch.Tensor:
        return project_constrained(self.weight) if self.learnable else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.constrained_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)
