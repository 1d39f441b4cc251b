"""The gradient reversal layer (Ganin & Lempitsky 2015) and its beta schedule.

- `grad_reverse` / `GradientReversal`: identity forward, gradient times -beta
  backward, so the layers before it learn to defeat the adversary after it
  (DID's domain-invariance branch, A_di).
- `grl_beta`: the schedule that ramps beta from 0 to 1 over training.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, beta: float) -> torch.Tensor:
        ctx.beta = beta
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.beta * grad_output, None


def grad_reverse(x: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Identity in the forward pass; multiplies the gradient by -beta on the way back."""
    return _ReverseGradient.apply(x, float(beta))


class GradientReversal(nn.Module):
    """Module form of `grad_reverse`; set `.beta` as training progresses."""

    def __init__(self, beta: float = 1.0):
        super().__init__()
        self.beta = float(beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}"


def grl_beta(progress: float, steepness: float = 5.0) -> float:
    """beta = 2 / (1 + exp(-steepness * p)) - 1 with p = epoch / max_epochs in [0, 1].

    Starts at 0 so the adversary cannot disturb the features before the
    critic has learnt anything, and approaches 1 (0.987 at p = 1).
    """
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be in [0, 1] (epoch / max_epochs), got {progress}")
    return 2.0 / (1.0 + math.exp(-steepness * progress)) - 1.0
