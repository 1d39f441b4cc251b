"""One checkpoint on one face cache: predictions, frame- and video-level metrics, cached on disk.

An evaluation folder holds
  predictions.csv        one row per crop: crop_path, video_id, label, domain,
                         method, track_id, score (+ frame_index, timestamp when known);
                         one row per video (empty crop_path) for the temporal models
  video_predictions.csv  one row per video: video_id, label, method, score, n_frames, n_tracks
  metrics.json           frame and video metrics, per-method AUCs, and the
                         fingerprints that make the predictions reusable

Predictions are reused when the weights' sha256, the manifest's sha256 (and
for the seed-study models that of the noise file they read) and the split all match what metrics.json recorded; the metrics are recomputed
from them every time (aggregation rule and threshold may differ between calls).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ddtool import __version__
from ddtool.device import resolve_device
from ddtool.errors import CheckpointError, ConfigError, InputError
from ddtool.evaluate.aggregate import aggregate_video, check_rule
from ddtool.evaluate.metrics import compute_metrics, with_uncertainty
from ddtool.data.dataset import noise_inputs_file
from ddtool.evaluate.predict import (
    ProgressCallback,
    load_split,
    manifest_sha256,
    predict_arrays,
    predict_features,
    predict_images,
)
from ddtool.io import atomic_path, write_json_atomic
from ddtool.models.checkpoint import card_path_for, load_checkpoint, read_card, sha256_file

PREDICTION_COLUMNS = ("crop_path", "video_id", "label", "domain", "method", "track_id", "frame_index", "timestamp", "score")
RUN_CHECKPOINT = "best"
GENERIC_FOLDER_NAMES = {"cache", "faces", "data", "crops", "dataset"}


@dataclass
class Evaluation:
    out_dir: Path
    predictions: pd.DataFrame
    videos: pd.DataFrame
    metrics: dict[str, Any]
    reused: bool


def resolve_checkpoint(run: str | Path | None = None, weights: str | Path | None = None) -> Path:
    """The card path of a run folder's best checkpoint, or of an explicit weights file."""
    if (run is None) == (weights is None):
        raise ConfigError("give exactly one of --run RUN_DIR or --weights FILE")
    if run is not None:
        run = Path(run)
        if not run.is_dir():
            raise CheckpointError(f"run folder not found: {run}")
        card = run / f"{RUN_CHECKPOINT}.json"
        if not card.is_file():
            raise CheckpointError(f"{run} has no {card.name}: is it a finished `ddtool train` run? (or pass --weights FILE)")
        return card
    from ddtool.models.checkpoint import missing_checkpoint_message
    from ddtool.weights import resolve_weights

    card = card_path_for(resolve_weights(weights))
    if not card.is_file():
        raise CheckpointError(missing_checkpoint_message(weights))
    return card


def run_folder_of(card_path: Path) -> Path | None:
    return card_path.parent if card_path.name == f"{RUN_CHECKPOINT}.json" else None


def training_data_label(card: dict[str, Any]) -> str:
    """Short name of what a checkpoint was trained on, for table rows."""
    data = card.get("training_data")
    if isinstance(data, dict):
        for key in ("name", "dataset", "cache", "data", "path"):
            if data.get(key):
                data = data[key]
                break
    if not data and isinstance(card.get("config"), dict):
        data = card["config"].get("data")
    if not data:
        return "unknown data"
    if isinstance(data, (list, tuple)):
        return "+".join(Path(str(d)).name for d in data)
    text = str(data)
    if "/" not in text and "\\" not in text:
        return text
    path = Path(text)
    # "cache" alone says nothing: keep the folder that names it (runs/x/cache -> x/cache)
    return f"{path.parent.name}/{path.name}" if path.name.lower() in GENERIC_FOLDER_NAMES and path.parent.name else path.name


CACHE_ENV = "DDTOOL_CACHE"


def user_cache_dir() -> Path:
    """Where evaluations of loose checkpoints go: $DDTOOL_CACHE, else $XDG_CACHE_HOME/ddtool, else ~/.cache/ddtool."""
    import os

    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "ddtool"


