"""Faces/s of `ddtool extract` against decoding, on an FF++-style layout of real H.264 videos.

    python benchmarks/bench_extract.py [--videos 8] [--frames 16] [--detector hog] [--workers 1] [--threads 1]

The layout is built in a temp folder from links to ../shared/realdf-dev
videos (H.264, libx264 CRF 23, about FF++ c23): real halves as
original_sequences/youtube/c23/videos/NNN.mp4, their DeepFaceLive halves as
manipulated_sequences/Deepfakes/c23/videos/NNN_NNN.mp4, so `extract` reads
it with its ffpp layout. Without realdf-dev, generated 320x240 mp4v face
videos are used (tests/conftest.py), in the same layout. Prints:
- decode every frame: all frames of every video, frames/s (the upper bound
  of any pass over the videos);
- decode the sampled frames: the frames extract samples (--frames evenly
  spaced), read the way extract reads them;
- extract: the whole command (index, decode, detect, crop, PNG write,
  manifest), faces/s and seconds per video, and the ratio to decoding the
  same sampled frames;
- crop PNG size and the noise-feature time per crop.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

REPO = Path(__file__).resolve().parents[1]
REALDF = REPO.parent / "shared" / "realdf-dev"
sys.path.insert(0, str(REPO / "tests"))


def ffpp_layout(root: Path, videos: int) -> list[Path]:
    """Links to realdf-dev videos (half real, half fake) in an FF++ folder layout; generated videos without it."""
    real_dir = root / "original_sequences" / "youtube" / "c23" / "videos"
    fake_dir = root / "manipulated_sequences" / "Deepfakes" / "c23" / "videos"
    real_dir.mkdir(parents=True)
    fake_dir.mkdir(parents=True)
    if (REALDF / "labels.csv").is_file():
        rows = [r for r in csv.DictReader((REALDF / "labels.csv").open(encoding="utf-8")) if r["path"].startswith("videos/")]
        real = [r for r in rows if r["label"] == "0"][: (videos + 1) // 2]
        fake = [r for r in rows if r["label"] == "1"][: videos // 2]
        out = []
        for i, r in enumerate(real):
            (real_dir / f"{i:03d}.mp4").symlink_to(REALDF / r["path"])
            out.append(real_dir / f"{i:03d}.mp4")
        for i, r in enumerate(fake):
            (fake_dir / f"{i:03d}_{i + 500:03d}.mp4").symlink_to(REALDF / r["path"])
            out.append(fake_dir / f"{i:03d}_{i + 500:03d}.mp4")
        return out
    from conftest import face_frames, write_video

    frames = face_frames(60)
    return [write_video((real_dir if i % 2 == 0 else fake_dir) / f"{i:03d}{'' if i % 2 == 0 else f'_{i + 500:03d}'}.mp4", frames)
            for i in range(videos)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16, help="frames sampled per video (evenly spaced)")
    parser.add_argument("--detector", default="hog", help="face detector (extract's default: hog, the papers')")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from ddtool.data.extract import ExtractOptions, extract
    from ddtool.features.noise import compute_noise_features
    from ddtool.media.video import probe, read_frames, sample_indices

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ffpp"
        paths = ffpp_layout(root, args.videos)
        infos = [probe(p) for p in paths]
        source = "realdf-dev (H.264)" if (REALDF / "labels.csv").is_file() else "generated 320x240 mp4v"
        print(f"{len(paths)} videos from {source}: {sum(i.frame_count for i in infos)} frames, "
              f"{infos[0].width}x{infos[0].height} first; detector {args.detector}, {args.frames} frames each, workers {args.workers}")

        # Wall time, and this process's CPU time (steadier on a shared machine; with --workers > 1
        # the workers' CPU is not counted, so compare CPU only at --workers 1).
        tick, cpu = time.perf_counter(), time.process_time()
        every = sum(sum(1 for _ in read_frames(p, range(i.frame_count))) for p, i in zip(paths, infos))
        decode_all, cpu_all = time.perf_counter() - tick, time.process_time() - cpu
        print(f"decode every frame:      {every} frames in {decode_all:.2f} s ({cpu_all:.2f} s CPU) = {every / decode_all:.0f} frames/s")

        tick, cpu = time.perf_counter(), time.process_time()
        sampled = sum(sum(1 for _ in read_frames(p, sample_indices(i.frame_count, frames=args.frames))) for p, i in zip(paths, infos))
        decode_sampled, cpu_sampled = time.perf_counter() - tick, time.process_time() - cpu
        print(f"decode sampled frames:   {sampled} frames in {decode_sampled:.2f} s ({cpu_sampled:.2f} s CPU) = {sampled / decode_sampled:.0f} frames/s")

        cache = Path(tmp) / "cache"
        tick, cpu = time.perf_counter(), time.process_time()
        summary = extract(root, cache, options=ExtractOptions(frames=args.frames, detector=args.detector), workers=args.workers)
        elapsed, cpu_extract = time.perf_counter() - tick, time.process_time() - cpu
        print(f"extract:                 {summary.n_crops} faces from {summary.n_items} videos in {elapsed:.2f} s "
              f"({cpu_extract:.2f} s CPU) = {summary.n_crops / elapsed:.1f} faces/s ({summary.n_crops / max(1e-9, cpu_extract):.1f} per CPU s), "
              f"{elapsed / max(1, summary.n_items):.2f} s/video")
        print(f"  extract / decoding the sampled frames: {elapsed / decode_sampled:.1f}x wall, {cpu_extract / max(1e-9, cpu_sampled):.1f}x CPU; "
              f"extract / decoding every frame: {elapsed / decode_all:.2f}x wall, {cpu_extract / max(1e-9, cpu_all):.2f}x CPU")
        sizes = [p.stat().st_size for p in (cache / "crops").rglob("*.png")]
        if sizes:
            print(f"crop PNG 256x256: mean {sum(sizes) / len(sizes) / 1024:.0f} KiB")
            tick = time.perf_counter()
            compute_noise_features(cache)
            print(f"features noise: {1000 * (time.perf_counter() - tick) / summary.n_crops:.1f} ms/crop")


if __name__ == "__main__":
    main()
