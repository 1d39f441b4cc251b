"""Bottleneck ResNets (26/50/101), vanilla and SFIConv, from one builder.

The SFIConv variant places the stages as the official SFIConv code does:
Stage 1 (split) is the first 1x1 conv of layer 1's first bottleneck, Stage 3
(merge) the last 1x1 conv of layer 4's first bottleneck (and its shortcut);
every conv in between is Stage 2 (dual) and the rest of layer 4 is vanilla.
In the split block the shortcut starts after the split conv rather than at
the block input, so the network holds a single Stage-1 conv (one MCSConv).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ddtool.models.layers.conv_factory import PerBranch, VanillaConvFactory, add_branches
from ddtool.models.layers.head import PooledLinearClassifier
from ddtool.models.layers.init import init_conv_weights
from ddtool.models.sficonv import PairedConfig, register_vanilla_and_sfic

EXPANSION = 4
WIDTHS = (64, 128, 256, 512)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand, residual sum.

    `stage` is the block's place in the SFIConv plan: "single" (vanilla),
    "split" (first block of the dual part), "dual", or "merge" (last).
    """

    def __init__(self, factory, in_channels: int, width: int, stride: int = 1, stage: str = "single"):
        super().__init__()
        out_channels = width * EXPANSION
        conv1_stage, inner_stage, last_stage = {
            "single": ("single", "single", "single"),
            "split": ("split", "dual", "dual"),
            "dual": ("dual", "dual", "dual"),
            "merge": ("dual", "dual", "merge"),
        }[stage]
        self.stage = stage
        self.conv1 = factory.conv_bn(in_channels, width, 1, stage=conv1_stage)
        self.conv2 = factory.conv_bn(width, width, 3, stride=stride, stage=inner_stage)
        self.conv3 = factory.conv_bn(width, out_channels, 1, stage=last_stage)
        self.relu = PerBranch(nn.ReLU(inplace=True))
        # The split block's shortcut sees conv1's (dual) output, which has `width` channels.
        shortcut_in = width if stage == "split" else in_channels
        self.downsample = None
        if stride != 1 or shortcut_in != out_channels:
            self.downsample = factory.conv_bn(shortcut_in, out_channels, 1, stride=stride, stage=last_stage)

    def forward(self, x):
        out = self.relu(self.conv1(x))
        identity = out if self.stage == "split" else x
        out = self.relu(self.conv2(out))
        out = self.conv3(out)
        if self.downsample is not None:
            identity = self.downsample(identity)
        return self.relu(add_branches(out, identity))


def _block_stages(blocks_per_layer: tuple[int, ...], dual: bool) -> list[list[str]]:
    if not dual:
        return [["single"] * n for n in blocks_per_layer]
    plan = [["dual"] * n for n in blocks_per_layer]
    plan[0][0] = "split"
    plan[-1] = ["merge"] + ["single"] * (blocks_per_layer[-1] - 1)
    return plan


class ResNet(PooledLinearClassifier):
    def __init__(self, blocks_per_layer: tuple[int, ...], factory=None, num_classes: int = 2):
        super().__init__()
        factory = factory or VanillaConvFactory()
        # The stem stays vanilla: SFIConv needs a many-channel input to split (paper Sec. III-A).
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        in_channels = 64
        layers = []
        for index, (width, stages) in enumerate(zip(WIDTHS, _block_stages(blocks_per_layer, factory.dual))):
            blocks = []
            for block_index, stage in enumerate(stages):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(Bottleneck(factory, in_channels, width, stride, stage))
                in_channels = width * EXPANSION
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.add_head(in_channels, num_classes)
        init_conv_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _build(blocks_per_layer, factory, num_classes):
    return ResNet(blocks_per_layer, factory, num_classes)


# SFIConv Table III: parameters and MACs at 256 x 256 (vanilla, SFIC).
RESNETS = (
    PairedConfig("resnet26", "ResNet26 (bottleneck [2, 2, 2, 2]), 2-class head", 13_950_000, 3_080_000_000, 3_090_000_000, ((2, 2, 2, 2),)),
    PairedConfig("resnet50", "ResNet50 (bottleneck [3, 4, 6, 3]), 2-class head", 23_510_000, 5_380_000_000, 5_380_000_000, ((3, 4, 6, 3),)),
    PairedConfig("resnet101", "ResNet101 (bottleneck [3, 4, 23, 3]), 2-class head", 42_510_000, 10_250_000_000, 10_250_000_000, ((3, 4, 23, 3),)),
)
register_vanilla_and_sfic(RESNETS, _build, family="resnet", gradcam_layer="layer4")
