"""Training a CLIP probe (`ddtool train --model clip_vit_b16`): encode the faces once, fit a linear probe.

The tower is frozen (models.clip_vit), so training is: every training face
through the encoder file on onnxruntime (the engine scan scores with), the
features of the probe layers stored in the run folder (`--resume` reuses
them), then one L2-regularised logistic regression on the standardised
features (scikit-learn; `probe_c` is its C, the inverse regularisation
strength; classes weighted to balance). Per face it encodes:
- the crop itself;
- with `augment`, one augmented copy (the augmentations of ddtool.train.augment,
  seeded per face), so compression and blur stop being a cue;
- with `synth` (self_blend), one forgery of every real training crop and, with
  `synth_data`, of that cache's real crops too (with the reals themselves, so a
  source of photos is never a cue for "fake").
Validation: the cache's val rows (AUC, accuracy, log loss), like every ddtool run.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ddtool.data.dataset import crop_margin, load_crop, read_manifest, split_train_val
from ddtool.data.preprocess import Preprocess, normalise, resize_face
from ddtool.errors import ConfigError
from ddtool.models.checkpoint import save_checkpoint
from ddtool.models.clip_pooling import DEFAULT_POOLING, check_pooling, probe_features_np
from ddtool.models.registry import ModelSpec
from ddtool.train.config import DEFAULT_PROBE_C, TrainConfig, save_config
from ddtool.train.progress import report_epoch
from ddtool.train.run_folder import CONFIG_FILE, RunResult, training_data_record, write_curves, write_metrics

FEATURES_FILE = "probe_features.npz"


@dataclasses.dataclass
class ProbeFit:
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray  # on standardised features
    bias: float

    def logit(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weight + self.bias


def fit_probe(features: np.ndarray, labels: np.ndarray, c: float = DEFAULT_PROBE_C, sample_weight: np.ndarray | None = None) -> ProbeFit:
    """Standardise, then L2 logistic regression with balanced class weights."""
    from sklearn.linear_model import LogisticRegression

    if len(set(np.asarray(labels).tolist())) != 2:
        raise ConfigError("a probe needs real and fake training faces")
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    clf.fit((features - mean) / std, labels, sample_weight=sample_weight)
    return ProbeFit(mean.astype(np.float32), std.astype(np.float32), clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


class FaceEncoder:
    """Crops -> probe features on the encoder file (one face per run), with a store keyed by (crop, variant)."""

    def __init__(self, layers, preprocess: Preprocess, store: Path | None = None, pooling: str = DEFAULT_POOLING, threads: int | None = None):
        from ddtool.models.clip_encoder import OnnxClipEncoder

        self.layers, self.preprocess, self.store, self.pooling = tuple(layers), preprocess, store, pooling
        self._encoder = OnnxClipEncoder(self.layers, threads=threads)
        self.known: dict[str, np.ndarray] = {}
        if store is not None and store.is_file():
            data = np.load(store)
            self.known = dict(zip(data["keys"].tolist(), data["features"]))

    def __call__(self, key: str, image: np.ndarray) -> np.ndarray:
        if key not in self.known:
            x = normalise(resize_face(image, self.preprocess.size, self.preprocess.interpolation), self.preprocess)[None]
            self.known[key] = probe_features_np(self._encoder(x), self.layers, self.pooling)[0].astype(np.float16)
        return self.known[key]

    def save(self) -> None:
        if self.store is not None and self.known:
            from ddtool.io import atomic_path

            with atomic_path(self.store) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, keys=np.array(list(self.known)), features=np.stack(list(self.known.values())))


def _variants(rows: pd.DataFrame, cache: Path, config: TrainConfig, seed: int, tag: str):
    """(key, image, label) of every face the probe trains on from one cache's rows."""
    import torch

    from ddtool.train.augment import Compose

    augment = Compose(config.augment) if config.augment else None
    marks = None
    if config.synth:
        from ddtool.data.synth_dataset import crop_landmarks

        marks = crop_landmarks(cache, rows.loc[rows["label"] == 0, "crop_path"].tolist())
    for path, label in zip(rows["crop_path"], rows["label"]):
        image = load_crop(cache / path)
        # Seeded by the crop, not its row: a leave-one-method-out or resumed run makes the same copy of the
        # same face, so the feature store's key always names one image.
        face_seed = zlib.crc32(str(path).encode())
        yield f"{tag}:{path}", image, int(label)
        if augment is not None:
            torch.manual_seed(seed * 1_000_003 + face_seed)
            yield f"{tag}:{path}:aug{seed}", augment(image), int(label)
        if marks is not None and label == 0 and marks.get(path) is not None:
            from ddtool.data.synth import make_forgery

            rng = np.random.default_rng([seed, face_seed])
            method = config.synth[int(rng.integers(len(config.synth)))]
            yield f"{tag}:{path}:{method}{seed}", make_forgery(method, image, marks[path], rng, float(rng.uniform(0.3, 1.0))).image, 1


