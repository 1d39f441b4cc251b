"""Face-cache extraction and noise-feature speed on generated face videos.

Usage: .venv/bin/python benchmarks/bench_extract.py [--videos 6] [--frames 8] [--workers 1]
Prints seconds per video, per crop, crop file size and noise-feature time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import face_frames, write_video  # noqa: E402

from ddtool.data.extract import ExtractOptions, extract  # noqa: E402
from ddtool.features.noise import compute_noise_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        for cls in ("real", "fake"):
            (root / cls).mkdir(parents=True)
        frames = face_frames(60)
        for i in range(args.videos):
            write_video(root / ("real" if i % 2 == 0 else "fake") / f"v{i}.mp4", frames)
        cache = Path(tmp) / "cache"
        start = time.perf_counter()
        summary = extract(root, cache, options=ExtractOptions(frames=args.frames), workers=args.workers)
        elapsed = time.perf_counter() - start
        sizes = [p.stat().st_size for p in (cache / "crops").rglob("*.png")]
        print(f"extract: {summary.n_crops} crops from {summary.n_items} videos (320x240) in {elapsed:.2f} s "
              f"= {elapsed / summary.n_items:.2f} s/video, {1000 * elapsed / max(1, summary.n_crops):.0f} ms/crop "
              f"(workers={args.workers})")
        print(f"crop PNG 256x256: mean {sum(sizes) / len(sizes) / 1024:.0f} KiB")
        start = time.perf_counter()
        compute_noise_features(cache)
        elapsed = time.perf_counter() - start
        print(f"features noise: {1000 * elapsed / summary.n_crops:.1f} ms/crop")


if __name__ == "__main__":
    main()
