"""Gaussian noise residuals ("distinguishment") and handcrafted residual statistics.

Seed study (papers/dfdc-meso-3dcnn-gru.txt): residual = face - GaussianBlur(face)
on the grey 100x100 face, where grey is the average of R, G and B. Generated
faces are smoother than camera faces, so their residuals are weaker.

- `gaussian_residual(face)`  -> (100, 100) float32 signed residual
- `video_noise(faces)`       -> NoiseVolume: (N, 100, 100) volume, (N,) mean-|residual| sequence
- `residual_statistics(face)`-> fixed-length vector named by FEATURE_NAMES (LightGBM baseline)
- `compute_noise_features(cache)` -> noise_volumes.npz + noise_stats.csv next to the manifest
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from ddtool.errors import ConfigError, InputError
from ddtool.io import atomic_path

from ddtool.features import DEFAULT_FRAMES, DEFAULT_SIGMA, RESIDUAL_SIZE  # noqa: E402,F401

VOLUMES_FILE = "noise_volumes.npz"
STATS_FILE = "noise_stats.csv"

STAT_SIGMAS = (0.5, 1.0, 2.0)
FFT_RINGS = 8
CHANNEL_SIGMA = 1.0


def kernel_size_for(sigma: float) -> int:
    """Odd kernel covering +-3 sigma, where 99.7% of the Gaussian's mass lies."""
    return 2 * math.ceil(3 * sigma) + 1


def _check_blur(sigma: float, ksize: int | None) -> int:
    if not sigma > 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    ksize = kernel_size_for(sigma) if ksize is None else ksize
    if ksize < 1 or ksize % 2 == 0:
        raise ConfigError(f"kernel size must be a positive odd number, got {ksize}")
    return ksize


def _check_face(face: np.ndarray) -> None:
    if not isinstance(face, np.ndarray) or face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
        shape = getattr(face, "shape", None)
        raise InputError(f"expected an RGB uint8 face image (H, W, 3), got {shape}")


def grey(face: np.ndarray) -> np.ndarray:
    """Plain channel average, as the paper does (not luma weights), float32."""
    return face.astype(np.float32).mean(axis=2)


def gaussian_residual(face: np.ndarray, sigma: float = DEFAULT_SIGMA, ksize: int | None = None,
                      size: int = RESIDUAL_SIZE) -> np.ndarray:
    """Signed residual grey(face) - GaussianBlur(grey(face)) on the face resized to size x size."""
    _check_face(face)
    ksize = _check_blur(sigma, ksize)
    # The paper interpolates faces to 100x100 first, then takes the residual.
    resized = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    g = grey(resized)
    return g - cv2.GaussianBlur(g, (ksize, ksize), sigma)


@dataclass
class NoiseVolume:
    volume: np.ndarray  # (N, size, size) float32 residuals
    sequence: np.ndarray  # (N,) float32 mean |residual| per face
    n_faces: int  # faces actually used before padding


def pick_faces(count: int, frames: int) -> list[int]:
    """Indices into `count` faces giving exactly `frames` entries.

    More faces than needed: evenly spaced over all of them (the whole clip is
    covered, not just its start). Fewer: all of them, then the last one
    repeated; zero padding would look like a perfectly smooth, i.e. "fake",
    face to the models.
    """
    if count < 1:
        raise InputError("no faces to build a noise volume from")
    if count >= frames:
        return np.linspace(0, count - 1, frames).round().astype(int).tolist()
    return list(range(count)) + [count - 1] * (frames - count)


def video_noise(faces: list[np.ndarray], frames: int = DEFAULT_FRAMES, sigma: float = DEFAULT_SIGMA,
                ksize: int | None = None, size: int = RESIDUAL_SIZE) -> NoiseVolume:
    """Residual volume and mean-|residual| sequence of one video's faces (in frame order)."""
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")
    chosen = pick_faces(len(faces), frames)
    residuals = {i: gaussian_residual(faces[i], sigma, ksize, size) for i in sorted(set(chosen))}
    volume = np.stack([residuals[i] for i in chosen]).astype(np.float32)
    # The signed mean of a blur residual is ~0 by construction (blurring keeps
    # the mean), so the per-face "distinguishment" value is the mean magnitude.
    sequence = np.abs(volume).mean(axis=(1, 2)).astype(np.float32)
    return NoiseVolume(volume, sequence, min(len(faces), frames))