def default_out_dir(card_path: Path, cache: Path, split: str, manifest_hash: str, root: Path | None = None) -> Path:
    """RUN/eval/<cache>-<hash8>-<split> for a run's checkpoint; ROOT/<weights>-<sha8>-<cache>-<hash8>-<split> otherwise.

    A checkpoint outside a run folder (a shipped model, a copied file) never
    gets an eval folder beside it: ROOT is the caller's (report: OUT/eval),
    else the user cache folder.
    """
    name = f"{cache.resolve().name}-{manifest_hash[:8]}-{split}"
    run = run_folder_of(card_path)
    if run is not None:
        return run / "eval" / name
    try:
        weights_sha = str(json.loads(card_path.read_text(encoding="utf-8")).get("sha256") or "")[:8]
    except (OSError, ValueError, AttributeError):
        weights_sha = ""
    stem = f"{card_path.stem}-{weights_sha}" if weights_sha else card_path.stem
    return (root if root is not None else user_cache_dir() / "eval") / f"{stem}-{name}"


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None so metrics.json stays strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def summarize(predictions: pd.DataFrame, rule: str = "mean", threshold: float = 0.5) -> tuple[dict, dict, pd.DataFrame, dict]:
    """(frame metrics, video metrics, video table, per-method AUCs) of a predictions table."""
    check_rule(rule)
    frame = compute_metrics(predictions["label"], predictions["score"], threshold)
    videos = aggregate_video(predictions, rule, threshold)
    video = compute_metrics(videos["label"], videos["score"], threshold)
    # every figure carries its sample size and a bootstrap interval; faces are resampled by video
    n_real, n_fake = int((videos["label"] == 0).sum()), int((videos["label"] == 1).sum())
    frame = with_uncertainty(frame, predictions["label"], predictions["score"], threshold, predictions["video_id"].astype(str), n_real, n_fake)
    video = with_uncertainty(video, videos["label"], videos["score"], threshold, None, n_real, n_fake)
    per_method: dict[str, dict[str, Any]] = {}
    real_frames = predictions[predictions["label"] == 0]
    real_videos = videos[videos["label"] == 0]
    for method in sorted(predictions.loc[predictions["label"] == 1, "method"].astype(str).unique()):
        # each manipulation against all real faces, as the papers' per-method columns
        fake_frames = predictions[(predictions["label"] == 1) & (predictions["method"].astype(str) == method)]
        fake_videos = videos[(videos["label"] == 1) & (videos["method"].astype(str) == method)]
        f = pd.concat([real_frames, fake_frames])
        v = pd.concat([real_videos, fake_videos])
        per_method[method] = {
            "frame_auc": compute_metrics(f["label"], f["score"], threshold)["auc"],
            "video_auc": compute_metrics(v["label"], v["score"], threshold)["auc"],
            "n_fake_videos": int(len(fake_videos)),
        }
    return frame, video, videos, per_method


def _read_reusable(out_dir: Path, fingerprint: dict[str, str]) -> pd.DataFrame | None:
    metrics_file, predictions_file = out_dir / "metrics.json", out_dir / "predictions.csv"
    if not (metrics_file.is_file() and predictions_file.is_file()):
        return None
    try:
        recorded = json.loads(metrics_file.read_text(encoding="utf-8"))
        if any(recorded.get(k) != v for k, v in fingerprint.items()):
            return None
        predictions = pd.read_csv(predictions_file, dtype={"video_id": str, "crop_path": str, "method": str}, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError):
        return None  # unreadable cache: predict again rather than fail
    if predictions.empty or predictions["score"].isna().any() or len(predictions) != recorded.get("n_crops"):
        return None
    predictions["method"] = predictions["method"].fillna("")
    predictions["crop_path"] = predictions["crop_path"].fillna("")  # temporal models: one row per video
    return predictions


