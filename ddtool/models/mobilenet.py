"""MobileNet v1 (width 1.0), vanilla and SFIConv, from one builder.

Each block is a depthwise 3x3 conv and a pointwise 1x1 conv, both with
BatchNorm + ReLU. Following the paper's rule (Sec. III-A) Stage 1 replaces
the second conv of the network (block 1's depthwise conv, which then splits
its channels between the branches) and Stage 3 the last pointwise conv.
"""

from __future__ import annotations

import torch.nn as nn

from ddtool.models.layers.conv_factory import PerBranch, VanillaConvFactory
from ddtool.models.layers.head import PooledLinearClassifier
from ddtool.models.layers.init import init_conv_weights
from ddtool.models.sficonv import PairedConfig, register_vanilla_and_sfic
from ddtool.models.vgg import conv_stages

STEM_CHANNELS = 32
# (output channels of the pointwise conv, stride of the depthwise conv)
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)) + ((512, 1),) * 5 + ((1024, 2), (1024, 1))


class MobileNet(PooledLinearClassifier):
    def __init__(self, factory=None, num_classes: int = 2):
        super().__init__()
        factory = factory or VanillaConvFactory()
        stages = iter(conv_stages(1 + 2 * len(BLOCKS), factory.dual))
        relu = lambda: PerBranch(nn.ReLU(inplace=True))  # noqa: E731
        layers: list[nn.Module] = [factory.conv_bn(3, STEM_CHANNELS, 3, stride=2, stage=next(stages)), relu()]
        in_channels = STEM_CHANNELS
        for out_channels, stride in BLOCKS:
            layers += [
                factory.conv_bn(in_channels, in_channels, 3, stride=stride, groups=in_channels, stage=next(stages)),
                relu(),
                factory.conv_bn(in_channels, out_channels, 1, stage=next(stages)),
                relu(),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.add_head(in_channels, num_classes)
        init_conv_weights(self)


def _build(factory, num_classes):
    return MobileNet(factory, num_classes)


# SFIConv Table III: parameters and MACs at 256 x 256 (vanilla, SFIC).
MOBILENETS = (PairedConfig("mobilenet", "MobileNet v1 (width 1.0)", 3_210_000, 761_000_000, 768_000_000),)
register_vanilla_and_sfic(MOBILENETS, _build, family="mobilenet", gradcam_layer="features")
