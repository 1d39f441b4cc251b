"""Frame -> track -> video aggregation and suspicious segments on hand-made scores."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ddtool.errors import ConfigError, InputError
from ddtool.evaluate.aggregate import Segment, aggregate, aggregate_video, suspicious_segments

SCORES = [0.1, 0.2, 0.9, 0.95, 0.5, 0.55, 0.3, 0.8]


def test_simple_rules():
    assert aggregate(SCORES, "mean") == pytest.approx(np.mean(SCORES))
    assert aggregate(SCORES, "median") == pytest.approx(0.525)
    assert aggregate(SCORES, "max") == pytest.approx(0.95)


def test_top_k_is_mean_of_top_quarter():
    # 8 frames -> top 2: 0.95 and 0.9
    assert aggregate(SCORES, "top_k") == pytest.approx(0.925)
    # 3 frames -> ceil(0.75) = 1 frame
    assert aggregate([0.1, 0.7, 0.2], "top_k") == pytest.approx(0.7)


def test_confident_ignores_undecided_frames():
    # confident frames: 0.1, 0.2, 0.9, 0.95, 0.8 (0.5, 0.55, 0.3 are within 0.25 of 0.5)
    assert aggregate(SCORES, "confident") == pytest.approx(np.mean([0.1, 0.2, 0.9, 0.95, 0.8]))
    # nothing confident: falls back to the mean
    assert aggregate([0.4, 0.6, 0.55], "confident") == pytest.approx(np.mean([0.4, 0.6, 0.55]))


def test_vote_is_fraction_of_fake_frames():
    assert aggregate(SCORES, "vote") == pytest.approx(5 / 8)  # 0.9, 0.95, 0.5, 0.55, 0.8
    assert aggregate([0.1, 0.9], "vote") == pytest.approx(0.5)  # tie -> 0.5 -> judged fake at >= 0.5
    assert aggregate([0.6, 0.7], "vote", threshold=0.65) == pytest.approx(0.5)


def test_nan_frames_ignored_and_empty_rejected():
    assert aggregate([0.2, float("nan"), 0.4], "mean") == pytest.approx(0.3)
    with pytest.raises(InputError):
        aggregate([], "mean")
    with pytest.raises(InputError):
        aggregate([float("nan")], "max")
    with pytest.raises(ConfigError, match="unknown aggregation rule"):
        aggregate(SCORES, "avg")


def test_video_is_max_over_tracks_so_one_fake_face_is_not_diluted():
    frames = pd.DataFrame(
        {
            "video_id": ["v"] * 12,
            "track_id": [0] * 4 + [1] * 4 + [2] * 4,
            "score": [0.1, 0.2, 0.1, 0.2] + [0.15, 0.1, 0.2, 0.1] + [0.9, 0.8, 0.85, 0.95],
            "label": [1] * 12,
        }
    )
    video = aggregate_video(frames, "mean")
    assert len(video) == 1
    assert video.loc[0, "score"] == pytest.approx(0.875)
    assert video.loc[0, "n_tracks"] == 3
    assert video.loc[0, "n_frames"] == 12
    # pooling all frames would have diluted the swapped face below 0.5
    assert frames["score"].mean() < 0.5


def test_grouping_uses_video_id_not_file_name():
    frames = pd.DataFrame(
        {
            "video_id": ["ffpp/Deepfakes/000_003.mp4"] * 2 + ["ffpp/Face2Face/000_003.mp4"] * 2 + ["ffpp/real/000.mp4"] * 2,
            "score": [0.9, 0.7, 0.3, 0.5, 0.1, 0.2],
            "label": [1, 1, 1, 1, 0, 0],
            "method": ["Deepfakes"] * 2 + ["Face2Face"] * 2 + ["real"] * 2,
        }
    )
    video = aggregate_video(frames, "mean").set_index("video_id")
    assert len(video) == 3
    assert video.loc["ffpp/Deepfakes/000_003.mp4", "score"] == pytest.approx(0.8)
    assert video.loc["ffpp/Face2Face/000_003.mp4", "score"] == pytest.approx(0.4)
    assert video.loc["ffpp/Face2Face/000_003.mp4", "method"] == "Face2Face"
    assert video.loc["ffpp/real/000.mp4", "label"] == 0


def test_video_with_conflicting_labels_is_rejected():
    frames = pd.DataFrame({"video_id": ["v", "v"], "score": [0.1, 0.2], "label": [0, 1]})
    with pytest.raises(InputError, match="labelled both"):
        aggregate_video(frames)


def test_missing_track_ids_form_one_track():
    frames = pd.DataFrame({"video_id": ["v"] * 3, "track_id": [np.nan] * 3, "score": [0.2, 0.4, 0.6]})
    video = aggregate_video(frames, "median")
    assert video.loc[0, "score"] == pytest.approx(0.4)
    assert video.loc[0, "n_tracks"] == 1


def test_suspicious_segments_hand_made_timeline():
    times = np.arange(0, 10, 0.5)  # 20 frames, 2 per second
    scores = np.full(times.size, 0.1)
    scores[4:9] = [0.7, 0.9, 0.3, 0.8, 0.6]  # 2.0 .. 4.0 s with a dip at 3.0 s
    scores[14] = 0.95  # lone frame at 7.0 s
    segments = suspicious_segments(times, scores, threshold=0.5, min_len=0.0, gap=0.5)
    assert segments[0] == Segment(2.0, 2.5, 0.9, pytest.approx(0.8))
    assert segments[1] == Segment(3.5, 4.0, 0.8, pytest.approx(0.7))
    assert segments[2] == Segment(7.0, 7.0, 0.95, 0.95)

    bridged = suspicious_segments(times, scores, threshold=0.5, min_len=0.0, gap=1.0)
    assert len(bridged) == 2
    start, end, peak, mean = bridged[0]
    assert (start, end, peak) == (2.0, 4.0, 0.9)
    assert mean == pytest.approx(np.mean([0.7, 0.9, 0.3, 0.8, 0.6]))  # the dip counts in the mean

    long_only = suspicious_segments(times, scores, threshold=0.5, min_len=1.0, gap=1.0)
    assert [(s.start, s.end) for s in long_only] == [(2.0, 4.0)]


def test_suspicious_segments_unsorted_and_nan_input():
    times = [2.0, 0.0, 1.0, 3.0]
    scores = [0.9, 0.8, float("nan"), 0.2]
    segments = suspicious_segments(times, scores, threshold=0.5, gap=2.0)
    assert segments == [Segment(0.0, 2.0, 0.9, pytest.approx(0.85))]
    assert suspicious_segments(times, [0.1] * 4) == []
    with pytest.raises(InputError):
        suspicious_segments([0.0, 1.0], [0.5])
    assert not math.isnan(segments[0].mean)
