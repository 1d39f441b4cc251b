"""Torch datasets over a face cache: the manifest, its train/val protocol and balanced sampling.

The manifest schema is in docs/architecture.md (one row per face crop). This
module reads it, decides which rows train and which validate (by video, never
by frame, so faces of one video never sit on both sides), and serves crops as
normalised tensors.

Balanced sampling: every epoch draws `len(train)` indices with replacement,
each class with total probability 1/2 (a weighted sampler, not
undersampling: no crop is thrown away, and FF++-style 1:4 real:fake caches
still see every fake over a few epochs). The draw uses its own generator
seeded by (seed, epoch), so it is the same on every DDP rank and after a
resume, and each rank takes its own stride of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from ddtool.data.preprocess import Preprocess, as_hw, crop_to_tensor, resize_face
from ddtool.errors import ConfigError, InputError
from ddtool.io import sha256_file as file_sha256  # noqa: F401 (re-exported for the loop and eval)

REQUIRED_COLUMNS = ("crop_path", "video_id", "label", "domain", "method", "split")
MANIFEST_NAME = "manifest.csv"


def manifest_path(cache: str | Path) -> Path:
    return Path(cache) / MANIFEST_NAME


def read_manifest(cache: str | Path) -> pd.DataFrame:
    """Load and validate CACHE/manifest.csv; raise InputError saying what is wrong."""
    cache = Path(cache)
    path = manifest_path(cache)
    if not cache.is_dir():
        raise InputError(f"face cache folder not found: {cache} (create one with `ddtool extract`)")
    if not path.is_file():
        raise InputError(f"{path} not found: {cache} is not a face cache (create one with `ddtool extract`)")
    try:
        frame = pd.read_csv(path, dtype={"video_id": str, "crop_path": str, "method": str, "split": str}, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"manifest {path} lacks column(s) {', '.join(missing)}; see the manifest schema in docs/architecture.md")
    if frame.empty:
        raise InputError(f"manifest {path} has no rows: the cache holds no face crops")
    for column in ("label", "domain"):
        values = pd.to_numeric(frame[column], errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            raise InputError(f"manifest {path}: column '{column}' must be an integer, row {row + 2} has {frame[column].iloc[row]!r}")
        frame[column] = values.astype(np.int64)
    bad_labels = sorted(set(frame["label"].unique()) - {0, 1})
    if bad_labels:
        raise InputError(f"manifest {path}: labels must be 0 (real) or 1 (fake), found {bad_labels}")
    frame["split"] = frame["split"].str.strip().str.lower()
    return frame


@dataclass
class SplitResult:
    """Train and validation rows plus what a model card should record about them."""

    train: pd.DataFrame
    val: pd.DataFrame
    source: str  # "manifest" (its split column) or "video-random"
    holdout_method: str | None
    domains: dict[str, int] = field(default_factory=dict)  # fake method -> domain id used in training

    def summary(self) -> dict:
        def counts(frame: pd.DataFrame) -> dict:
            return {
                "crops": int(len(frame)),
                "videos": int(frame["video_id"].nunique()),
                "real": int((frame["label"] == 0).sum()),
                "fake": int((frame["label"] == 1).sum()),
            }

        return {
            "split_source": self.source,
            "holdout_method": self.holdout_method,
            "domains": dict(self.domains),
            "train": counts(self.train),
            "val": counts(self.val),
        }


def _split_videos(frame: pd.DataFrame, val_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random video-level split, stratified by label so both sides hold real and fake videos."""
    rng = np.random.default_rng(seed)
    val_videos: list[str] = []
    for label in (0, 1):
        videos = np.array(sorted(frame.loc[frame["label"] == label, "video_id"].unique()))
        if len(videos) < 2:
            kind = "real" if label == 0 else "fake"
            raise InputError(
                f"need at least 2 {kind} videos to split train/val by video, found {len(videos)}; "
                "add videos or give the manifest a split column with train and val rows"
            )
        rng.shuffle(videos)
        n_val = min(len(videos) - 1, max(1, int(round(val_fraction * len(videos)))))
        val_videos.extend(videos[:n_val].tolist())
    is_val = frame["video_id"].isin(set(val_videos))
    return frame[~is_val], frame[is_val]


