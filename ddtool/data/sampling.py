"""Class balancing and video-level splits of a face-cache manifest.

Both work on the manifest DataFrame (one row per crop) and never separate the
crops of one video: a video seen in training must not be scored in testing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ddtool.errors import ConfigError

SPLIT_NAMES = ("train", "val", "test")


def balance(df: pd.DataFrame, seed: int = 7, n_per_class: int | None = None) -> pd.DataFrame:
    """Equal numbers of real and fake crops, taken as evenly across videos as possible.

    `n_per_class` defaults to the size of the smaller class (the papers use
    60k/60k). Within a class, every video gives its first randomly chosen
    crop before any video gives a second, and so on: a class of many short
    videos and one long one is not dominated by the long one.
    """
    _require_columns(df, ("video_id", "label"))
    counts = df["label"].value_counts()
    if set(counts.index) != {0, 1}:
        raise ConfigError(f"balancing needs both real (0) and fake (1) crops; labels present: {sorted(counts.index)}")
    available = int(counts.min())
    n = available if n_per_class is None else int(n_per_class)
    if n < 1 or n > available:
        raise ConfigError(
            f"n_per_class={n_per_class} is not possible: the smaller class has {available} crops; "
            f"use a value from 1 to {available} or extract more frames"
        )
    rng = np.random.default_rng(seed)
    picked = [_spread_over_videos(df[df["label"] == label], n, rng) for label in (0, 1)]
    return pd.concat(picked).sort_index()


def _spread_over_videos(rows: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    order = rng.permutation(len(rows))
    shuffled = rows.iloc[order]
    rank_in_video = shuffled.groupby("video_id", sort=False).cumcount().to_numpy()
    # Ties between videos on the same rank are broken by a random video order.
    videos = sorted(rows["video_id"].unique())
    video_order = dict(zip(videos, rng.permutation(len(videos))))
    key = rank_in_video * len(videos) + shuffled["video_id"].map(video_order).to_numpy()
    return shuffled.iloc[np.argsort(key, kind="stable")[:n]]


def parse_ratios(ratios: str | tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """"5:1" -> train:test, "8:1:1" -> train:val:test; tuples likewise. Normalised to sum 1."""
    if isinstance(ratios, str):
        try:
            parts = [float(p) for p in ratios.split(":")]
        except ValueError:
            raise ConfigError(f"split ratios {ratios!r} must look like 5:1 (train:test) or 8:1:1 (train:val:test)") from None
    else:
        parts = [float(p) for p in ratios]
    if len(parts) == 2:
        parts = [parts[0], 0.0, parts[1]]
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ConfigError(f"split ratios {ratios!r} must be 2 or 3 non-negative numbers with a positive sum")
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def split_by_video(df: pd.DataFrame, ratios: str | tuple[float, ...] = "5:1", seed: int = 7,
                   keep_existing: bool = True) -> pd.DataFrame:
    """Give every row a train/val/test split, whole videos at a time.

    Rows whose `split` is already set (official dataset splits) keep it when
    `keep_existing`; the remaining videos are shuffled with `seed` and cut by
    `ratios` separately for real and fake videos, so each split gets both
    classes in the same proportion. Returns a copy.
    """
    _require_columns(df, ("video_id", "label"))
    fractions = parse_ratios(ratios)
    out = df.copy()
    existing = out["split"].fillna("").astype(str) if "split" in out.columns else pd.Series("", index=out.index)
    if not keep_existing:
        existing = pd.Series("", index=out.index)
    bad = sorted(set(existing) - {"", *SPLIT_NAMES})
    if bad:
        raise ConfigError(f"unknown split values {bad}; use train, val, test or leave empty")
    per_video_labels = out.groupby("video_id")["label"].nunique()
    if (per_video_labels > 1).any():
        raise ConfigError(f"video {per_video_labels[per_video_labels > 1].index[0]!r} has both labels; fix the manifest")
    assigned = existing.copy()
    open_rows = existing == ""
    rng = np.random.default_rng(seed)
    video_split: dict[str, str] = {}
    for label in (0, 1):
        videos = sorted(out.loc[open_rows & (out["label"] == label), "video_id"].unique())
        videos = [videos[i] for i in rng.permutation(len(videos))]
        cuts = np.round(np.cumsum(fractions) * len(videos)).astype(int)
        for position, video in enumerate(videos):
            video_split[video] = SPLIT_NAMES[int(np.searchsorted(cuts, position, side="right"))]
    assigned[open_rows] = out.loc[open_rows, "video_id"].map(video_split)
    out["split"] = assigned
    mixed = out.groupby("video_id")["split"].nunique()
    if (mixed > 1).any():
        raise ConfigError(
            f"video {mixed[mixed > 1].index[0]!r} already has crops in two splits; fix the manifest "
            "or call split_by_video(..., keep_existing=False)"
        )
    return out


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"manifest is missing columns {missing}; build it with `ddtool extract`")
