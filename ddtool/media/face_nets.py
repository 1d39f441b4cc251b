"""CNN face detector networks and their decoding: BlazeFace and MTCNN.

ddtool's own implementation of the published architectures, laid out so the
converted public weights (weights/face_detectors/) load by name:

- BlazeFace (Bazarevsky et al. 2019, MediaPipe): SSD-style detector on a
  square 128x128 (front-camera model) or 256x256 (back-camera model) RGB
  image scaled to [-1, 1]; 896 anchors on a 16x16 and an 8x8 grid; each gives
  a score, a box and 6 keypoints (eyes, nose tip, mouth, ear tragions).
- MTCNN (Zhang et al. 2016): P-Net over an image pyramid proposes 12x12
  windows, R-Net (24x24) and O-Net (48x48) refine them; O-Net also gives 5
  landmarks (eyes, nose, mouth corners). Input RGB scaled to [-1, 1).

Everything here works in the coordinates of the image it is given; the
detectors in ddtool.media.faces map results back to the full frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.media.face_box import box_iou, nms  # noqa: F401 (re-exported; numpy only, so CenterFace needs no torch)

# ---------------------------------------------------------------- BlazeFace


class BlazeBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 with a residual; stride 2 halves the map (max-pooled skip)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        # TensorFlow "SAME" padding: symmetric for stride 1, bottom/right only for stride 2.
        padding = 1 if stride == 1 else 0
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=padding, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            skip = F.max_pool2d(x, 2, 2)
            x = F.pad(x, (0, 2, 0, 2))
        else:
            skip = x
        if self.extra_channels > 0:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.extra_channels))
        return F.relu(self.convs(x) + skip)


class FinalBlazeBlock(nn.Module):
    """The back model's last stride-2 block: no residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride=2, padding=0, groups=channels),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.convs(F.pad(x, (0, 2, 0, 2))))


def _stem() -> list[nn.Module]:
    return [nn.Conv2d(3, 24, 5, stride=2, padding=0), nn.ReLU(inplace=True)]


class BlazeFaceNet(nn.Module):
    """Both BlazeFace variants: `back=False` is the 128 px front model, `back=True` the 256 px back model.

    forward(x) -> (raw_boxes (N, 896, 16), raw_scores (N, 896)).
    """

    def __init__(self, back: bool = False):
        super().__init__()
        self.back = back
        self.input_size = 256 if back else 128
        if back:
            # 16x16 map (96 ch) from `backbone`, 8x8 from `final`.
            blocks = [BlazeBlock(24, 24) for _ in range(7)] + [BlazeBlock(24, 24, 2)]
            blocks += [BlazeBlock(24, 24) for _ in range(7)] + [BlazeBlock(24, 48, 2)]
            blocks += [BlazeBlock(48, 48) for _ in range(7)] + [BlazeBlock(48, 96, 2)]
            blocks += [BlazeBlock(96, 96) for _ in range(7)]
            self.backbone = nn.Sequential(*_stem(), *blocks)
            self.final = FinalBlazeBlock(96)
            fine = 96
        else:
            # 16x16 map (88 ch) from `backbone1`, 8x8 (96 ch) from `backbone2`.
            widths = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2),
                      (48, 56, 1), (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
            self.backbone1 = nn.Sequential(*_stem(), *[BlazeBlock(i, o, s) for i, o, s in widths])
            self.backbone2 = nn.Sequential(BlazeBlock(88, 96, 2), *[BlazeBlock(96, 96) for _ in range(4)])
            fine = 88
        # 2 anchors per cell on the 16x16 map, 6 on the 8x8 map: 512 + 384 = 896.
        self.classifier_8 = nn.Conv2d(fine, 2, 1)
        self.classifier_16 = nn.Conv2d(96, 6, 1)
        self.regressor_8 = nn.Conv2d(fine, 32, 1)
        self.regressor_16 = nn.Conv2d(96, 96, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(x, (1, 2, 1, 2))
        if self.back:
            fine = self.backbone(x)
            coarse = self.final(fine)
        else:
            fine = self.backbone1(x)
            coarse = self.backbone2(fine)
        n = x.shape[0]

        def flat(t: torch.Tensor, per_anchor: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(n, -1, per_anchor)

        scores = torch.cat([flat(self.classifier_8(fine), 1), flat(self.classifier_16(coarse), 1)], dim=1)
        boxes = torch.cat([flat(self.regressor_8(fine), 16), flat(self.regressor_16(coarse), 16)], dim=1)
        return boxes, scores[..., 0]


def blazeface_anchors() -> np.ndarray:
    """(896, 4) anchors (cx, cy, w, h) in [0, 1]: 2 per cell of the 16x16 grid, then 6 per cell of the 8x8 grid.

    Both models use the same layout (MediaPipe's SSD anchor options with
    fixed anchor size 1); the grids are relative, so the input size does not matter.
    """
    rows = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                rows += [((x + 0.5) / grid, (y + 0.5) / grid, 1.0, 1.0)] * per_cell
    return np.asarray(rows, np.float64)


def decode_blazeface(
    raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, input_size: int, min_score: float
) -> list[tuple[np.ndarray, float]]:
    """One image's raw outputs -> [(values (16,), score)]: x0, y0, x1, y1, then 6 (x, y) keypoints, in [0, 1].

    Anchor offsets are in input pixels; anchors (cx, cy, w, h) are fixed size 1.
    Overlapping detections are merged by score-weighted averaging (MediaPipe's
    "weighted NMS", IoU > 0.3), which steadies the boxes between frames.
    """
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.astype(np.float64), -100.0, 100.0)))
    keep = np.flatnonzero(scores >= min_score)
    if keep.size == 0:
        return []
    raw = raw_boxes[keep] / float(input_size)
    anc = anchors[keep]
    cx = raw[:, 0] * anc[:, 2] + anc[:, 0]
    cy = raw[:, 1] * anc[:, 3] + anc[:, 1]
    w = raw[:, 2] * anc[:, 2]
    h = raw[:, 3] * anc[:, 3]
    values = np.empty((keep.size, 16), np.float64)
    values[:, 0], values[:, 1], values[:, 2], values[:, 3] = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    values[:, 4::2] = raw[:, 4::2] * anc[:, 2:3] + anc[:, 0:1]
    values[:, 5::2] = raw[:, 5::2] * anc[:, 3:4] + anc[:, 1:2]
    return weighted_nms(values, scores[keep], 0.3)