def split_train_val(
    frame: pd.DataFrame, val_fraction: float = 0.2, seed: int = 7, holdout_method: str | None = None, need_fakes: bool = True
) -> SplitResult:
    """Choose training and validation rows; test rows are never used.

    If the manifest's split column has val rows, it is the protocol (train rows
    and unlabelled rows train). Otherwise the train/unlabelled rows are split
    by video_id, `val_fraction` of each class's videos to validation.
    `holdout_method` removes that manipulation from both sides
    (leave-one-manipulation-out): it becomes the unseen test domain.
    `need_fakes=False` accepts a real-only cache (SBI: the fakes are made on the fly).
    """
    methods = sorted(frame.loc[frame["label"] == 1, "method"].unique())
    if holdout_method is not None:
        if holdout_method not in methods:
            raise ConfigError(f"--holdout-method {holdout_method!r} is not a fake method in this cache; methods: {', '.join(methods) or 'none'}")
        frame = frame[frame["method"] != holdout_method]
    pool = frame[frame["split"] != "test"]
    if (pool["split"] == "val").any():
        train, val = pool[pool["split"] != "val"], pool[pool["split"] == "val"]
        source = "manifest"
    else:
        train, val = _split_videos(pool, val_fraction, seed)
        source = "video-random"
    for name, part in (("training", train), ("validation", val)):
        present = set(part["label"].unique())
        if present != {0, 1} and (need_fakes or 0 not in present):
            lacking = "real" if 0 not in present else "fake"
            raise InputError(f"the {name} rows have no {lacking} crops; a detector needs both classes to train and be selected")
    # Domain ids contiguous over the methods actually trained on, in the cache's own order.
    fake_train = train[train["label"] == 1]
    order = fake_train.groupby("method")["domain"].min().sort_values(kind="stable")
    domains = {str(m): i + 1 for i, m in enumerate(order.index)}

    def remap(part: pd.DataFrame) -> pd.DataFrame:
        part = part.copy()
        part["domain"] = [0 if lab == 0 else domains.get(m, 0) for lab, m in zip(part["label"], part["method"])]
        return part.reset_index(drop=True)

    return SplitResult(remap(train), remap(val), source, holdout_method, domains)


