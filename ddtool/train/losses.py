"""Training losses beyond plain cross-entropy.

- `auc_loss`: the WMW (Wilcoxon-Mann-Whitney) surrogate of AUC used by CrossDF
  (eq. 2); any model may use it, it only needs per-sample fake scores.
- `bce_auc_loss`: CrossDF's robust classification loss (eq. 3) on 2-logit outputs.
- `grad_reverse` / `GradientReversal`: the gradient reversal layer (Ganin &
  Lempitsky 2015): identity forward, gradient times -beta backward.
- `grl_beta`: the schedule that ramps beta from 0 to 1 over training.
- `js_mutual_information`: the Jensen-Shannon lower bound on mutual information
  (Hjelm et al. 2019), from critic scores of joint and shuffled pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def auc_loss(scores: torch.Tensor, labels: torch.Tensor, gamma: float = 0.15, p: float = 2.0) -> torch.Tensor:
    """Mean over all (fake i, real j) pairs of max(0, gamma - (s_i - s_j)) ** p.

    A pair costs nothing once the fake score beats the real one by the margin
    gamma, so the loss is 0 when every fake is ranked well above every real.
    A batch with only one class has no pairs; the loss is then 0 (still
    attached to the graph so callers can add it unconditionally).
    """
    if not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma}")
    if p <= 1:
        raise ValueError(f"p must be > 1, got {p}")
    scores = scores.reshape(-1)
    labels = labels.reshape(-1)
    fake = scores[labels == 1]
    real = scores[labels == 0]
    if fake.numel() == 0 or real.numel() == 0:
        return scores.sum() * 0.0
    margin_shortfall = gamma - (fake[:, None] - real[None, :])
    return F.relu(margin_shortfall).pow(p).mean()


def bce_auc_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.5,
    gamma: float = 0.15,
    p: float = 2.0,
) -> torch.Tensor:
    """alpha * BCE + (1 - alpha) * AUC-loss on (N, 2) logits (index 1 = fake).

    With two logits, sigmoid(l1 - l0) is the softmax probability of "fake", so
    cross-entropy over the two logits is exactly the paper's BCE. The AUC term
    ranks those probabilities: the paper bounds gamma by 1, which only makes
    sense for scores in [0, 1].
    """
    labels = labels.long().reshape(-1)
    bce = F.cross_entropy(logits, labels)
    fake_probability = torch.softmax(logits, dim=1)[:, 1]
    return alpha * bce + (1 - alpha) * auc_loss(fake_probability, labels, gamma=gamma, p=p)


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


def js_mutual_information(joint_scores: torch.Tensor, shuffled_scores: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon MI lower bound: E_joint[log sigmoid(T)] + E_marginal[log(1 - sigmoid(T))].

    `joint_scores` are critic outputs T on pairs taken from the same sample,
    `shuffled_scores` on pairs drawn from the product of the marginals. The
    value is <= 0; it equals -2 log 2 for a critic that cannot tell them
    apart and rises towards 0 as the pairs become distinguishable (dependent).
    log(1 - sigmoid(t)) = -softplus(t) keeps it finite for large |t|.
    """
    return -F.softplus(-joint_scores).mean() - F.softplus(shuffled_scores).mean()
