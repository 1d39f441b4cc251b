"""Training-time augmentation of RGB uint8 face crops.

The papers use flip + rotation (`hflip`, `rotate10`). SBI adds colour jitter
(`colour`) and JPEG down to c40-like quality (`compress`). Three more simulate
what a scanned video does to a face and a curated training crop does not:
`zoom` (a tighter or shifted crop: detector boxes jitter), `jpeg` (lossy
re-encoding) and `downscale` (a small face up-sampled). For real deepfake
video (issue 21's recipe): `jpeg20` (JPEG down to quality 20), `h264` (the
codec FF++ used, qp 23-44: c23 to beyond c40) and `blur`. They are applied to
real and fake crops alike, so compression and blur stop being a cue for
either class; a forgery's local traces (blend edge, face-only blur or
resampling) survive them in part.

Random draws come from torch's generator, not numpy's: DataLoader seeds torch
differently in every worker (numpy's global state would repeat across
workers), and the training state file saves and restores torch's generator,
so a resumed run draws the same augmentations as an uninterrupted one.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from ddtool.errors import ConfigError

Augmentation = Callable[[np.ndarray], np.ndarray]


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def horizontal_flip(image: np.ndarray, p: float = 0.5) -> np.ndarray:
    if float(torch.rand(())) < p:
        return np.ascontiguousarray(image[:, ::-1])
    return image


def rotate(image: np.ndarray, max_degrees: float = 10.0) -> np.ndarray:
    """Rotate about the centre by a uniform angle in [-max_degrees, max_degrees].

    Border pixels are reflected rather than filled black so the model does not
    learn "black corners" as a cue that correlates with nothing real.
    """
    angle = _uniform(-max_degrees, max_degrees)
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def zoom(image: np.ndarray, min_scale: float = 0.75, p: float = 0.5) -> np.ndarray:
    """With probability p, crop a random square of side in [min_scale, 1] of the image and resize it back."""
    if float(torch.rand(())) >= p:
        return image
    h, w = image.shape[:2]
    side = max(8, int(round(min(h, w) * _uniform(min_scale, 1.0))))
    y0 = int(float(torch.rand(())) * (h - side + 1))
    x0 = int(float(torch.rand(())) * (w - side + 1))
    crop = image[y0 : y0 + side, x0 : x0 + side]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(image: np.ndarray, min_quality: int = 50, max_quality: int = 95, p: float = 0.5) -> np.ndarray:
    """With probability p, JPEG-encode and decode at a random quality."""
    if float(torch.rand(())) >= p:
        return image
    quality = int(round(_uniform(min_quality, max_quality)))
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def downscale(image: np.ndarray, min_scale: float = 0.4, p: float = 0.5) -> np.ndarray:
    """With probability p, shrink by a random factor in [min_scale, 1] and bring it back to size."""
    if float(torch.rand(())) >= p:
        return image
    h, w = image.shape[:2]
    scale = _uniform(min_scale, 1.0)
    small = cv2.resize(image, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def compress(image: np.ndarray, min_quality: int = 30, max_quality: int = 95, p: float = 0.6) -> np.ndarray:
    """`jpeg` with a range that reaches FF++ c40-like loss (quality ~30): SBI's blend traces must survive it."""
    return jpeg(image, min_quality=min_quality, max_quality=max_quality, p=p)


def h264(image: np.ndarray, min_qp: int = 23, max_qp: int = 44, p: float = 0.5) -> np.ndarray:
    """With probability p, through libx264 at a quantiser in [min_qp, max_qp]: FF++'s own c23..c40 codec, whose
    blocking and smoothing differ from JPEG's (media.reencode.compress_h264)."""
    if torch.rand(()).item() >= p:
        return image
    from ddtool.media.reencode import compress_h264

    return compress_h264(image, int(round(_uniform(min_qp, max_qp))))


def blur(image: np.ndarray, max_sigma: float = 1.5, p: float = 0.3) -> np.ndarray:
    """With probability p, Gaussian blur of sigma in [0.3, max_sigma] (out-of-focus or heavily scaled video)."""
    if torch.rand(()).item() >= p:
        return image
    return cv2.GaussianBlur(image, (0, 0), _uniform(0.3, max_sigma))


def colour(image: np.ndarray, p: float = 0.5) -> np.ndarray:
    """With probability p, jitter brightness and contrast (+-10%), saturation (+-20%) and hue (+-5 degrees), as SBI does."""
    if float(torch.rand(())) >= p:
        return image
    out = image.astype(np.float32)
    gain, bias = _uniform(0.9, 1.1), _uniform(-0.1, 0.1) * 255.0
    out = (out - 128.0) * gain + 128.0 + bias
    hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + _uniform(-2.5, 2.5)) % 180.0  # OpenCV hue is 0..180
    hsv[..., 1] = np.clip(hsv[..., 1] * _uniform(0.8, 1.2), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


AUGMENTATIONS: dict[str, Augmentation] = {
    "hflip": horizontal_flip,
    # partial, not lambda: DataLoader workers started with spawn must pickle it.
    "rotate10": partial(rotate, max_degrees=10.0),
    "zoom": zoom,
    "jpeg": jpeg,
    "downscale": downscale,
    "compress": compress,
    "jpeg20": partial(jpeg, min_quality=20, max_quality=95, p=0.5),
    "h264": h264,
    "blur": blur,
    "colour": colour,
}


class Compose:
    """Apply the named augmentations in order."""

    def __init__(self, names: Sequence[str]):
        unknown = [n for n in names if n not in AUGMENTATIONS]
        if unknown:
            raise ConfigError(f"unknown augmentation(s) {', '.join(unknown)}; available: {', '.join(AUGMENTATIONS)}")
        self.names = list(names)
        self._steps = [AUGMENTATIONS[n] for n in names]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        for step in self._steps:
            image = step(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({self.names})"
