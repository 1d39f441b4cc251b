"""Frame scores -> track scores -> video scores, and suspicious time segments.

Scores are fake probabilities in [0, 1] (label 1 = fake). Rules:

  mean       arithmetic mean of the frame scores
  median     median (robust to a few outlier frames)
  max        highest frame score (most sensitive, most false alarms)
  top_k      mean of the highest quarter of the frame scores (at least one
             frame): a face swap that fails on some frames only is not
             washed out by the good frames, yet one glitchy frame cannot
             decide alone as with `max`
  confident  mean of the frames the model is sure about, |score - 0.5| >=
             CONFIDENT_MARGIN (score <= 0.25 or >= 0.75); frames near 0.5
             carry little evidence (blur, profile views) and would pull the
             mean towards indecision. If no frame is confident, the mean of
             all frames is used
  vote       fraction of frames judged fake (score >= threshold): a majority
             vote whose verdict is `vote >= 0.5` (a tie counts as fake, the
             safe side for a forensic tool), still a ranking score for AUC

A video with several face tracks scores the maximum over its tracks, so one
swapped face among several real ones is not diluted. Frames are grouped by
the manifest's unique `video_id` (dataset/method/relative path), never by a
folder or file name: FF++'s `Deepfakes/000_003` and `Face2Face/000_003` are
different videos.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple, Sequence

import numpy as np

from ddtool.errors import ConfigError, InputError
from ddtool.evaluate.rules import RULES, check_rule  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import pandas as pd

TOP_FRACTION = 0.25
CONFIDENT_MARGIN = 0.25
# Columns that describe the whole video; carried through when present.
VIDEO_COLUMNS = ("label", "domain", "method", "dataset", "split", "source_path")


def aggregate(scores: Sequence[float] | np.ndarray, rule: str = "mean", threshold: float = 0.5) -> float:
    """One score for a sequence of frame scores (see the module doc for the rules).

    NaN scores (frames the model could not score) are ignored; an empty or
    all-NaN sequence raises InputError.
    """
    check_rule(rule)
    values = np.asarray(scores, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise InputError("no frame scores to aggregate (no face was scored); check that faces were found")
    if rule == "mean":
        return float(values.mean())
    if rule == "median":
        return float(np.median(values))
    if rule == "max":
        return float(values.max())
    if rule == "top_k":
        k = max(1, math.ceil(TOP_FRACTION * values.size))
        return float(np.sort(values)[-k:].mean())
    if rule == "confident":
        confident = values[np.abs(values - 0.5) >= CONFIDENT_MARGIN]
        return float((confident if confident.size else values).mean())
    # vote
    return float((values >= threshold).mean())


def aggregate_video(frames: "pd.DataFrame", rule: str = "mean", threshold: float = 0.5) -> "pd.DataFrame":
    """Video-level scores from a frame table with `video_id`, `score` and optionally `track_id`.

    Each track is aggregated with `rule`; the video takes the maximum over its
    tracks. Returns one row per video: video_id, score, n_frames, n_tracks,
    plus label/domain/method/dataset/split/source_path when the input has them.
    A video whose frames disagree on the label raises InputError (a corrupt
    manifest would otherwise be scored silently).
    """
    check_rule(rule)
    missing = {"video_id", "score"} - set(frames.columns)
    if missing:
        raise InputError(f"frame table lacks column(s) {', '.join(sorted(missing))}; it needs video_id and score")
    if frames.empty:
        raise InputError("frame table is empty: nothing to aggregate")
    table = frames.copy()
    table["video_id"] = table["video_id"].astype(str)
    if "track_id" not in table.columns:
        table["track_id"] = 0
    # A missing track id means "the one face of this frame"; keep it as its own track.
    table["track_id"] = table["track_id"].replace("", np.nan).fillna(-1)

    scored = table[table["score"].notna()]
    by_track = scored.groupby(["video_id", "track_id"], sort=True)["score"]
    if rule in ("mean", "median", "max"):
        track_scores = by_track.agg(rule)
    else:
        track_scores = by_track.agg(lambda values: aggregate(values.to_numpy(dtype=np.float64), rule, threshold))
    by_video = table.groupby("video_id", sort=True)
    import pandas as pd  # here: scan aggregates its scores without pandas (start-up)

    result = pd.DataFrame({
        "score": track_scores.groupby(level="video_id").max(),
        "n_frames": scored.groupby("video_id")["score"].size(),
        "n_tracks": track_scores.groupby(level="video_id").size(),
    }).reindex(by_video.size().index)
    result["score"] = result["score"].astype(float)  # a video with no scored face stays NaN
    result[["n_frames", "n_tracks"]] = result[["n_frames", "n_tracks"]].fillna(0).astype(int)

    for column in VIDEO_COLUMNS:
        if column not in table.columns:
            continue
        if column == "label":
            conflicting = by_video["label"].nunique()
            if (conflicting > 1).any():
                video_id = conflicting[conflicting > 1].index[0]
                raise InputError(
                    f"video {video_id!r} has frames labelled both real and fake; fix the manifest (one label per video_id)"
                )
        result[column] = by_video[column].first()
    result = result.reset_index()
    if "label" in result.columns:
        result["label"] = result["label"].astype(int)
    return result


class Segment(NamedTuple):
    """A stretch of a video where the fake score stays high (times in seconds)."""

    start: float
    end: float
    peak: float
    mean: float


def suspicious_segments(
    timestamps: Sequence[float] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
    min_len: float = 0.0,
    gap: float = 1.0,
) -> list[Segment]:
    """Time segments whose frames score at or above `threshold`.

    Suspicious frames (score >= threshold) closer than or equal to `gap`
    seconds apart join one segment, bridging short dips (a frame or two of
    lower score inside a manipulated stretch). A segment runs from its first
    to its last suspicious frame; segments shorter than `min_len` seconds are
    dropped (a lone frame lasts 0 s, so `min_len=0` keeps it). `peak` is the
    highest score in the segment and `mean` the mean score of every frame
    inside [start, end], dips included. NaN scores (no face) are skipped.
    """
    times = np.asarray(timestamps, dtype=np.float64).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if times.shape != values.shape:
        raise InputError(f"timestamps ({times.size}) and scores ({values.size}) differ in length")
    if gap < 0 or min_len < 0:
        raise ConfigError("gap and min_len must be >= 0 seconds")
    keep = ~(np.isnan(times) | np.isnan(values))
    order = np.argsort(times[keep], kind="stable")
    times, values = times[keep][order], values[keep][order]

    hits = np.flatnonzero(values >= threshold)
    segments: list[Segment] = []
    if hits.size == 0:
        return segments
    runs: list[tuple[int, int]] = []
    first = last = hits[0]
    for index in hits[1:]:
        if times[index] - times[last] <= gap:
            last = index
        else:
            runs.append((first, last))
            first = last = index
    runs.append((first, last))

    for first, last in runs:
        start, end = float(times[first]), float(times[last])
        if end - start < min_len:
            continue
        inside = values[first : last + 1]
        segments.append(Segment(start, end, float(inside.max()), float(inside.mean())))
    return segments