# ------------------------------------------------------------ handcrafted statistics


def _moments(x: np.ndarray) -> list[float]:
    """mean, std, skew, kurtosis (excess), abs-mean, energy; 0 where undefined."""
    x = x.astype(np.float64).ravel()
    mean = x.mean()
    centred = x - mean
    var = (centred**2).mean()
    std = math.sqrt(var)
    if std > 1e-12:
        skew = (centred**3).mean() / std**3
        kurt = (centred**4).mean() / var**2 - 3.0
    else:
        skew = kurt = 0.0
    return [mean, std, skew, kurt, np.abs(x).mean(), (x**2).mean()]


_MOMENT_NAMES = ("mean", "std", "skew", "kurtosis", "absmean", "energy")


def _ring_masks(h: int, w: int, rings: int) -> list[np.ndarray]:
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fx**2 + fy**2) / 0.5  # 1.0 = Nyquist along an axis
    edges = np.linspace(0, 1, rings + 1)
    masks = [(radius > lo) & (radius <= hi) for lo, hi in zip(edges[:-1], edges[1:])]
    masks[-1] |= radius > 1  # the diagonal corners beyond axis Nyquist belong to the top band
    return masks


def _build_feature_names() -> tuple[str, ...]:
    names = [f"res_s{s:g}_{m}" for s in STAT_SIGMAS for m in _MOMENT_NAMES]
    names += [f"res_{c}_{m}" for c in "rgb" for m in ("std", "absmean")]
    names += ["res_corr_rg", "res_corr_rb", "res_corr_gb"]
    names += [f"fft_ring{k}_logpower" for k in range(FFT_RINGS)]
    names += ["fft_high_low_ratio"]
    return tuple(names)


FEATURE_NAMES: tuple[str, ...] = _build_feature_names()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    denom = math.sqrt(float((a**2).sum() * (b**2).sum()))
    return float((a * b).sum() / denom) if denom > 1e-12 else 0.0


def residual_statistics(face: np.ndarray) -> np.ndarray:
    """FEATURE_NAMES-ordered float64 vector of residual statistics of one face crop.

    Computed at the crop's own resolution: resizing would wash out the
    pixel-level noise being measured, and the cache's crops share one size.
    - residual moments of the grey face at blur sigmas STAT_SIGMAS
    - per colour channel residual std/abs-mean, and the residuals'
      cross-channel correlation (camera demosaicing couples the channels,
      generators need not)
    - log mean power of the grey face's spectrum in FFT_RINGS radial bands
      (Hann-windowed so the crop border adds no false high frequencies), and
      the top-half / bottom-half band power ratio
    """
    _check_face(face)
    g = grey(face)
    values: list[float] = []
    for sigma in STAT_SIGMAS:
        k = kernel_size_for(sigma)
        values += _moments(g - cv2.GaussianBlur(g, (k, k), sigma))
    k = kernel_size_for(CHANNEL_SIGMA)
    channels = face.astype(np.float32)
    res = [channels[..., c] - cv2.GaussianBlur(channels[..., c], (k, k), CHANNEL_SIGMA) for c in range(3)]
    for r in res:
        values += [float(r.std()), float(np.abs(r).mean())]
    values += [_corr(res[0], res[1]), _corr(res[0], res[2]), _corr(res[1], res[2])]
    h, w = g.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2((g - g.mean()) * window)) ** 2
    band_power = [float(power[m].mean()) if m.any() else 0.0 for m in _ring_masks(h, w, FFT_RINGS)]
    values += [math.log10(p + 1e-6) for p in band_power]
    half = FFT_RINGS // 2
    values.append(sum(band_power[half:]) / (sum(band_power[:half]) + 1e-6))
    vector = np.asarray(values, dtype=np.float64)
    assert vector.shape == (len(FEATURE_NAMES),)
    return vector