def train_probe(config: TrainConfig, spec: ModelSpec, run_dir: Path) -> RunResult:
    """Encode, fit, validate and save a CLIP probe run (best.json = last.json: one fit)."""
    from sklearn.metrics import roc_auc_score

    from ddtool.models.clip_encoder import ENCODER_NAME
    from ddtool.models.clip_vit import DEFAULT_PROBE_LAYERS, ClipProbe

    if run_dir.exists() and (run_dir / "best.json").exists() and not config.resume:
        raise ConfigError(f"{run_dir} already holds a training run; choose another --out, or --resume to refit it")
    seed = spec.train.seed if config.seed is None else config.seed
    layers = tuple(config.model_kwargs.get("probe_layers") or DEFAULT_PROBE_LAYERS)
    pooling = check_pooling(str(config.model_kwargs.get("pooling") or DEFAULT_POOLING))
    c = DEFAULT_PROBE_C if config.probe_c is None else float(config.probe_c)
    config = dataclasses.replace(config, seed=seed, epochs=1, probe_c=c)
    cache = Path(config.data)
    split = split_train_val(read_manifest(cache), config.val_fraction, seed, config.holdout_method, need_fakes=not config.synth)
    margin = crop_margin(cache) or 0.0
    preprocess = Preprocess(size=(spec.input_size, spec.input_size), mean=spec.mean, std=spec.std, margin=margin)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(dataclasses.replace(config, out=str(run_dir), resume=False), run_dir / CONFIG_FILE)
    encoder = FaceEncoder(layers, preprocess, run_dir / FEATURES_FILE, pooling)
    started = time.perf_counter()
    faces = list(_variants(split.train, cache, config, seed, "train"))
    if config.synth_data:
        from ddtool.data.synth_dataset import synth_source_reals

        other = synth_source_reals(config.synth_data, seed, config.synth_data_limit)
        faces += list(_variants(other, Path(config.synth_data), dataclasses.replace(config, augment=None), seed, "synth_data"))
    x_train = np.stack([encoder(key, image) for key, image, _ in faces]).astype(np.float32)
    y_train = np.array([label for _, _, label in faces])
    x_val = np.stack([encoder(f"val:{p}", load_crop(cache / p)) for p in split.val["crop_path"]]).astype(np.float32)
    y_val = split.val["label"].to_numpy()
    encoder.save()
    fit = fit_probe(x_train, y_train, c)
    seconds = time.perf_counter() - started

    def log_loss(y, z):
        p = np.clip(1 / (1 + np.exp(-z)), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    z_val, z_train = fit.logit(x_val), fit.logit(x_train)
    row = {"epoch": 1, "train_loss": log_loss(y_train, z_train), "val_loss": log_loss(y_val, z_val),
           "val_auc": float(roc_auc_score(y_val, z_val)) if len(set(y_val)) == 2 else float("nan"),
           "val_acc": float(((z_val >= 0) == y_val).mean()), "lr": c, "images_per_s": len(faces) / max(seconds, 1e-9), "seconds": seconds}
    model = probe_model(fit, layers, ENCODER_NAME, pooling)
    training_data = training_data_record(config, split)
    training_data["probe"] = {"faces": len(faces), "real": int((y_train == 0).sum()), "fake": int((y_train == 1).sum()),
                              "augmented_copies": bool(config.augment), "synth": config.synth, "synth_data": Path(config.synth_data).name if config.synth_data else None}
    card = dict(
        config=dataclasses.replace(config, out=str(run_dir), resume=False).to_dict(), training_data=training_data,
        input={"kind": "image", **preprocess.card_fields()},
        metrics={k: row[k] for k in ("epoch", "val_auc", "val_acc", "val_loss", "train_loss")},
    )
    kwargs = {"probe_layers": list(layers), "pooling": pooling, "encoder": ENCODER_NAME}
    best = save_checkpoint(model, run_dir / "best.json", config.model, kwargs, selected_on="val_auc", **card)
    last = save_checkpoint(model, run_dir / "last.json", config.model, kwargs, **card)
    write_metrics(run_dir, [row])
    write_curves(run_dir, [row], f"{config.model} probe on {cache.name}")
    report_epoch(row)
    return RunResult(run_dir, best, last, 1, row["val_auc"], [row], config)


def probe_model(fit: ProbeFit, layers, encoder: str | None, pooling: str = DEFAULT_POOLING):
    """A ClipProbe holding `fit` (the torch model whose checkpoint scan and explain load)."""
    import torch

    from ddtool.models.clip_vit import ClipProbe

    model = ClipProbe(layers, encoder=encoder, pooling=pooling).eval()
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(fit.mean))
        model.feature_std.copy_(torch.from_numpy(fit.std))
        model.head.weight.copy_(torch.from_numpy(fit.weight)[None])
        model.head.bias.fill_(fit.bias)
    return model
