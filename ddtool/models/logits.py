"""What a detector's (N, 2) logits mean: index 1 = fake. One place turns them into P(fake)."""

from __future__ import annotations

from typing import Any

import numpy as np


def fake_probability(logits: Any) -> Any:
    """P(fake) per row: softmax over the two logits, index 1, in float32 (also under AMP).

    A torch tensor gives a tensor; a numpy array (the onnxruntime scorers, which need no torch) an array.
    """
    if isinstance(logits, np.ndarray):
        x = logits.astype(np.float64)
        return (1.0 / (1.0 + np.exp(x[:, 0] - x[:, 1]))).astype(np.float32)
    import torch

    return torch.softmax(logits.float(), dim=1)[:, 1]