def weighted_nms(values: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[tuple[np.ndarray, float]]:
    order = np.argsort(-scores)
    values, scores = values[order], scores[order]
    left = np.ones(len(scores), bool)
    found = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (box_iou(values[i, :4], values[:, :4]) > iou_threshold)
        group[i] = True
        weights = scores[group]
        found.append(((values[group] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])))
        left &= ~group
    return found


# ---------------------------------------------------------------- MTCNN


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window every 2 pixels."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return torch.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


def _flatten_caffe(x: torch.Tensor) -> torch.Tensor:
    # The weights come from Caffe models trained on transposed (W, H) images:
    # their dense layers read the map in (W, H, C) order.
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class _RefineNet(nn.Module):
    """RNet / ONet: conv + PReLU stages (each max-pooled with stride 2 or not), one dense + PReLU, then heads.

    Attribute names are the converted Caffe weights' names (conv1, prelu1, ...,
    dense{n+1}, prelu{n+1}, dense{n+2}_1, ...): the table builds them, the
    shipped safetensors fill them.
    """

    def __init__(self, convs: tuple[tuple[int, int, int, int | None], ...], dense: tuple[int, int], heads: tuple[int, ...]):
        super().__init__()
        self.pools = tuple(pool for *_, pool in convs)
        for i, (cin, cout, kernel, _pool) in enumerate(convs, 1):
            setattr(self, f"conv{i}", nn.Conv2d(cin, cout, kernel))
            setattr(self, f"prelu{i}", nn.PReLU(cout))
        d = len(convs) + 1
        setattr(self, f"dense{d}", nn.Linear(*dense))
        setattr(self, f"prelu{d}", nn.PReLU(dense[1]))
        for k, n in enumerate(heads, 1):
            setattr(self, f"dense{d + 1}_{k}", nn.Linear(dense[1], n))
        self._dense = (f"dense{d}", f"prelu{d}")
        self._heads = tuple(f"dense{d + 1}_{k}" for k in range(1, len(heads) + 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for i, pool in enumerate(self.pools, 1):
            x = getattr(self, f"prelu{i}")(getattr(self, f"conv{i}")(x))
            if pool is not None:
                x = F.max_pool2d(x, pool, 2, ceil_mode=True)
        dense, prelu = (getattr(self, name) for name in self._dense)
        x = prelu(dense(_flatten_caffe(x)))
        face, *rest = (getattr(self, name)(x) for name in self._heads)
        return (torch.softmax(face, dim=1)[:, 1], *rest)


class RNet(_RefineNet):
    """Refine net on 24x24 crops: face probability and box offsets."""

    def __init__(self):
        super().__init__(convs=((3, 28, 3, 3), (28, 48, 3, 3), (48, 64, 2, None)), dense=(576, 128), heads=(2, 4))


class ONet(_RefineNet):
    """Output net on 48x48 crops: probability, box offsets and 5 landmarks (5 x, then 5 y)."""

    def __init__(self):
        super().__init__(convs=((3, 32, 3, 3), (32, 64, 3, 3), (64, 64, 3, 2), (64, 128, 2, None)), dense=(1152, 256), heads=(2, 4, 10))


def _to_input(rgb: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) or (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1)."""
    x = torch.from_numpy(np.ascontiguousarray(rgb))
    if x.ndim == 3:
        x = x[None]
    return (x.permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, :4] + offsets * np.stack([w, h, w, h], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _crops(rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """size x size crops of each box (zero padding outside the image), (N, size, size, 3)."""
    height, width = rgb.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for i, (x0, y0, x1, y1) in enumerate(np.round(boxes).astype(np.int64)):
        if x1 <= x0 or y1 <= y0:
            continue
        patch = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


class Mtcnn:
    """The three MTCNN stages and the cascade that links them."""

    def __init__(self, pnet: PNet, rnet: RNet, onet: ONet, min_face: int = 20, factor: float = 0.709,
                 thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)):
        self.pnet, self.rnet, self.onet = pnet.eval(), rnet.eval(), onet.eval()
        self.min_face, self.factor, self.thresholds = min_face, factor, thresholds

    def scales(self, height: int, width: int) -> list[float]:
        scale = 12.0 / self.min_face
        side = min(height, width) * scale
        found = []
        while side >= 12:
            found.append(scale)
            scale *= self.factor
            side *= self.factor
        return found

    @torch.inference_mode()
    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (N, 4) x0 y0 x1 y1, scores (N,), landmarks (N, 5, 2)) in `rgb`'s pixels."""
        height, width = rgb.shape[:2]
        empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        # Stage 1: P-Net over the pyramid, NMS per scale then over all.
        proposals = []
        for scale in self.scales(height, width):
            size = (int(width * scale + 1), int(height * scale + 1))
            prob, reg = self.pnet(_to_input(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)))
            prob, reg = prob[0].numpy(), reg[0].numpy()
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if ys.size == 0:
                continue
            windows = np.stack([2 * xs, 2 * ys, 2 * xs + 12, 2 * ys + 12], axis=1) / scale
            found = np.concatenate([windows, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)
            proposals.append(found[nms(found[:, :4], found[:, 4], 0.5)])
        if not proposals:
            return empty
        found = np.concatenate(proposals)
        found = found[nms(found[:, :4], found[:, 4], 0.7)]
        boxes = _square(_regress(found[:, :4], found[:, 5:9]))
        # Stage 2: R-Net.
        prob, reg = self.rnet(_to_input(_crops(rgb, boxes, 24)))
        keep = np.flatnonzero(prob.numpy() >= self.thresholds[1])
        if keep.size == 0:
            return empty
        boxes, scores, reg = boxes[keep], prob.numpy()[keep], reg.numpy()[keep]
        keep = nms(boxes, scores, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        # Stage 3: O-Net, with landmarks relative to the box it was given.
        prob, reg, marks = self.onet(_to_input(_crops(rgb, boxes, 48)))
        keep = np.flatnonzero(prob.numpy() >= self.thresholds[2])
        if keep.size == 0:
            return empty
        boxes, scores, reg, marks = boxes[keep], prob.numpy()[keep], reg.numpy()[keep], marks.numpy()[keep]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        points = np.stack([boxes[:, :1] + w * marks[:, :5], boxes[:, 1:2] + h * marks[:, 5:]], axis=2)
        boxes = _regress(boxes, reg)
        keep = nms(boxes, scores, 0.7, mode="min")
        return boxes[keep], scores[keep], points[keep]


# ---------------------------------------------------------------- weights


def load_state(path: Path, module: nn.Module, what: str) -> nn.Module:
    """Load a safetensors state dict into `module`; every problem is one ConfigError line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ConfigError(f"{what} weights not found: {path}; pass an existing .safetensors file or drop --detector-model")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a safetensors file of {what} weights ({str(exc).splitlines()[0]})") from None
    try:
        module.load_state_dict(state)
    except RuntimeError:
        raise ConfigError(f"{path}: the tensors do not fit the {what} architecture (wrong model file?)") from None
    return module.eval()