def crop_margin(cache: str | Path) -> float | None:
    """The margin around the face box the cache's crops were cut with, when the cache records it.

    `ddtool extract` stores it in extract_config.json; `ddtool offline forge`
    points at its faces folder, whose faces_config.json holds it. A model must
    see crops cut the same way at scan time, so training writes it in the card.
    """
    cache = Path(cache)
    candidates = [(cache / "extract_config.json", None), (cache / "forge_config.json", "faces")]
    for path, pointer in candidates:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if pointer is not None:
                record = json.loads((Path(record[pointer]) / "faces_config.json").read_text(encoding="utf-8"))
            margin = float(record["margin"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if 0.0 <= margin <= 2.0:
            return margin
    return None


def load_crop(path: Path) -> np.ndarray:
    """Read one crop as RGB uint8, raising InputError naming the file if it cannot be read."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        reason = "missing" if not path.exists() else "unreadable or not an image"
        raise InputError(f"face crop {path} is {reason}; re-run `ddtool extract` for this cache or remove the row from manifest.csv")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceCropDataset(Dataset):
    """Crops of a manifest as (normalised CHW float tensor, label, domain, row index)."""

    def __init__(
        self,
        cache: str | Path,
        rows: pd.DataFrame,
        size: int | Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        augment: Callable[[np.ndarray], np.ndarray] | None = None,
        preprocess: Preprocess | None = None,
    ):
        """`preprocess` (data.preprocess.resolve_preprocess of the model and its card) replaces size/mean/std when given."""
        self.cache = Path(cache)
        self.paths = [self.cache / p for p in rows["crop_path"].tolist()]
        self.labels = rows["label"].to_numpy(dtype=np.int64)
        self.domains = rows["domain"].to_numpy(dtype=np.int64)
        self.preprocess = preprocess or Preprocess(size=as_hw(size), mean=tuple(mean), std=tuple(std))
        self.height, self.width = self.preprocess.size
        self.augment = augment

    def __len__(self) -> int:
        return len(self.paths)

    def to_tensor(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 crop -> resized, augmented, normalised CHW float tensor (data.preprocess, as scan and eval)."""
        if self.augment is None:
            return crop_to_tensor(image, self.preprocess)
        image = self.augment(resize_face(image, self.preprocess.size, self.preprocess.interpolation))
        return crop_to_tensor(image, self.preprocess)

    def __getitem__(self, index: int):
        tensor = self.to_tensor(load_crop(self.paths[index]))
        return tensor, int(self.labels[index]), int(self.domains[index]), index


class PairSampler(Sampler[int]):
    """Whole (real, forgery) pairs of a SynthesisDataset in a fresh order each epoch.

    Items 2p and 2p+1 (real p and its forgery) are yielded back to back, so a
    batch of even size holds whole pairs, as in Self-Blended Images' training:
    the model sees each face and its forgery side by side and can only tell
    them apart by the forgery. Rank r of `world_size` takes every
    world_size-th pair of the shared draw (padded so all ranks take the same
    step count). Call `set_epoch` before each epoch.
    """

    def __init__(self, n_items: int, seed: int, rank: int = 0, world_size: int = 1):
        if n_items % 2:
            raise ConfigError(f"a pair dataset has an even number of items, got {n_items}")
        self.pairs = n_items // 2
        self.seed, self.rank, self.world_size, self.epoch = int(seed), rank, world_size, 0
        self.pairs_per_rank = math.ceil(self.pairs / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.pairs, generator=generator).numpy()
        total = self.pairs_per_rank * self.world_size
        if total > self.pairs:
            order = np.concatenate([order, order[: total - self.pairs]])
        mine = order[self.rank :: self.world_size]
        return iter(np.stack([2 * mine, 2 * mine + 1], axis=1).reshape(-1).tolist())

    def __len__(self) -> int:
        return 2 * self.pairs_per_rank


class ArrayDataset(Dataset):
    """Pre-computed per-video inputs (residual volumes or sequences) with labels and domains."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray, domains: np.ndarray):
        self.inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        self.labels = np.asarray(labels, np.int64)
        self.domains = np.asarray(domains, np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.inputs[index], int(self.labels[index]), int(self.domains[index]), index


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-item sampling weights giving each class the same total probability."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    weights = np.where(counts[labels] > 0, 1.0 / counts[labels], 0.0)
    return weights / weights.sum()


class EpochSampler(Sampler[int]):
    """Per-epoch sampling that is identical on every rank and after a resume.

    `balanced=True` draws with replacement using `balanced_weights`; otherwise
    a plain permutation. Rank r of `world_size` yields every world_size-th
    index of the shared draw (padded so all ranks take the same step count).
    Call `set_epoch` before each epoch.
    """

    def __init__(self, labels: np.ndarray, seed: int, balanced: bool = True, rank: int = 0, world_size: int = 1):
        self.labels = np.asarray(labels, np.int64)
        self.seed = int(seed)
        self.balanced = balanced
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.per_rank = math.ceil(len(self.labels) / world_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw(self) -> np.ndarray:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n = len(self.labels)
        if self.balanced:
            weights = torch.from_numpy(balanced_weights(self.labels))
            order = torch.multinomial(weights, n, replacement=True, generator=generator)
        else:
            order = torch.randperm(n, generator=generator)
        order = order.numpy()
        total = self.per_rank * self.world_size
        if total > n:
            order = np.concatenate([order, order[: total - n]])
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self._draw()[self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.per_rank


# ----------------------------------------------------------------- noise inputs (seed study)


def _noise_file(cache: str | Path, name: str) -> Path:
    path = Path(cache) / name
    if not path.is_file():
        raise InputError(f"{path} not found; run `ddtool features noise {cache}` first to compute the noise inputs")
    return path


def noise_inputs_file(cache: str | Path, input_kind: str) -> Path:
    """The cache file a seed-study model of `input_kind` trains on."""
    from ddtool.features.noise import STATS_FILE, VOLUMES_FILE

    return _noise_file(cache, STATS_FILE if input_kind == "features" else VOLUMES_FILE)


def _methods_by(manifest: pd.DataFrame, key: str) -> dict[str, str]:
    return manifest.drop_duplicates(key).set_index(key)["method"].astype(str).to_dict()


def load_video_arrays(cache: str | Path, input_kind: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-video rows (video_id, label, domain, method, split) and inputs from noise_volumes.npz.

    `input_kind` "volume" gives (V, T, H, W) residual volumes, "sequence"
    (V, T, 1) mean-|residual| sequences, as the registry's temporal models take.
    """
    path = noise_inputs_file(cache, input_kind)
    manifest = read_manifest(cache)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in ("video_id", "volume", "sequence", "label", "domain", "split")}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path} is not a valid noise volume file ({exc}); re-run `ddtool features noise {cache}`") from None
    if input_kind == "volume":
        inputs = arrays["volume"].astype(np.float32)
    elif input_kind == "sequence":
        inputs = arrays["sequence"].astype(np.float32)[..., None]
    else:
        raise ConfigError(f"no per-video arrays for input kind {input_kind!r}")
    video_ids = arrays["video_id"].astype(str)
    method_of = _methods_by(manifest, "video_id")
    videos = pd.DataFrame(
        {
            "video_id": video_ids,
            "label": arrays["label"].astype(np.int64),
            "domain": arrays["domain"].astype(np.int64),
            "method": [method_of.get(v, "unknown") for v in video_ids],
            "split": np.char.lower(np.char.strip(arrays["split"].astype(str))),
        }
    )
    return videos, inputs


def load_feature_table(cache: str | Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Per-crop rows, feature matrix and feature names from noise_stats.csv."""
    from ddtool.features.noise import FEATURE_NAMES

    path = noise_inputs_file(cache, "features")
    manifest = read_manifest(cache)
    try:
        table = pd.read_csv(path, dtype={"video_id": str, "crop_path": str, "split": str}, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read {path}: {exc}; re-run `ddtool features noise {cache}`") from None
    missing = [c for c in ("video_id", "crop_path", "label", "domain", "split", *FEATURE_NAMES) if c not in table.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing[:5])}; it is from another ddtool version, re-run `ddtool features noise {cache}`")
    method_of = _methods_by(manifest, "crop_path")
    rows = table[["video_id", "crop_path", "label", "domain", "split"]].copy()
    rows["label"] = rows["label"].astype(np.int64)
    rows["domain"] = rows["domain"].astype(np.int64)
    rows["split"] = rows["split"].str.strip().str.lower()
    rows["method"] = [method_of.get(p, "unknown") for p in rows["crop_path"]]
    return rows, table[list(FEATURE_NAMES)].to_numpy(dtype=np.float64), list(FEATURE_NAMES)
