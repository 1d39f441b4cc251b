"""Programmatic face forgeries for training and the offline benchmark.

Each method is a function `(image, landmarks, rng, strength, **extra) ->
Forgery(image, mask)` on an RGB uint8 image with its (68, 2) dlib landmarks;
`strength` in [0, 1] scales how visible the manipulation is. Every method is
its own domain (like FF++'s four methods), numbered in `METHODS` order from 1.

1. self_blend      Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): the
                   face blended with a colour/scale/shift-jittered copy of
                   itself through a blurred landmark hull mask.
2. face_swap       another identity's face warped onto the landmarks (affine
                   fit on the 68 points), colour-transferred in LAB, blended
                   with a feathered mask or Poisson (seamless) cloning.
3. resample        the face region down-sampled and brought back with a
                   zero-insertion (transposed-convolution-like) or nearest
                   up-sampler: periodic spectral peaks as GAN decoders leave.
4. smooth          the face region denoised/blurred (the seed study saw that
                   fakes are blurrier than real faces).
5. double_jpeg     the face region JPEG-compressed on a shifted 8x8 grid,
                   pasted back, the whole image compressed again.
6. gan_face        a whole synthetic face from the 64x64 DCGAN generator whose
                   weights ship in PyPI `gan-face-generate` 1.1.1 (trained on
                   DigiFace-1M renders), up-sampled to the image size: HFF's
                   generated-face domain. The real image only gives the size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ddtool.errors import CheckpointError, ConfigError
from ddtool.media.landmarks import hull_mask


@dataclass
class Forgery:
    image: np.ndarray  # RGB uint8, same size as the input
    mask: np.ndarray  # float32 in [0, 1]: where the image was changed


def _check(image: np.ndarray, landmarks: np.ndarray, strength: float) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ConfigError("forgery input must be an RGB uint8 image (H, W, 3)")
    if landmarks.shape != (68, 2):
        raise ConfigError(f"forgery needs 68 landmarks, got shape {landmarks.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be in [0, 1], got {strength}")


def _odd(n: float) -> int:
    n = max(1, int(round(n)))
    return n if n % 2 else n + 1


def blend_mask(
    shape_hw: tuple[int, int], landmarks: np.ndarray, rng: np.random.Generator, deform: float = 0.0, blur: float = 0.1
) -> np.ndarray:
    """Face hull mask, optionally deformed (random dilate/erode) and blurred.

    `blur` is the Gaussian kernel size as a fraction of the face width.
    """
    mask = hull_mask(shape_hw, landmarks, forehead=0.1)
    face_w = float(np.ptp(landmarks[:, 0])) or 1.0
    if deform > 0:
        k = _odd(deform * face_w * rng.uniform(0.02, 0.08))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
        mask = cv2.erode(mask, kernel) if rng.random() < 0.5 else cv2.dilate(mask, kernel)
    if blur > 0:
        k = _odd(blur * face_w)
        mask = cv2.GaussianBlur(mask, (k, k), 0)
        # Keep the blurred edge but restore full weight inside the face.
        mask = np.clip(mask / max(mask.max(), 1e-6), 0.0, 1.0)
    return mask.astype(np.float32)


def _composite(fake: np.ndarray, real: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None]
    out = fake.astype(np.float32) * m + real.astype(np.float32) * (1.0 - m)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> Forgery:
    """SBI: source = jittered copy of the target, blended through a blurred hull."""
    _check(image, landmarks, strength)
    h, w = image.shape[:2]
    source = image.astype(np.float32)
    # Colour jitter: per-channel shift and a contrast/brightness change.
    shift = rng.uniform(-1, 1, 3) * 20 * strength
    gain = 1.0 + rng.uniform(-1, 1) * 0.15 * strength
    source = np.clip((source - 128.0) * gain + 128.0 + shift, 0, 255)
    # Frequency jitter: either blur or sharpen the source.
    if rng.random() < 0.5:
        source = cv2.GaussianBlur(source, (0, 0), 0.5 + 1.5 * strength)
    else:
        blurred = cv2.GaussianBlur(source, (0, 0), 1.0)
        source = np.clip(source + (source - blurred) * strength, 0, 255)
    # Spatial jitter: scale and translate the source slightly.
    face_w = float(np.ptp(landmarks[:, 0])) or 1.0
    scale = 1.0 + rng.uniform(-0.05, 0.05) * (0.5 + strength)
    tx, ty = rng.uniform(-0.03, 0.03, 2) * face_w * (0.5 + strength)
    cx, cy = landmarks.mean(axis=0)
    matrix = np.array([[scale, 0, (1 - scale) * cx + tx], [0, scale, (1 - scale) * cy + ty]], np.float32)
    source = cv2.warpAffine(source, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    mask = blend_mask((h, w), landmarks, rng, deform=1.0, blur=rng.uniform(0.05, 0.25))
    ratio = rng.choice([0.5, 0.75, 1.0, 1.0]) if strength < 1 else 1.0
    mask = mask * ratio
    return Forgery(_composite(source, image, mask), mask)


def _lab_color_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer: match LAB mean/std of source to target inside the mask."""
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    inside = mask > 0.5
    if inside.sum() < 10:
        return source
    s_mean, s_std = src[inside].mean(0), src[inside].std(0) + 1e-6
    t_mean, t_std = tgt[inside].mean(0), tgt[inside].std(0) + 1e-6
    out = (src - s_mean) / s_std * t_std + t_mean
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def face_swap(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    strength: float = 0.5,
    *,
    donor: np.ndarray,
    donor_landmarks: np.ndarray,
    seamless: bool | None = None,
) -> Forgery:
    """Put the donor's inner face onto `image`'s face geometry."""
    _check(image, landmarks, strength)
    _check(donor, donor_landmarks, strength)
    h, w = image.shape[:2]
    matrix, _ = cv2.estimateAffine2D(donor_landmarks, landmarks, method=cv2.LMEDS)
    if matrix is None:
        raise ConfigError("face_swap: could not fit the donor landmarks to the target")
    warped = cv2.warpAffine(donor, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
    inner = blend_mask((h, w), landmarks, rng, deform=0.5, blur=0.0)
    warped = _lab_color_transfer(warped, image, inner)
    if seamless is None:
        seamless = rng.random() < 0.5
    if seamless:
        hull = (inner > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(hull)
        centre = (int((xs.min() + xs.max()) / 2), int((ys.min() + ys.max()) / 2))
        out = cv2.seamlessClone(warped, image, hull, centre, cv2.NORMAL_CLONE)
        return Forgery(out, inner)
    mask = blend_mask((h, w), landmarks, rng, deform=0.5, blur=0.05 + 0.15 * (1 - strength))
    return Forgery(_composite(warped, image, mask), mask)


def resample(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> Forgery:
    """Down-sample the face and up-sample it through a zero-insertion filter."""
    _check(image, landmarks, strength)
    h, w = image.shape[:2]
    factor = 2 if strength < 0.9 else 4
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        # Zero insertion + a small separable kernel, like a stride-`factor`
        # transposed convolution: leaves a periodic checkerboard.
        up = np.zeros((small.shape[0] * factor, small.shape[1] * factor, 3), np.float32)
        up[::factor, ::factor] = small
        kernel = np.array([1, 2, 3, 2, 1][: 2 * factor - 1] if factor == 2 else [1, 2, 3, 4, 3, 2, 1], np.float32)
        kernel = kernel / kernel.sum() * factor
        up = cv2.sepFilter2D(up, -1, kernel, kernel)
    else:
        up = cv2.resize(small, (small.shape[1] * factor, small.shape[0] * factor), interpolation=cv2.INTER_NEAREST)
        up = up.astype(np.float32)
    up = cv2.copyMakeBorder(up, 0, max(0, h - up.shape[0]), 0, max(0, w - up.shape[1]), cv2.BORDER_REPLICATE)[:h, :w]
    mask = blend_mask((h, w), landmarks, rng, deform=0.5, blur=0.1) * (0.6 + 0.4 * strength)
    return Forgery(_composite(up, image, mask), mask)


def smooth(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> Forgery:
    """Blur or edge-preserving-denoise the face region."""
    _check(image, landmarks, strength)
    h, w = image.shape[:2]
    face_w = float(np.ptp(landmarks[:, 0])) or 1.0
    if rng.random() < 0.5:
        sigma = (0.004 + 0.012 * strength) * face_w
        smoothed = cv2.GaussianBlur(image, (0, 0), max(0.5, sigma))
    else:
        smoothed = cv2.bilateralFilter(image, _odd(0.03 * face_w + 3), 20 + 60 * strength, 3 + 7 * strength)
    mask = blend_mask((h, w), landmarks, rng, deform=0.5, blur=0.1)
    return Forgery(_composite(smoothed, image, mask), mask)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ConfigError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def double_jpeg(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5) -> Forgery:
    """Face region compressed on a shifted JPEG grid, spliced back, whole image recompressed."""
    _check(image, landmarks, strength)
    h, w = image.shape[:2]
    dy, dx = (int(v) for v in rng.integers(1, 8, 2))
    q1 = int(round(90 - 50 * strength + rng.uniform(-5, 5)))
    q2 = int(round(rng.uniform(85, 95)))
    shifted = image[dy:, dx:]
    first = _jpeg(shifted, q1)
    spliced_src = image.copy()
    spliced_src[dy:, dx:] = first
    mask = blend_mask((h, w), landmarks, rng, deform=0.5, blur=0.0)
    spliced = _composite(spliced_src, image, mask)
    return Forgery(_jpeg(spliced, q2), mask)


GAN_WEIGHTS_ENV = "DDTOOL_GAN_FACE_WEIGHTS"
GAN_LATENT = 100


def _dcgan_generator():
    """The PyTorch DCGAN tutorial generator (nz=100, ngf=64, 64x64 RGB), written
    here so its weights load as a plain state dict: the module indices match
    gan_face_generate.models.Generator's `main` Sequential."""
    from torch import nn

    def up(c_in: int, c_out: int, stride: int, pad: int, last: bool = False) -> list:
        conv = nn.ConvTranspose2d(c_in, c_out, 4, stride, pad, bias=False)
        return [conv, nn.Tanh()] if last else [conv, nn.BatchNorm2d(c_out), nn.ReLU(True)]

    ngf = 64
    main = nn.Sequential(
        *up(GAN_LATENT, ngf * 8, 1, 0), *up(ngf * 8, ngf * 4, 2, 1), *up(ngf * 4, ngf * 2, 2, 1),
        *up(ngf * 2, ngf, 2, 1), *up(ngf, 3, 2, 1, last=True),
    )
    return nn.ModuleDict({"main": main})


def default_gan_weights() -> Path:
    """weights.tar from $DDTOOL_GAN_FACE_WEIGHTS, else from an installed gan_face_generate (found, not imported)."""
    env = os.environ.get(GAN_WEIGHTS_ENV)
    if env:
        return Path(env)
    import importlib.util

    spec = importlib.util.find_spec("gan_face_generate")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "weights.tar"
    raise ConfigError(
        "gan_face needs the DCGAN weights of PyPI gan-face-generate 1.1.1: run `ddtool offline fetch --out DIR` "
        f"and pass weights=DIR/media/pip-gan-face-generate/gan_face_generate/weights.tar (or set {GAN_WEIGHTS_ENV})"
    )


@lru_cache(maxsize=2)
def load_gan_generator(path: str):
    """The generator in eval mode. torch.load(weights_only=True): tensors only, never arbitrary pickled objects."""
    import torch

    if not Path(path).is_file():
        raise ConfigError(f"GAN weights not found: {path}; fetch them with `ddtool offline fetch`")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError/RuntimeError/zip errors for bad files
        raise CheckpointError(f"cannot load GAN weights {path} safely ({type(exc).__name__}); fetch gan-face-generate 1.1.1 again") from None
    state = checkpoint.get("netG_state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no 'netG_state_dict'; it is not gan-face-generate's weights.tar")
    generator = _dcgan_generator()
    try:
        generator["main"].load_state_dict({k.removeprefix("main."): v for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the 64x64 DCGAN generator: {str(exc).splitlines()[0]}") from None
    return generator.eval()


def gan_face(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5,
             *, weights: str | Path | None = None) -> Forgery:
    """A generated face in place of the whole image, up-sampled (bicubic) from 64x64.

    `strength` widens the latent draw (z ~ N(0, (0.5 + 0.5 * strength)^2)):
    low strength = the truncation trick, more average and cleaner faces;
    high = more varied faces with more visible generator artifacts.
    """
    _check(image, landmarks, strength)
    import torch

    generator = load_gan_generator(str(weights or default_gan_weights()))
    z = rng.standard_normal((1, GAN_LATENT, 1, 1)).astype(np.float32) * (0.5 + 0.5 * strength)
    with torch.no_grad():
        out = generator["main"](torch.from_numpy(z))[0]
    small = np.clip((out.permute(1, 2, 0).numpy() + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    fake = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return Forgery(fake, np.ones((h, w), np.float32))


METHODS: dict[str, Callable[..., Forgery]] = {
    "self_blend": self_blend,
    "face_swap": face_swap,
    "resample": resample,
    "smooth": smooth,
    "double_jpeg": double_jpeg,
    "gan_face": gan_face,
}


def method_domain(name: str) -> int:
    """Domain index of a method (0 is real)."""
    if name not in METHODS:
        raise ConfigError(f"unknown forgery method {name!r}; known: {', '.join(METHODS)}")
    return list(METHODS).index(name) + 1


def make_forgery(name: str, image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, strength: float = 0.5, **extra) -> Forgery:
    method_domain(name)  # validates the name
    return METHODS[name](image, landmarks, rng, strength, **extra)
