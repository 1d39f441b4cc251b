"""The run folder `train` leaves, and resuming from it.

    config.yaml            the resolved configuration (re-runnable)
    best.safetensors/.json the epoch with the highest validation AUC
    last.safetensors/.json the latest epoch
    metrics.csv            one row per epoch
    curves.png             loss and AUC curves
    train_state.pt         everything needed to resume exactly (tensors and
                           plain types only; loaded with weights_only=True)

The state file is written last in each epoch and holds its own copy of the
weights, so it is the commit point: a crash at any moment leaves the previous
epoch's state intact, and resuming from it repeats the interrupted epoch
bit for bit (same sampler draw, same RNG streams).
"""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddtool.data.dataset import SplitResult, manifest_path
from ddtool.errors import CheckpointError, ConfigError
from ddtool.io import atomic_path, sha256_file, write_text_atomic
from ddtool.train.config import TrainConfig, build_config, validate

STATE_FILE = "train_state.pt"
STATE_FORMAT = 1
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
CURVES_FILE = "curves.png"
# What a resume may change: nothing that alters the numbers, except how long to train.
RESUME_OVERRIDES = ("epochs", "device", "workers")
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_auc", "val_acc", "lr", "images_per_s", "seconds")


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path  # the .json card of the best epoch
    last_checkpoint: Path
    best_epoch: int  # 1-based
    best_val_auc: float
    history: list[dict]
    config: TrainConfig
    # False in torchrun's other ranks: only rank 0 validates, so only it has results to report
    is_main: bool = True


def default_run_dir(model_name: str) -> Path:
    return Path("runs") / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_config(config: TrainConfig) -> TrainConfig:
    """For --resume, the run folder's saved config wins except for RESUME_OVERRIDES."""
    if not config.resume:
        return config
    if not config.out:
        raise ConfigError("--resume needs --out RUN_DIR: the run folder to continue")
    run_dir = Path(config.out)
    saved_path = run_dir / CONFIG_FILE
    if not (run_dir / STATE_FILE).is_file() or not saved_path.is_file():
        raise ConfigError(f"cannot resume: {run_dir} has no {STATE_FILE} and {CONFIG_FILE} (not a ddtool run folder, or it never finished an epoch)")
    saved = build_config(saved_path)
    for key in ("model", "data"):
        given = getattr(config, key)
        if given and str(given) != str(getattr(saved, key)):
            raise ConfigError(f"cannot resume {run_dir}: it trained {key}={getattr(saved, key)!r}, not {given!r}")
    changes = {key: getattr(config, key) for key in RESUME_OVERRIDES if getattr(config, key) is not None}
    resumed = dataclasses.replace(saved, **changes, resume=True, out=str(run_dir))
    validate(resumed)
    return resumed


def prepare_run_dir(config: TrainConfig, model_name: str) -> Path:
    run_dir = Path(config.out) if config.out else default_run_dir(model_name)
    if not config.resume and (run_dir / STATE_FILE).exists():
        raise ConfigError(f"{run_dir} already holds a training run; use --resume to continue it or choose another --out")
    return run_dir


def training_data_record(config: TrainConfig, split: SplitResult, inputs_file: Path | None = None) -> dict[str, Any]:
    manifest = manifest_path(config.data)
    record: dict[str, Any] = {
        "cache": str(Path(config.data).resolve()),
        "manifest": str(manifest.resolve()),
        "manifest_sha256": sha256_file(manifest),
        **split.summary(),
    }
    if inputs_file is not None:
        record["inputs_file"] = str(inputs_file.resolve())
        record["inputs_sha256"] = sha256_file(inputs_file)
    return record


def rng_state() -> dict[str, Any]:
    key, state, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"key": key, "state": torch.from_numpy(state.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    lines = [",".join(METRIC_COLUMNS)]
    for row in history:
        lines.append(",".join(repr(row[c]) if isinstance(row[c], float) else str(row[c]) for c in METRIC_COLUMNS))
    write_text_atomic(run_dir / METRICS_FILE, "\n".join(lines) + "\n")


def write_curves(run_dir: Path, history: list[dict], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_auc) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], marker="o", label="val")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_auc.plot(epochs, [r["val_auc"] for r in history], marker="o", label="val AUC")
    ax_auc.plot(epochs, [r["val_acc"] for r in history], marker="s", label="val ACC")
    ax_auc.set_xlabel("epoch")
    ax_auc.set_ylim(0.0, 1.02)
    ax_auc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(run_dir / CURVES_FILE) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def save_state(run_dir: Path, state: dict[str, Any]) -> None:
    with atomic_path(run_dir / STATE_FILE) as tmp:
        torch.save(state, tmp)


def load_state(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure means a corrupt or foreign file
        raise CheckpointError(f"cannot read training state {path}: {exc}; start a new run instead of --resume") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path} is not a ddtool training state (format {STATE_FORMAT})")
    return state

