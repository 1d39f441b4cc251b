"""Does the scorer's thread count pay? `ddtool scan` with its default threads against given `--threads`, interleaved.

    python benchmarks/scoring_threads.py [VIDEO] [--threads 1,2] [--runs 8] [--frames 32] [--weights W] [--command-runs 3]

Each variant is one `ScanOptions(threads=...)` ("default": none given, so ddtool.device.scoring_threads chooses:
one stage's share, or every core for a model heavy per face such as the CLIP probe). Panels and face detectors are
loaded once per variant, outside the timing; runs are interleaved (A/B/A/B) so a change of load hits all variants
alike. Prints min / median / max wall and process CPU seconds of `scan_file` per variant, and with --command-runs
the same for whole `python -m ddtool scan VIDEO --json` processes. VIDEO defaults to benchmarks/scan.py's synthetic
720p clip.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=None)
    parser.add_argument("--threads", default="1", help="comma-separated --threads values compared with the default")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--weights", default=None, help="a checkpoint (default: the shipped panel)")
    parser.add_argument("--command-runs", type=int, default=0)
    args = parser.parse_args()

    from scan import build_video, fmt, spread

    from ddtool.device import scoring_threads
    from ddtool.models.loader import spec_of
    from ddtool.scan.panel import panel_for
    from ddtool.scan.pipeline import ScanOptions, make_extractor, scan_file

    video = args.video or build_video(Path(tempfile.gettempdir()) / "ddtool_bench_60s_720p.mp4")
    variants: dict[str, int | None] = {"default": None, **{f"--threads {t}": int(t) for t in args.threads.split(",") if t.strip()}}
    loaded = {}
    for name, threads in variants.items():
        options = ScanOptions(weights=args.weights, frames=args.frames, threads=threads)
        panel = panel_for(options)
        loaded[name] = (options, panel, make_extractor(options, panel))
        scoring = ", ".join(f"{m.key} {scoring_threads(threads, spec_of(m.card).heavy_per_face)}" for m in panel.members)
        print(f"{name}: scoring threads {scoring}", file=sys.stderr)
    print(f"video {video}, {args.frames} frames, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", file=sys.stderr)
    walls = {name: [] for name in variants}
    cpus = {name: [] for name in variants}
    for run in range(args.runs):
        for name, (options, panel, extractor) in loaded.items():
            tick, cpu = time.perf_counter(), time.process_time()
            scan_file(video, options, panel, extractor)
            walls[name].append(time.perf_counter() - tick)
            cpus[name].append(time.process_time() - cpu)
        print(f"  run {run + 1}/{args.runs}: " + ", ".join(f"{n} {walls[n][-1]:.2f} s" for n in variants), file=sys.stderr)
    commands = {name: [] for name in variants}
    for run in range(args.command_runs):
        for name, threads in variants.items():
            line = [sys.executable, "-m", "ddtool", "scan", str(video), "--frames", str(args.frames), "--json"]
            line += (["--weights", args.weights] if args.weights else []) + (["--threads", str(threads)] if threads else [])
            tick = time.perf_counter()
            subprocess.run(line, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            commands[name].append(time.perf_counter() - tick)
    print("\n| variant | scan wall (min / median / max) | scan CPU | whole command |")
    print("|---|---|---|---|")
    for name in variants:
        print(f"| {name} | {fmt(spread(walls[name]))} | {fmt(spread(cpus[name]))} | {fmt(spread(commands[name])) if commands[name] else '-'} |")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end; {args.runs} interleaved runs")


if __name__ == "__main__":
    main()
