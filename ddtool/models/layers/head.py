"""The classifier head ResNet, VGG and MobileNet share: global average pool + one Linear."""

from __future__ import annotations

import torch
import torch.nn as nn


class PooledLinearClassifier(nn.Module):
    """Base of a backbone whose logits are Linear(mean of its last feature map).

    A subclass builds its layers, calls `add_head(num_features, num_classes)`
    and, unless its layers are one `self.features`, overrides
    `forward_features`. The head's parameter names (`pool`, `fc`) are the
    ones shipped checkpoints store.
    """

    def add_head(self, num_features: int, num_classes: int) -> None:
        self.num_features = num_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last map before pooling: (N, num_features, h, w)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.forward_features(x)), 1))
