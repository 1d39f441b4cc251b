"""Judging one scanned input, and the exit code of a whole scan.

`judge` turns the scored faces of a ScanResult into tracks, segments, a
score and a verdict (fusion rule and band: scan.calibration);
`claim_of` says what a verdict may claim at its strength, and
`exit_code_for_verdicts` is the documented exit code of `ddtool scan`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ddtool.evaluate.aggregate import aggregate, suspicious_segments
from ddtool.scan.calibration import band_for, reference_percentile, unusual_words, verdict_for

FAKE, REAL, UNCERTAIN, INCONCLUSIVE, ERROR = "fake", "real", "uncertain", "inconclusive", "error"


def judge(result, options, panel=None) -> None:
    """Fill tracks, score, verdict, segments (and the panel's per-detector rows) from result.frames.

    A calibrated panel's scores are panel scores (mean reference percentile):
    fake at or above band[1], real below band[0], uncertain between, where the
    band is calibration.band_for(result.kind) (a video has its own cut). Otherwise
    the one model's P(fake) against options.threshold: fake or real.
    """
    calibrated = panel is not None and panel.calibrated
    band = band_for(result.kind)
    result.threshold = band[1] if calibrated else options.threshold
    if panel is not None:
        result.panel = panel_rows(result, options, panel)
    if not result.frames:
        result.verdict, result.score = INCONCLUSIVE, None
        result.tracks, result.segments = [], []
        return
    by_track: dict[int, list] = {}
    for frame in result.frames:
        by_track.setdefault(frame.track_id, []).append(frame)
    gap = segment_gap([f.timestamp for f in result.frames], result.info.get("fps") or 0.0)
    tracks, segments = [], []
    for track_id in sorted(by_track):
        frames = sorted(by_track[track_id], key=lambda f: f.frame_index)
        values = np.array([f.score for f in frames])
        track = {
            "track_id": track_id,
            "faces": len(frames),
            "first_frame": frames[0].frame_index,
            "last_frame": frames[-1].frame_index,
            "score": aggregate(values, options.aggregate, result.threshold),
            "mean": aggregate(values, "mean"),
            "confident": aggregate(values, "confident"),
            "max": aggregate(values, "max"),
        }
        tracks.append({k: (round(v, 6) if isinstance(v, float) else v) for k, v in track.items()})
        if result.kind == "video":
            segments += track_segments(frames, track_id, result.threshold, gap)
    result.tracks = tracks
    result.segments = sorted(segments, key=lambda s: (s["start"], s["track_id"]))
    result.score = max(t["score"] for t in tracks)
    if calibrated:
        result.verdict = verdict_for(result.score, band)
    else:
        result.verdict = FAKE if result.score >= options.threshold else REAL


def panel_rows(result, options, panel) -> list[dict[str, Any]]:
    """One row per detector: its input score (track aggregate of its P(fake), max over tracks), operating point,
    reference percentile and its own call (flags: at or above its operating point)."""
    rows = []
    for member in panel.members:
        by_track: dict[int, list[float]] = {}
        for frame in result.frames:
            by_track.setdefault(frame.track_id, []).append(frame.scores[member.key])
        point = member.operating_point
        tracks = {t: aggregate(np.array(v), options.aggregate, point["threshold"] if point else options.threshold) for t, v in sorted(by_track.items())}
        score = max(tracks.values()) if tracks else None
        percentile = None if score is None or point is None else float(reference_percentile(score, point)[0])
        threshold = point["threshold"] if point else options.threshold
        rows.append({
            "name": member.key,
            "model": member.name,
            "weights": Path(member.weights_path).name if member.weights_path else None,
            "sha256": member.weights_sha256,
            "crop": member.crop_style,
            "score": None if score is None else round(float(score), 6),
            "tracks": [{"track_id": t, "score": round(float(v), 6)} for t, v in tracks.items()],
            "operating_point": threshold,
            "calibrated": point is not None,
            "reference_percentile": None if percentile is None else round(percentile, 4),
            "meaning": None if percentile is None else unusual_words(percentile),
            "verdict": None if score is None else ("flags" if score >= threshold else "below operating point"),
        })
    return rows


def segment_gap(timestamps: list[float], fps: float) -> float:
    """How far apart two suspicious samples may be and still join one segment (seconds).

    1.5 sampling intervals: neighbouring samples join, a single clean sample
    between them splits the segment; at least one second, as in the aggregate default.
    """
    times = np.unique(np.asarray([t for t in timestamps if math.isfinite(t)], dtype=np.float64))
    if times.size < 2:
        return 1.0
    return max(1.0, 1.5 * float(np.median(np.diff(times))))


def track_segments(frames: list, track_id: int, threshold: float, gap: float) -> list[dict[str, Any]]:
    times = np.array([f.timestamp for f in frames], dtype=np.float64)
    scores = np.array([f.score for f in frames], dtype=np.float64)
    found = []
    for seg in suspicious_segments(times, scores, threshold=threshold, gap=gap):
        inside = [f.frame_index for f in frames if seg.start <= f.timestamp <= seg.end]
        found.append(
            {
                "track_id": track_id,
                "start": round(seg.start, 3),
                "end": round(seg.end, 3),
                "start_frame": min(inside),
                "end_frame": max(inside),
                "peak": round(seg.peak, 6),
                "mean": round(seg.mean, 6),
            }
        )
    return found



EXIT_MANIPULATED = 1  # at least one input judged manipulated with high confidence, none failed
EXIT_FAILED_SOME = 6  # some inputs failed, no other input judged manipulated
EXIT_FAILED_SOME_FAKE = 7  # some inputs failed and at least one other was judged manipulated
EXIT_UNCERTAIN = 8  # none manipulated, none failed, at least one needs review (uncertain, or fake at low confidence)


def claim_of(verdict: str, level: str | None) -> str:
    """What a verdict may claim given its strength: a fake verdict at low confidence is a reason to look, not a finding.

    manipulated (fake, not low confidence) | review (uncertain, or fake at low confidence) |
    no_strong_evidence (real, any confidence: never a finding of authenticity) | inconclusive | error
    """
    if verdict == FAKE:
        return "review" if level == "low" else "manipulated"
    if verdict == UNCERTAIN:
        return "review"
    if verdict == REAL:
        return "no_strong_evidence"
    return verdict


def exit_code_for(results) -> int:
    return exit_code_for_verdicts([r.verdict for r in results], [r.strength().get("level") for r in results])


def exit_code_for_verdicts(verdicts: list[str], levels: list[str | None] | None = None) -> int:
    """The documented exit code of `ddtool scan` (docs/scan.md "Exit codes"): never more than the verdicts' strength supports.

    0 no strong evidence of manipulation in any input, 1 at least one manipulated (a fake verdict not at low
    confidence), 8 none manipulated but some need review (uncertain, or fake at low confidence), 4 nothing but
    inconclusive, 3 nothing could be scanned; 6 / 7 when some inputs failed (7: and another was judged manipulated).
    `levels` are the verdicts' strength levels (ScanResult.strength); without them a fake counts as manipulated.
    """
    levels = list(levels) if levels is not None else [None] * len(verdicts)
    claims = [claim_of(v, level) for v, level in zip(verdicts, levels)]
    scanned = [c for c in claims if c != ERROR]
    if not scanned:
        return 3
    manipulated = "manipulated" in scanned
    if len(scanned) < len(claims):
        return EXIT_FAILED_SOME_FAKE if manipulated else EXIT_FAILED_SOME
    if manipulated:
        return EXIT_MANIPULATED
    if "review" in scanned:
        return EXIT_UNCERTAIN
    if "no_strong_evidence" in scanned:
        return 0
    return 4
