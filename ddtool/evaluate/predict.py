"""Fake scores for the face crops of a cache: batched, no gradients, the model's own preprocessing.

Image detectors score every crop listed in manifest.csv. The seed study's
models read what `ddtool features noise` wrote beside it: LightGBM scores
each crop's row of noise_stats.csv, the 3D-CNN and GRU score each video's
residual volume / sequence in noise_volumes.npz.

Image detectors see exactly what training fed them: the one preprocessing
path of data.preprocess (size, mean/std, interpolation from the card, else
the spec). The score is softmax(logits)[:, 1], the fake probability.

A crop that cannot be read stops the run with an InputError naming it: a
silent substitute image would score the wrong face under the right label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from ddtool.data.preprocess import resolve_preprocess
from ddtool.data.dataset import FaceCropDataset, file_sha256, manifest_path, noise_inputs_file, read_manifest
from ddtool.errors import ConfigError, InputError

ProgressCallback = Callable[[int, int], None]


def manifest_sha256(cache: str | Path) -> str:
    """Fingerprint of the cache's manifest: cached predictions are reused only while it is unchanged."""
    path = manifest_path(cache)
    if not path.is_file():
        raise InputError(f"{path} not found: {cache} is not a face cache (create one with `ddtool extract`)")
    return file_sha256(path)


def select_split(table: pd.DataFrame, split: str, where: str) -> tuple[pd.DataFrame, str]:
    """Rows of `table` in `split`, and a note on how they were chosen.

    `split="all"` takes every row. A table whose `split` column is empty
    everywhere (a test-only cross-dataset cache such as Celeb-DF) is used
    whole for any split, and the note says so.
    """
    splits = table["split"].astype(str).str.strip().str.lower()
    if split == "all":
        return table.reset_index(drop=True), "all rows"
    split = split.strip().lower()
    if (splits == "").all():
        return table.reset_index(drop=True), f"cache has no splits: all {len(table)} rows used as '{split}'"
    chosen = table[splits == split]
    if chosen.empty:
        present = ", ".join(sorted(set(splits) - {""})) or "none"
        raise InputError(f"{where} has no rows in split {split!r} (splits present: {present}); pass --split with one of them or 'all'")
    return chosen.reset_index(drop=True), f"split '{split}'"


def load_split(cache: str | Path, split: str = "test") -> tuple[pd.DataFrame, str]:
    """Manifest rows of the cache for `split` (see `select_split`), track ids filled in."""
    manifest = read_manifest(cache)
    # Faces without a track id (single-face caches) form one track per video.
    track = manifest["track_id"] if "track_id" in manifest.columns else pd.Series(0, index=manifest.index)
    manifest["track_id"] = pd.to_numeric(track, errors="coerce").fillna(-1).astype(int)
    return select_split(manifest, split, str(manifest_path(cache)))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for but CUDA is not available here; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda") from None


def image_input_size(spec: Any, card: dict[str, Any]) -> tuple[int, int]:
    """(height, width) the model was trained at (data.preprocess.resolve_preprocess)."""
    return resolve_preprocess(spec, card).size


def check_cache_crop(cache: str | Path, card: dict[str, Any]) -> None:
    """A model trained on one crop style cannot be judged on crops cut in another: refuse before scoring."""
    import json

    config = Path(cache) / "extract_config.json"
    try:
        cut = json.loads(config.read_text(encoding="utf-8")).get("crop", "box") if config.is_file() else "box"
    except (OSError, ValueError):
        cut = "box"
    wanted = ((card.get("input") or {}) if isinstance(card.get("input"), dict) else {}).get("crop") or "box"
    if cut != wanted:
        raise ConfigError(
            f"face cache {cache} holds {cut!r} crops but model {card.get('model')!r} was trained on {wanted!r} crops (its card's input.crop); "
            "scoring it there measures the wrong input: evaluate it with `ddtool scan` on the media, or on a cache cut its way"
        )


def predict_images(
    model: torch.nn.Module,
    spec: Any,
    card: dict[str, Any],
    cache: str | Path,
    crop_paths: list[str],
    batch_size: int = 64,
    device: str = "auto",
    workers: int = 0,
    on_batch: ProgressCallback | None = None,
) -> np.ndarray:
    """Fake probability for every crop path, in order."""
    if batch_size < 1:
        raise ConfigError(f"--batch must be at least 1 (got {batch_size})")
    check_cache_crop(cache, card)
    target = resolve_device(device)
    rows = pd.DataFrame({"crop_path": list(crop_paths), "label": 0, "domain": 0})
    pre = resolve_preprocess(spec, card)
    dataset = FaceCropDataset(cache, rows, pre.size, pre.mean, pre.std, preprocess=pre)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    model = model.to(target).eval()
    scores = np.empty(len(dataset), dtype=np.float64)
    done = 0
    with torch.inference_mode():
        for batch, *_ in loader:
            logits = model(batch.to(target))
            if logits.ndim != 2 or logits.shape[1] != 2:
                raise ConfigError(f"model {card.get('model')!r} returned logits of shape {tuple(logits.shape)}; detectors must return (N, 2)")
            probs = torch.softmax(logits.float(), dim=1)[:, 1]
            scores[done : done + len(probs)] = probs.cpu().numpy()
            done += len(probs)
            if on_batch is not None:
                on_batch(done, len(dataset))
    return scores


def predict_features(model: Any, cache: str | Path, split: str) -> tuple[pd.DataFrame, str]:
    """Per-crop scores of a features model (LightGBM) from the cache's noise_stats.csv."""
    from ddtool.data.dataset import load_feature_table

    rows, features, _ = load_feature_table(cache)
    rows["row"] = np.arange(len(rows))
    chosen, note = select_split(rows, split, str(noise_inputs_file(cache, "features")))
    probabilities = np.asarray(model.predict_proba(features[chosen["row"].to_numpy()]))
    chosen["score"] = probabilities[:, 1] if probabilities.ndim == 2 else probabilities
    manifest = load_split(cache, "all")[0].set_index("crop_path")
    for column in ("track_id", "frame_index", "timestamp"):
        if column in manifest.columns:
            chosen[column] = chosen["crop_path"].map(manifest[column])
    return chosen.drop(columns=["row", "split"]), note


def predict_arrays(
    model: torch.nn.Module, spec: Any, cache: str | Path, split: str, batch_size: int = 64, device: str = "auto",
    on_batch: ProgressCallback | None = None,
) -> tuple[pd.DataFrame, str]:
    """Per-video scores of a temporal model (residual volumes or sequences from noise_volumes.npz).

    These models see a whole video at once, so each prediction row is a video
    (crop_path empty) and frame-level metrics equal video-level ones.
    """
    from ddtool.data.dataset import load_video_arrays

    videos, inputs = load_video_arrays(cache, spec.input_kind)
    videos["row"] = np.arange(len(videos))
    chosen, note = select_split(videos, split, str(noise_inputs_file(cache, spec.input_kind)))
    selected = torch.from_numpy(np.ascontiguousarray(inputs[chosen["row"].to_numpy()], dtype=np.float32))
    target = resolve_device(device)
    model = model.to(target).eval()
    scores = np.empty(len(selected), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(selected), batch_size):
            logits = model(selected[start : start + batch_size].to(target))
            scores[start : start + len(logits)] = torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy()
            if on_batch is not None:
                on_batch(start + len(logits), len(selected))
    chosen["score"] = scores
    chosen["crop_path"] = ""
    chosen["track_id"] = 0
    return chosen.drop(columns=["row", "split"]), note