def _predict(
    card_path: Path, cache: Path, split: str, batch_size: int, device: str, workers: int, on_batch
) -> tuple[pd.DataFrame, str]:
    """Predictions table (PREDICTION_COLUMNS) and split note for any registered input kind."""
    from ddtool.models import get_spec

    spec = get_spec(read_card(card_path)["model"])
    model, card = load_checkpoint(card_path, device=str(resolve_device(device)))
    if spec.input_kind == "features":
        predictions, note = predict_features(model, cache, split)
    elif spec.input_kind in ("volume", "sequence"):
        predictions, note = predict_arrays(model, spec, cache, split, batch_size, device, on_batch)
    else:
        rows, note = load_split(cache, split)
        predictions = rows[[c for c in PREDICTION_COLUMNS if c in rows.columns and c != "score"]].copy()
        predictions["score"] = predict_images(model, spec, card, cache, rows["crop_path"].tolist(), batch_size, device, workers, on_batch)
    return predictions[[c for c in PREDICTION_COLUMNS if c in predictions.columns]], note


def _inputs_fingerprint(card: dict[str, Any], cache: Path) -> str | None:
    """sha256 of the noise file a seed-study model reads (None for image detectors)."""
    from ddtool.models import get_spec

    kind = get_spec(card["model"]).input_kind
    return None if kind == "image" else sha256_file(noise_inputs_file(cache, kind))


def evaluate_checkpoint(
    checkpoint: str | Path,
    cache: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    batch_size: int = 64,
    device: str = "auto",
    rule: str = "mean",
    threshold: float = 0.5,
    workers: int = 0,
    reuse: bool = True,
    dataset_name: str | None = None,
    on_batch: ProgressCallback | None = None,
    eval_root: str | Path | None = None,
) -> Evaluation:
    """Score every crop of `split` in `cache` with the checkpoint; write and return the evaluation."""
    check_rule(rule)
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must lie in [0, 1] (got {threshold})")
    card_path = card_path_for(checkpoint)
    card = read_card(card_path)
    weights = card_path.with_name(card["weights_file"])
    if not weights.is_file():
        raise CheckpointError(f"weights file not found: {weights}")
    cache = Path(cache)
    manifest_hash = manifest_sha256(cache)
    out_dir = Path(out) if out is not None else default_out_dir(card_path, cache, split, manifest_hash, Path(eval_root) if eval_root else None)
    fingerprint = {
        "checkpoint_sha256": sha256_file(weights),
        "manifest_sha256": manifest_hash,
        "inputs_sha256": _inputs_fingerprint(card, cache),
        "split": split,
    }

    predictions = _read_reusable(out_dir, fingerprint) if reuse else None
    reused = predictions is not None
    if predictions is None:
        predictions, split_note = _predict(card_path, cache, split, batch_size, device, workers, on_batch)
        with atomic_path(out_dir / "predictions.csv") as tmp:
            predictions.to_csv(tmp, index=False, float_format="%.6f")

    else:
        split_note = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8")).get("split_note", "")

    frame, video, videos, per_method = summarize(predictions, rule, threshold)
    with atomic_path(out_dir / "video_predictions.csv") as tmp:
        keep = [c for c in ("video_id", "label", "method", "score", "n_frames", "n_tracks") if c in videos.columns]
        videos[keep].to_csv(tmp, index=False, float_format="%.6f")
    metrics = _json_safe(
        {
            "model": card["model"],
            "model_kwargs": card.get("model_kwargs") or {},
            "checkpoint": str(card_path),
            "training_data": training_data_label(card),
            "cache": str(cache.resolve()),
            "dataset": dataset_name or cache.resolve().name,
            **fingerprint,
            "split_note": split_note,
            "aggregate": rule,
            "threshold": threshold,
            "n_crops": int(len(predictions)),
            "n_videos": int(len(videos)),
            "frame": frame,
            "video": video,
            "per_method": per_method,
            "ddtool_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    )
    write_json_atomic(out_dir / "metrics.json", metrics)
    return Evaluation(out_dir, predictions, videos, metrics, reused)


def level_metrics(evaluation: Evaluation, level: str) -> dict[str, Any]:
    if level not in ("frame", "video"):
        raise ConfigError(f"--level must be frame or video (got {level!r})")
    return evaluation.metrics[level]


def level_scores(evaluation: Evaluation, level: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) at frame or video level, for ROC curves."""
    table = evaluation.predictions if level == "frame" else evaluation.videos
    if table.empty:
        raise InputError("no predictions to plot")
    return table["label"].to_numpy(dtype=int), table["score"].to_numpy(dtype=float)
