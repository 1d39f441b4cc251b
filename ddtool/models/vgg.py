"""VGG13/16/19 with BatchNorm, vanilla and SFIConv, from one builder.

Head: global average pool + one Linear(512, 2). Table III's sizes (VGG16
14.73M) leave no room for the classic 4096-wide FC layers (they alone hold
~120M parameters at 256 x 256 input), so the paper's VGGs must end in a
pooled 512-d feature; a single linear layer lands within 0.05% of every
target. Following the paper's rule (Sec. III-A), Stage 1 replaces the
second conv and Stage 3 the last conv; the first conv stays vanilla.
"""

from __future__ import annotations

import torch.nn as nn

from ddtool.models.layers.conv_factory import PerBranch, VanillaConvFactory
from ddtool.models.layers.head import PooledLinearClassifier
from ddtool.models.layers.init import init_conv_weights
from ddtool.models.sficonv import PairedConfig, register_vanilla_and_sfic

POOL = "M"
CONFIGS = {
    "vgg13": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    "vgg19": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL, 512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL),
}


def conv_stages(n_convs: int, dual: bool) -> list[str]:
    """SFIConv plan for a plain chain of convs: vanilla, split, dual..., merge."""
    if not dual:
        return ["single"] * n_convs
    return ["single", "split"] + ["dual"] * (n_convs - 3) + ["merge"]


class VGG(PooledLinearClassifier):
    def __init__(self, config: tuple, factory=None, num_classes: int = 2):
        super().__init__()
        factory = factory or VanillaConvFactory()
        stages = iter(conv_stages(sum(1 for c in config if c != POOL), factory.dual))
        layers: list[nn.Module] = []
        in_channels = 3
        for item in config:
            if item == POOL:
                layers.append(PerBranch(nn.MaxPool2d(2)))
                continue
            layers.append(factory.conv_bn(in_channels, item, 3, stage=next(stages)))
            layers.append(PerBranch(nn.ReLU(inplace=True)))
            in_channels = item
        self.features = nn.Sequential(*layers)
        self.add_head(in_channels, num_classes)
        init_conv_weights(self)


def _build(config, factory, num_classes):
    return VGG(config, factory, num_classes)


# SFIConv Table III: parameters and MACs at 256 x 256 (vanilla, SFIC).
VGGS = tuple(
    PairedConfig(name, f"VGG{name[3:]}-BN, global-average-pooled 512-d head", params, macs, macs_sfic, (CONFIGS[name],))
    for name, params, macs, macs_sfic in (
        ("vgg13", 9_410_000, 14_680_000_000, 14_660_000_000),
        ("vgg16", 14_730_000, 20_120_000_000, 20_110_000_000),
        ("vgg19", 20_040_000, 25_570_000_000, 25_550_000_000),
    )
)
register_vanilla_and_sfic(VGGS, _build, family="vgg", gradcam_layer="features")
