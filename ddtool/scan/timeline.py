"""The score timeline: the score per sampled frame (panel score or P(fake)), one line per face track."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def timeline_png(result) -> bytes:
    """PNG bytes: score per frame per track, the threshold line, suspicious segments shaded."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    use_time = result.kind == "video" and all(math.isfinite(f.timestamp) for f in result.frames)
    by_track: dict[int, list] = {}
    for frame in result.frames:
        by_track.setdefault(frame.track_id, []).append(frame)
    for track_id in sorted(by_track):
        frames = sorted(by_track[track_id], key=lambda f: f.frame_index)
        xs = [f.timestamp if use_time else f.frame_index for f in frames]
        ax.plot(xs, [f.score for f in frames], marker="o", markersize=3, linewidth=1.2, label=f"face {track_id}")
    for seg in result.segments:
        start = seg["start"] if use_time else seg["start_frame"]
        end = seg["end"] if use_time else seg["end_frame"]
        # A one-sample segment has zero width; widen it so it stays visible.
        pad = 0.0 if end > start else (0.15 if use_time else 0.5)
        ax.axvspan(start - pad, end + pad, color="red", alpha=0.15, linewidth=0)
    panel = result.score_kind == "panel"
    if panel:
        # A panel's score is a mean reference percentile with an uncertain band, not a P(fake) with one cut.
        low, high = result.band
        if low < high:  # a band may have no uncertain zone: then one cut, fake from it, real below
            ax.axhspan(low, high, color="goldenrod", alpha=0.12, linewidth=0, label=f"uncertain {low:g}-{high:g}")
            ax.axhline(low, color="black", linestyle=":", linewidth=1, label=f"real below {low:g}")
        ax.axhline(high, color="black", linestyle="--", linewidth=1, label=f"fake from {high:g}" + ("" if low < high else ", real below"))
    else:
        ax.axhline(result.threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {result.threshold:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)" if use_time else "frame")
    ax.set_ylabel("panel score" if panel else "P(fake)")
    from ddtool.scan.wording import headline

    verdict = headline(result.verdict, result.strength()["level"])  # the report's words: never a bare REAL
    title = f"{verdict}  score {result.score:.3f}" if result.score is not None else verdict
    if result.model.get("untrained"):
        title = "UNTRAINED MODEL (meaningless scores) - " + title
    ax.set_title(title, fontsize=10, color="red" if result.model.get("untrained") else "black")
    if not result.frames:
        ax.text(0.5, 0.5, "no face found in the sampled frames", ha="center", va="center", transform=ax.transAxes)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