# ----------------------------------------------------------------- cache -> files


@dataclass
class NoiseFeatureSummary:
    volumes_path: Path
    stats_path: Path
    n_videos: int
    n_crops: int
    unreadable: list[str]  # crop paths that could not be read (skipped)


def read_crop(path: Path) -> np.ndarray | None:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _main_track(rows: pd.DataFrame) -> pd.DataFrame:
    """The track with the most crops: the seed study keeps one face per video."""
    counts = rows.groupby("track_id").size()
    best = counts[counts == counts.max()].index.min()  # ties -> lowest track id, deterministic
    return rows[rows["track_id"] == best].sort_values("frame_index")


def compute_noise_features(cache: str | Path, sigma: float = DEFAULT_SIGMA, ksize: int | None = None,
                           frames: int = DEFAULT_FRAMES, size: int = RESIDUAL_SIZE,
                           on_progress: Callable[[int, int], None] | None = None) -> NoiseFeatureSummary:
    """Write noise_volumes.npz and noise_stats.csv for every video/crop of a face cache."""
    cache = Path(cache)
    manifest_path = cache / "manifest.csv"
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path} not found; run `ddtool extract` to build the face cache first")
    _check_blur(sigma, ksize)
    if frames < 1:
        raise ConfigError(f"frames must be >= 1, got {frames}")
    manifest = pd.read_csv(manifest_path, dtype={"video_id": str, "split": str, "crop_path": str}, keep_default_na=False)
    if manifest.empty:
        raise InputError(f"{manifest_path} lists no face crops; nothing to compute")
    stat_rows: list[list] = []
    ids, volumes, sequences, labels, domains, splits, n_faces = [], [], [], [], [], [], []
    unreadable: list[str] = []
    groups = list(manifest.groupby("video_id", sort=True))
    for done, (video_id, rows) in enumerate(groups, start=1):
        faces_by_crop: dict[str, np.ndarray] = {}
        for row in rows.itertuples(index=False):
            face = read_crop(cache / row.crop_path)
            if face is None:
                unreadable.append(row.crop_path)
                continue
            faces_by_crop[row.crop_path] = face
            stat_rows.append([row.video_id, row.crop_path, int(row.label), int(row.domain), row.split,
                              *residual_statistics(face)])
        track = _main_track(rows[rows["crop_path"].isin(faces_by_crop)]) if faces_by_crop else rows.iloc[:0]
        if len(track):
            noise = video_noise([faces_by_crop[p] for p in track["crop_path"]], frames, sigma, ksize, size)
            first = track.iloc[0]
            ids.append(video_id)
            volumes.append(noise.volume)
            sequences.append(noise.sequence)
            labels.append(int(first["label"]))
            domains.append(int(first["domain"]))
            splits.append(str(first["split"]))
            n_faces.append(noise.n_faces)
        if on_progress:
            on_progress(done, len(groups))
    if not ids:
        raise InputError(f"none of the crops listed in {manifest_path} could be read; re-run `ddtool extract`")
    volumes_path = cache / VOLUMES_FILE
    with atomic_path(volumes_path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            video_id=np.asarray(ids, dtype=str),
            volume=np.stack(volumes),
            sequence=np.stack(sequences),
            label=np.asarray(labels, dtype=np.int64),
            domain=np.asarray(domains, dtype=np.int64),
            split=np.asarray(splits, dtype=str),
            n_faces=np.asarray(n_faces, dtype=np.int64),
            sigma=np.float32(sigma),
            ksize=np.int64(_check_blur(sigma, ksize)),
        )
    stats_path = cache / STATS_FILE
    stats = pd.DataFrame(stat_rows, columns=["video_id", "crop_path", "label", "domain", "split", *FEATURE_NAMES])
    with atomic_path(stats_path) as tmp:
        stats.to_csv(tmp, index=False, float_format="%.8g")
    return NoiseFeatureSummary(volumes_path, stats_path, len(ids), len(stat_rows), unreadable)
