"""Speed of the evaluation arithmetic on realistic sizes (prints figures; no assertions).

120k face scores is a Celeb-DF v2 test cache at the papers' protocol; 100
crops per video gives 1200 videos.

    .venv/bin/python benchmarks/bench_eval_metrics.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ddtool.evaluate.aggregate import aggregate_video, suspicious_segments
from ddtool.evaluate.metrics import compute_metrics


def timed(label: str, fn, repeat: int = 3) -> None:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    print(f"{label:<48} {best * 1000:8.1f} ms")


def main() -> None:
    rng = np.random.default_rng(0)
    n = 120_000
    labels = rng.integers(0, 2, n)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    timed(f"compute_metrics, {n} scores", lambda: compute_metrics(labels, scores))
    frames = pd.DataFrame({
        "video_id": np.repeat([f"celebdf/m/{i:05d}.mp4" for i in range(n // 100)], 100),
        "track_id": np.tile(np.repeat([0, 1], 50), n // 100),
        "score": scores,
        "label": np.repeat(labels[: n // 100], 100),
    })
    for rule in ("mean", "top_k"):
        timed(f"aggregate_video {rule}, {n // 100} videos x 2 tracks", lambda: aggregate_video(frames, rule))
    times = np.arange(3000) / 25.0
    timed("suspicious_segments, 3000-frame timeline", lambda: suspicious_segments(times, rng.random(3000), 0.5, 0.0, 1.0))


if __name__ == "__main__":
    main()
