"""Training a features model (LightGBM on noise statistics): one fit with early stopping on validation."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ddtool.data.dataset import load_feature_table, noise_inputs_file, split_train_val
from ddtool.errors import ConfigError
from ddtool.models.checkpoint import save_checkpoint
from ddtool.models.registry import ModelSpec, create_model
from ddtool.train.config import TrainConfig, save_config
from ddtool.train.progress import report_epoch
from ddtool.train.run_folder import CONFIG_FILE, RunResult, training_data_record, write_curves, write_metrics

# Boosting stops once val loss has not improved for this many rounds.
LGBM_EARLY_STOPPING_ROUNDS = 20


def train_features(config: TrainConfig, spec: ModelSpec, run_dir: Path) -> RunResult:
    """Fit a features model (LightGBM on noise statistics) with early stopping on val.

    Epochs, batches, learning-rate decay and resume do not apply: boosting
    rounds are chosen by early stopping on the validation rows instead.
    """
    from sklearn.metrics import roc_auc_score

    if config.resume:
        raise ConfigError(f"{config.model} trains in one call; --resume only applies to neural models")
    if run_dir.exists() and any((run_dir / name).exists() for name in ("best.json", CONFIG_FILE)):
        raise ConfigError(f"{run_dir} already holds a training run; choose another --out")
    defaults = spec.train
    seed = defaults.seed if config.seed is None else config.seed
    # The generic options map onto boosting: epochs = boosting rounds (an upper
    # bound; early stopping on val picks the count), lr = shrinkage.
    model_kwargs = {
        "n_estimators": config.epochs or defaults.epochs,
        "learning_rate": config.lr or defaults.lr,
        "random_state": seed,
        "early_stopping_rounds": LGBM_EARLY_STOPPING_ROUNDS,
        **config.model_kwargs,
    }
    config = dataclasses.replace(config, epochs=model_kwargs["n_estimators"], lr=model_kwargs["learning_rate"], seed=seed)
    rows, features, names = load_feature_table(config.data)
    split = split_train_val(rows, config.val_fraction, seed, config.holdout_method)
    row_of = {p: i for i, p in enumerate(rows["crop_path"])}
    x_train = features[[row_of[p] for p in split.train["crop_path"]]]
    x_val = features[[row_of[p] for p in split.val["crop_path"]]]
    y_train, y_val = split.train["label"].to_numpy(), split.val["label"].to_numpy()
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(dataclasses.replace(config, out=str(run_dir), resume=False), run_dir / CONFIG_FILE)
    try:
        model = create_model(config.model, **model_kwargs)
    except TypeError as exc:
        raise ConfigError(f"model_kwargs do not fit {config.model!r}: {exc}") from None
    started = time.perf_counter()
    model.fit(x_train, y_train, eval_set=(x_val, y_val), feature_names=names)
    seconds = time.perf_counter() - started
    val_score = np.asarray(model.predict_proba(x_val))
    val_score = val_score[:, 1] if val_score.ndim == 2 else val_score
    train_score = np.asarray(model.predict_proba(x_train))
    train_score = train_score[:, 1] if train_score.ndim == 2 else train_score
    eps = 1e-7

    def log_loss(y, p):
        p = np.clip(p, eps, 1 - eps)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    row = {
        "epoch": 1,
        "train_loss": log_loss(y_train, train_score),
        "val_loss": log_loss(y_val, val_score),
        "val_auc": float(roc_auc_score(y_val, val_score)),
        "val_acc": float(((val_score >= 0.5).astype(np.int64) == y_val).mean()),
        "lr": float(model_kwargs["learning_rate"]),
        "images_per_s": len(y_train) / max(seconds, 1e-9),
        "seconds": seconds,
    }
    training_data = training_data_record(config, split, noise_inputs_file(config.data, "features"))
    card = dict(
        config=dataclasses.replace(config, out=str(run_dir), resume=False).to_dict(),
        training_data=training_data,
        input={"kind": "features", "features": names},
        metrics={k: row[k] for k in ("epoch", "val_auc", "val_acc", "val_loss", "train_loss")},
    )
    best = save_checkpoint(model, run_dir / "best.json", config.model, model_kwargs, selected_on="val_auc", **card)
    last = save_checkpoint(model, run_dir / "last.json", config.model, model_kwargs, **card)
    write_metrics(run_dir, [row])
    write_curves(run_dir, [row], f"{config.model} on {Path(config.data).name}")
    report_epoch(row)
    return RunResult(run_dir, best, last, 1, row["val_auc"], [row], config)

