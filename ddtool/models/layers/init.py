"""Weight initialisation shared by the backbones."""

from __future__ import annotations

import math

import torch.nn as nn

from ddtool.models.layers.constrained import ConstrainedConv2d


def init_conv_weights(model: nn.Module) -> None:
    """He (fan-out) init for every trainable conv, as torchvision's ResNet and
    MobileNet do. PyTorch's default conv init shrinks activations by ~2x per
    layer, so a fresh 27-layer MobileNet in eval mode gives the same logits
    for every input. Constrained kernels keep their own init (eq. 1).
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.weight.requires_grad and not isinstance(m, ConstrainedConv2d):
            # torch's fan computation ignores `groups`; for a depthwise conv
            # that makes the init 1/sqrt(C) too small, so compute it here.
            k_h, k_w = m.kernel_size
            fan_out = m.out_channels // m.groups * k_h * k_w
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
