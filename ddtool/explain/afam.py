"""Average Forgery Attention Maps (Wang & Deng, "Representative Forgery Mining", CVPR 2021).

As SFIConv (Fig. 5) and LDFnet (Fig. 8) use them to compare detectors:
  target = logit_fake - logit_real, model in eval mode
  FAM    = |d target / d input|, max over the RGB channels
  smooth = bilinear down to H/2 and back up to H
  FAM    min-max normalised per image
  AFAM   = mean of the FAMs of N fake faces, min-max normalised again,
           shown as a JET overlay on the mean of those N faces.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.errors import ConfigError, InputError
from ddtool.explain.gradcam import normalise_per_image, overlay_heatmap
from ddtool.io import write_bytes_atomic
from ddtool.media.images import write_png
from ddtool.media.suffixes import IMAGE_SUFFIXES
from ddtool.media.video import read_image

LABELS = {"fake": 1, "real": 0}


def forgery_attention_maps(model: nn.Module, x: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Per-image FAMs (N, H, W) in [0, 1] for normalised inputs x (N, 3, H, W)."""
    was_training = model.training
    model.eval()
    maps = []
    try:
        for start in range(0, x.shape[0], batch):
            chunk = x[start : start + batch].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                logits = model(chunk)
                # Eval mode makes samples independent, so one backward of the sum
                # yields every image's own input gradient.
                target = (logits[:, 1] - logits[:, 0]).sum()
                (grad,) = torch.autograd.grad(target, chunk)
            fam = grad.abs().amax(dim=1, keepdim=True)
            h, w = fam.shape[-2:]
            fam = F.interpolate(fam, size=(max(1, h // 2), max(1, w // 2)), mode="bilinear", align_corners=False)
            fam = F.interpolate(fam, size=(h, w), mode="bilinear", align_corners=False)[:, 0]
            maps.append(normalise_per_image(fam).detach())
    finally:
        model.train(was_training)
    return torch.cat(maps)


def average_forgery_attention_map(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """AFAM (H, W) float32 in [0, 1] over the images in x."""
    if x.shape[0] == 0:
        raise InputError("AFAM needs at least one face image")
    mean_map = forgery_attention_maps(model, x).mean(dim=0, keepdim=True)
    return normalise_per_image(mean_map)[0].cpu().numpy().astype(np.float32)


@dataclass
class AfamResult:
    """One AFAM: which model, how many faces, the map and its overlay on the mean face."""

    label: str
    n: int
    heatmap: np.ndarray  # (H, W) float32 in [0, 1]
    mean_face: np.ndarray  # RGB uint8
    overlay: np.ndarray  # RGB uint8


def afam_for_detector(detector, faces: Sequence[np.ndarray], n: int, label: str | None = None) -> AfamResult:
    """AFAM of `detector` over the first `n` faces (RGB uint8 crops)."""
    if n < 1:
        raise ConfigError(f"--afam {n}: the number of faces must be at least 1")
    if len(faces) < n:
        raise InputError(f"AFAM over {n} faces needs {n} face images, only {len(faces)} found; pass more data or a smaller --afam")
    chosen = list(faces[:n])
    x = detector.prepare(chosen)
    heatmap = average_forgery_attention_map(detector.network(), x)
    h, w = heatmap.shape
    resized = [cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA) for face in chosen]
    mean_face = np.uint8(np.round(np.mean(np.stack(resized).astype(np.float32), axis=0)))
    return AfamResult(label or detector.name, n, heatmap, mean_face, overlay_heatmap(mean_face, heatmap))


def load_faces(data: str | Path, label: str = "fake", limit: int | None = None, seed: int = 7) -> list[np.ndarray]:
    """Face crops (RGB uint8) from a face cache (manifest.csv) or a folder of face images.

    From a cache, only rows with the asked label are used, and the order
    interleaves videos (one face per video before a second from any) after a
    seeded shuffle, so N faces come from N different videos as in the papers.
    A folder's images are taken as faces of that label, sorted by path, shuffled with the seed.
    The first k of the returned list are the same for any larger limit, so
    the AFAM over 8 faces extends the one over 4.
    """
    data = Path(data)
    if label not in LABELS:
        raise ConfigError(f"--label {label!r}: choose fake or real")
    if not data.exists():
        raise InputError(f"{data} does not exist; pass a face cache folder (with manifest.csv) or a folder of face images")
    rng = np.random.default_rng(seed)
    if (data / "manifest.csv").is_file():
        paths = _cache_paths(data, LABELS[label], rng)
    elif data.is_dir():
        paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        paths = [paths[i] for i in rng.permutation(len(paths))]
    else:
        raise InputError(f"{data} is not a folder; pass a face cache folder (with manifest.csv) or a folder of face images")
    faces = []
    for path in paths:
        if limit is not None and len(faces) >= limit:
            break
        try:
            faces.append(read_image(path))
        except InputError as exc:
            raise InputError(f"{exc} (remove it or rebuild the face cache)") from None
    if not faces:
        raise InputError(f"no {label} face images found in {data}")
    return faces


def _cache_paths(cache: Path, label: int, rng: np.random.Generator) -> list[Path]:
    with open(cache / "manifest.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"crop_path", "label", "video_id"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{cache / 'manifest.csv'} lacks column(s) {', '.join(sorted(missing))}; rebuild the cache with `ddtool extract`")
        rows = [row for row in reader if row["label"].strip() and int(float(row["label"])) == label]
    by_video: dict[str, list[Path]] = {}
    for row in rows:
        by_video.setdefault(row["video_id"], []).append(cache / row["crop_path"])
    videos = sorted(by_video)
    videos = [videos[i] for i in rng.permutation(len(videos))]
    for video in videos:
        crops = by_video[video]
        by_video[video] = [crops[i] for i in rng.permutation(len(crops))]
    ordered: list[Path] = []
    depth = 0
    while len(ordered) < len(rows):
        ordered.extend(by_video[v][depth] for v in videos if depth < len(by_video[v]))
        depth += 1
    return ordered


def save_afam(result: AfamResult, out_dir: Path, stem: str) -> list[Path]:
    """heatmap PNG (JET, no face) and the overlay on the mean face; returns the paths."""
    heat_bgr = cv2.applyColorMap(np.uint8(np.round(result.heatmap * 255)), cv2.COLORMAP_JET)
    heat_path = out_dir / f"{stem}_heatmap.png"
    overlay_path = out_dir / f"{stem}_overlay.png"
    write_png(heat_path, heat_bgr, bgr=True)
    write_png(overlay_path, result.overlay)
    return [heat_path, overlay_path]


def save_grid(results: list[list[AfamResult]], path: Path) -> Path:
    """Rows = models, columns = N values (overlays), like SFIConv Fig. 5 / LDFnet Fig. 8 transposed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(results), len(results[0])
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.5 * rows), squeeze=False)
    for r, row in enumerate(results):
        for c, result in enumerate(row):
            ax = axes[r][c]
            ax.imshow(result.overlay)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"N = {result.n}", fontsize=10)
            if c == 0:
                ax.set_ylabel(result.label, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def run_afam(detectors: list, data: str | Path, counts: Sequence[int], out_dir: str | Path, label: str = "fake", seed: int = 7) -> dict:
    """Every (detector, N) AFAM saved under out_dir, plus a grid when more than one; returns what was written."""
    counts = sorted(set(counts))
    if not counts:
        raise ConfigError("give at least one --afam N")
    if counts[0] < 1:
        raise ConfigError(f"--afam {counts[0]}: the number of faces to average must be at least 1 (the papers use 4, 8 and 16)")
    faces = load_faces(data, label=label, limit=max(counts), seed=seed)
    out_dir = Path(out_dir)
    written: list[str] = []
    grid: list[list[AfamResult]] = []
    labels = _unique_labels(detectors)
    for detector, model_label in zip(detectors, labels):
        row = []
        for n in counts:
            result = afam_for_detector(detector, faces, n, label=model_label)
            written += [str(p) for p in save_afam(result, out_dir, f"afam_{_safe(model_label)}_n{n}")]
            row.append(result)
        grid.append(row)
    if len(detectors) * len(counts) > 1:
        written.append(str(save_grid(grid, out_dir / "afam_grid.png")))
    return {"faces_available": len(faces), "counts": counts, "models": labels, "files": written}


def _unique_labels(detectors: list) -> list[str]:
    labels = []
    for detector in detectors:
        label = detector.name
        if detector.weights_path:
            label = f"{detector.name} ({Path(detector.weights_path).name.split('.')[0]})"
        elif detector.untrained:
            label = f"{detector.name} (untrained)"
        labels.append(label)
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if labels.count(label) == 1 else f"{label} #{seen[label]}")
    return unique


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text).strip("_")
