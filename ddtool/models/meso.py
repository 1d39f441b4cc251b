"""MesoNet family: Meso4, MesoInception4 (Afchar et al., WIFS 2018) and the
DFDC student study's Meso-CNN at 150x150.

Two variants of the MesoNet pair, because the numbers people quote come from
two different code bases (docs/models-meso.md):
- "torch_port" (default): the widely used PyTorch port the SFIConv and LDFnet
  papers benchmarked (28,525 parameters / 60.18M MACs for MesoInception4):
  convolutions without bias, one BatchNorm shared by the last two conv
  blocks, two-logit head.
- "keras": the original Keras models (convs with bias, one BatchNorm per
  block, single sigmoid output; 27,977 / 28,615 trainable parameters). The
  single logit z is returned as (N, 2) logits [0, z]: softmax of that pair
  is (1 - sigmoid(z), sigmoid(z)), so cross-entropy training and every
  consumer of two logits behave exactly as the sigmoid model.

All return (N, 2) logits, index 1 = fake, and expose forward_features /
num_features for Grad-CAM and DID.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ddtool.errors import ConfigError
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model

VARIANTS = ("torch_port", "keras")
# Keras' rescale=1/255 preprocessing: pixels in [0, 1], nothing subtracted.
UNIT_MEAN = (0.0, 0.0, 0.0)
UNIT_STD = (1.0, 1.0, 1.0)


class ConvReLU(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool):
        super().__init__(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=bias), nn.ReLU(inplace=True))


class InceptionLayer(nn.Module):
    """MesoInception's module: 1x1, 1x1->3x3, 1x1->3x3 dilated 2, 1x1->3x3 dilated 3, concatenated."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int], bias: bool, relu: bool):
        super().__init__()
        a, b, c, d = widths

        def activation() -> nn.Module:
            return nn.ReLU(inplace=True) if relu else nn.Identity()

        def branch(width: int, dilation: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(in_channels, width, 1, bias=bias),
                activation(),
                nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation, bias=bias),
                activation(),
            )

        self.pointwise = nn.Sequential(nn.Conv2d(in_channels, a, 1, bias=bias), activation())
        self.dilated1 = branch(b, 1)
        self.dilated2 = branch(c, 2)
        self.dilated3 = branch(d, 3)
        self.out_channels = a + b + c + d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pointwise(x), self.dilated1(x), self.dilated2(x), self.dilated3(x)], dim=1)


