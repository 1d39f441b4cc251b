"""Peak memory of a folder scan against the number of inputs: does it stay flat?

    .venv/bin/python benchmarks/scan_folder_memory.py [--counts 20,2000] [--frames 4] [--no-report] [--untrained-ldfnet]

Builds a folder of N short clips (2 s, 320x240, 10 fps, the astronaut face
drifting over a grey canvas; cached in the temp folder), then runs
`ddtool scan FOLDER --out OUT` in a fresh process for each N and prints that
process's peak resident memory (ru_maxrss from wait4). The detectors are
what a plain `ddtool scan` runs (the default panel, on onnxruntime);
--untrained-ldfnet scans with an untrained LDFnet on torch instead (the
figures measured before the ONNX exports). Flat means the peak does not
grow with N: each input's evidence (face crops, frame thumbnails) is
written and dropped as it finishes, and only a small index row per input
is kept.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def build_clip(path: Path, seed: int, seconds: int = 2, fps: int = 10, size=(320, 240)) -> None:
    face = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (150, 150))
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    rng = np.random.default_rng(seed)
    x0, y0 = int(rng.integers(10, w - 170)), int(rng.integers(10, h - 160))
    for i in range(seconds * fps):
        canvas = np.full((h, w, 3), 90, np.uint8)
        x, y = x0 + (i % 10), y0 + (i % 5)
        canvas[y : y + 150, x : x + 150] = face
        writer.write(canvas)
    writer.release()


def build_folder(count: int) -> Path:
    folder = Path(tempfile.gettempdir()) / f"ddtool_bench_scanfolder_{count}"
    if folder.is_dir() and len(list(folder.glob("*.mp4"))) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        build_clip(folder / f"clip_{i:05d}.mp4", seed=i)
    return folder


def peak_rss_of_scan(folder: Path, out: Path, frames: int, report: bool, untrained_ldfnet: bool) -> tuple[float, float, int]:
    """(peak RSS in MiB, wall seconds, exit code) of one `ddtool scan` process."""
    command = [sys.executable, "-m", "ddtool", "scan", str(folder), "--out", str(out), "--frames", str(frames)]
    command += (["--model", "ldfnet", "--untrained"] if untrained_ldfnet else []) + ([] if report else ["--no-report"])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    return usage.ru_maxrss / 1024, time.perf_counter() - started, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="20,2000", help="numbers of inputs to scan, comma separated")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--no-report", action="store_true", help="skip report.html (no Grad-CAM, no evidence images)")
    parser.add_argument("--untrained-ldfnet", action="store_true", help="an untrained LDFnet on torch instead of the default panel")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"# load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; detectors: {'untrained ldfnet (torch)' if args.untrained_ldfnet else 'default panel'}; "
          f"frames {args.frames}; report {'no' if args.no_report else 'yes'}")
    print(f"{'inputs':>7} {'peak RSS MiB':>13} {'wall s':>8} {'s/input':>8} {'exit':>5}")
    for count in counts:
        folder = build_folder(count)
        out = Path(tempfile.mkdtemp(prefix="ddtool_bench_scanout_"))
        try:
            rss, wall, code = peak_rss_of_scan(folder, out, args.frames, not args.no_report, args.untrained_ldfnet)
            reports = len(list(out.glob("*/report.html")))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(f"{count:>7} {rss:>13.1f} {wall:>8.1f} {wall / count:>8.2f} {code:>5}  ({reports} reports written)")


if __name__ == "__main__":
    main()
