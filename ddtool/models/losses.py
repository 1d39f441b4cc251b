"""CrossDF's classification objective (Song et al., CrossDF), part of DID's `training_losses`.

- `auc_loss`: the WMW (Wilcoxon-Mann-Whitney) surrogate of AUC (eq. 2); any
  model may use it, it only needs per-sample fake scores.
- `bce_auc_loss`: the robust classification loss (eq. 3) on 2-logit outputs.

A model that trains with its own objective computes it itself, so the pieces
live beside the models; `ddtool.train.losses` re-exports them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ddtool.models.logits import fake_probability


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
    return alpha * bce + (1 - alpha) * auc_loss(fake_probability(logits), labels, gamma=gamma, p=p)