class MesoNet(nn.Module):
    """Meso4 (inception=False) or MesoInception4 (inception=True).

    Four blocks of (layer -> BatchNorm -> max-pool 2, 2, 2, 4), flatten,
    dropout, dense 16 + LeakyReLU(0.1), dropout, output layer.
    """

    POOLS = (2, 2, 2, 4)

    def __init__(
        self,
        inception: bool = False,
        variant: str = "torch_port",
        num_classes: int = 2,
        input_size: int = 256,
        dropout: float = 0.5,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown MesoNet variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if input_size < 32:
            raise ConfigError(f"MesoNet pools the input by 32; input_size {input_size} is too small (use >= 32)")
        self.variant = variant
        keras = variant == "keras"
        if inception:
            # Keras applies ReLU inside the inception module; the port does not.
            self.layer1 = InceptionLayer(3, (1, 4, 4, 2), bias=keras, relu=keras)
            self.layer2 = InceptionLayer(self.layer1.out_channels, (2, 4, 4, 2), bias=keras, relu=keras)
            widths = (self.layer1.out_channels, self.layer2.out_channels, 16, 16)
        else:
            self.layer1 = ConvReLU(3, 8, 3, bias=keras)
            self.layer2 = ConvReLU(8, 8, 5, bias=keras)
            widths = (8, 8, 16, 16)
        self.layer3 = ConvReLU(widths[1], 16, 5, bias=keras)
        self.layer4 = ConvReLU(16, 16, 5, bias=keras)
        if keras:
            norm_of_block = (0, 1, 2, 3)
        elif inception:
            norm_of_block = (0, 1, 2, 2)
        else:
            norm_of_block = (0, 0, 1, 1)
        # The port reuses one BatchNorm for two blocks of equal width; which
        # one each block uses is kept here rather than by registering the
        # same module twice (that would duplicate its tensors in checkpoints).
        self._norm_of_block = norm_of_block
        norm_widths = {}
        for block, norm in enumerate(norm_of_block):
            norm_widths.setdefault(norm, widths[block])
        self.norms = nn.ModuleList(nn.BatchNorm2d(norm_widths[i]) for i in range(len(norm_widths)))
        self.pools = nn.ModuleList(nn.MaxPool2d(p) for p in self.POOLS)
        side = input_size
        for p in self.POOLS:
            side //= p
        self.num_features = 16
        self.keras_head = keras
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(16 * side * side, 16),
            nn.LeakyReLU(0.1),
            nn.Dropout(dropout),
            nn.Linear(16, 1 if keras else num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 16, input/32, input/32): the map the dense head flattens."""
        for block, layer in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = self.pools[block](self.norms[self._norm_of_block[block]](layer(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.forward_features(x))
        return sigmoid_logit_as_pair(out) if self.keras_head else out


def sigmoid_logit_as_pair(z: torch.Tensor) -> torch.Tensor:
    """(N, 1) sigmoid logit -> (N, 2) logits [0, z]; softmax(...)[:, 1] == sigmoid(z)."""
    return torch.cat([torch.zeros_like(z), z], dim=1)


class MesoCNN150(nn.Module):
    """The DFDC student study's Meso-CNN: 150x150 input, four conv+ReLU+BN+pool blocks,
    one hidden dense layer, dropout 0.25, output layer (choices in docs/models-meso.md)."""

    WIDTHS = (8, 8, 16, 16)
    KERNELS = (3, 5, 5, 5)
    POOLS = (2, 2, 2, 4)

    def __init__(self, num_classes: int = 2, input_size: int = 150, hidden: int = 16, dropout: float = 0.25):
        super().__init__()
        if input_size < 32:
            raise ConfigError(f"Meso-CNN pools the input by 32; input_size {input_size} is too small (use >= 32)")
        blocks, in_channels, side = [], 3, input_size
        for width, kernel, pool in zip(self.WIDTHS, self.KERNELS, self.POOLS):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, width, kernel, padding=kernel // 2),
                    nn.ReLU(inplace=True),
                    nn.BatchNorm2d(width),
                    nn.MaxPool2d(pool),
                )
            )
            in_channels, side = width, side // pool
        self.features = nn.Sequential(*blocks)
        self.num_features = in_channels
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def build_meso4(**kwargs) -> MesoNet:
    return MesoNet(inception=False, **kwargs)


def build_mesoinception4(**kwargs) -> MesoNet:
    return MesoNet(inception=True, **kwargs)


def build_meso_cnn150(**kwargs) -> MesoCNN150:
    return MesoCNN150(**kwargs)


# MesoNet paper: Adam, initial lr 1e-3. ddtool decays per epoch, so the
# SFIConv/LDFnet benchmark protocol that produced the 28.52K / 60.18M figures
# supplies the rest (x0.5 per epoch, 20 epochs, batch 64, seed 7).
MESONET_TRAINING = TrainDefaults(optimizer="adam", lr=1e-3, lr_decay=0.5, epochs=20, batch_size=64, seed=7)
MESONET_PAPER = "MesoNet: a compact facial video forgery detection network, WIFS 2018"

# What every MesoNet-family spec shares: [0, 1] input (UNIT_MEAN/STD), one family name.
_MESO = dict(family="meso", mean=UNIT_MEAN, std=UNIT_STD)
_PORT = {"variant": "torch_port"}

for _spec in (
    ModelSpec(
        name="meso4", builder=build_meso4, **_MESO, input_size=256, train=MESONET_TRAINING, gradcam_layer="layer4",
        description="Meso4: four conv blocks + small dense head (PyTorch port by default; variant='keras')",
        # No paper reports the port's Meso4 count; the Keras original has 27,977.
        paper=MESONET_PAPER, default_kwargs=dict(_PORT),
    ),
    ModelSpec(
        name="mesoinception4", builder=build_mesoinception4, **_MESO, input_size=256, train=MESONET_TRAINING, gradcam_layer="layer4",
        description="MesoInception4: two inception blocks + two conv blocks (PyTorch port by default; variant='keras')",
        paper=MESONET_PAPER + "; size as benchmarked in SFIConv Table V / LDFnet Table I",
        paper_params=28_525, paper_macs=60_180_000, default_kwargs=dict(_PORT),
    ),
    ModelSpec(
        name="meso_cnn150", builder=build_meso_cnn150, **_MESO, input_size=150, gradcam_layer="features.3",
        description="Meso-CNN of the DFDC student study: 150x150 input, 4 conv blocks, dense, dropout 0.25",
        # Study: batch 20, trained to ~60 of 100 epochs; optimiser settings
        # not given, so Keras' Adam default (lr 1e-3, constant) is assumed.
        train=TrainDefaults(optimizer="adam", lr=1e-3, lr_decay=1.0, epochs=60, batch_size=20, seed=7, augment=()),
        paper="DeepFake Detection in Deep Learning (DFDC student study), Model 2 Meso-CNN",
    ),
):
    register_model(_spec)
