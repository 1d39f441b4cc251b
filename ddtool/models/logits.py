"""What a detector's (N, 2) logits mean: index 1 = fake. One place turns them into P(fake)."""

from __future__ import annotations

import torch


def fake_probability(logits: torch.Tensor) -> torch.Tensor:
    """P(fake) per row: softmax over the two logits, index 1 (computed in float32, also under AMP)."""
    return torch.softmax(logits.float(), dim=1)[:, 1]
