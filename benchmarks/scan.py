"""How long `ddtool scan` takes on a video, against decoding the same sampled frames alone, and as a whole command.

    python benchmarks/scan.py [VIDEO] [--runs 5] [--engines auto,torch] [--command-runs 5] [--json OUT]
                              [--detector NAME] [--model sfic_resnet26 | --weights W] [--frames 32] [--threads N]
    python benchmarks/scan.py --write-h264 OUT.mp4 --size 1920x1080 [--source CLIP]   # make a test clip

Reports, each as min / median / max over --runs (the runs of every variant
interleaved, A/B/A/B, so a change of load hits them alike):
- decode-only: decoding the --frames sampled frames alone (what the 2x and 1.5x goals are measured against);
- scan, per engine in --engines: `scan_file` as `ddtool scan` runs it (decode, detect, crop and score overlapped),
  its ratio to decode-only, its CPU time, and each stage's own time in the fastest run. Engine `auto` is what
  scan runs (onnxruntime where a card has an ONNX export, torch otherwise); `torch` forces torch for every model
  (the path before ONNX exports);
- CPU split: each step alone on the same frames (process CPU seconds move less than wall time under load);
- whole command (--command-runs N): `python -m ddtool scan VIDEO --frames F --json` in a fresh process, start to
  exit, which is what a user waits for (Python start-up, imports, loading, scan); with `torch` in --engines also
  with a copy of the weights folder whose cards have no ONNX export (so the command falls back to torch).

Without --model or --weights it times what a plain `ddtool scan` runs: the default panel and face detector. With
--model the model is untrained at its paper input size (torch; speed does not depend on the weights). VIDEO is any
video file; without it a synthetic one is used (the astronaut face moving over a grey canvas, 60 s 720p OpenCV mp4v,
written once to the temp folder). Speed depends on the machine and its load: note both beside any figure you quote.

--write-h264 makes a real H.264 test clip with PyAV: every frame of --source (default: a real realdf-dev clip)
resized (bicubic) to --size and encoded with libx264, CRF 23, x264's default keyframe interval (250).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALDF_CLIP = REPO.parent / "shared" / "realdf-dev" / "videos" / "real" / "dflive-original_DeepFaceLive_David_Kovalniy__David_Kovalniy_1.mp4"


def build_video(path: Path, seconds: int = 60, fps: int = 25, size=(1280, 720)) -> Path:
    if path.exists():
        return path
    face = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (360, 360))
    w, h = size
    tmp = path.with_name(path.stem + ".partial.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(seconds * fps):
        canvas = np.full((h, w, 3), 90, np.uint8)
        # Slow circular motion so the tracker and the seeks see a moving face.
        x = int((w - 360) / 2 + 300 * np.sin(i / 40))
        y = int((h - 360) / 2 + 120 * np.cos(i / 55))
        canvas[y : y + 360, x : x + 360] = face
        writer.write(canvas)
    writer.release()
    tmp.replace(path)
    return path


def write_h264(out: Path, size: tuple[int, int], source: Path = REALDF_CLIP, crf: int = 23) -> Path:
    """Re-encode `source` at `size` (w, h) as H.264 (libx264) with PyAV; written to a temp name, then renamed."""
    import av

    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SystemExit(f"error: cannot open {source}; pass --source CLIP")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    tmp = out.with_name(out.stem + ".partial.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": str(crf)}
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frame = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cap.release()
    tmp.replace(out)
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "runs": len(values)}


def fmt(s: dict[str, float], unit: str = "s") -> str:
    return f"{s['min']:.2f} / {s['median']:.2f} / {s['max']:.2f} {unit}"


def cpu_split(video: Path, indices, panels: dict, extractors: dict, engine: str, threads: int) -> dict[str, float]:
    """Each step alone, in this process's CPU seconds: on a shared machine wall time
    swings with the other jobs' load, CPU time much less. On an idle machine with
    the steps overlapped, the scan's wall time is at most about their sum."""
    from ddtool.media.faces import FaceCrop, crop_face
    from ddtool.media.video import read_frames
    from ddtool.scan.pipeline import SCORE_CHUNK

    from ddtool.device import torch_threads

    panel, extractor = panels[engine], extractors[engine]
    torch_threads(threads)  # torch (when loaded) with scan's stage threads, as in its scorer thread
    cpu = time.process_time()
    frames = list(read_frames(video, indices))
    split = {"decode": time.process_time() - cpu}
    cpu = time.process_time()
    boxes = [extractor.detector.detect(frame.image) for frame in frames]
    split["detect"] = time.process_time() - cpu
    cpu = time.process_time()
    crops = []
    for frame, found in zip(frames, boxes):
        if found:  # the largest face, as scan keeps, cut in every panel member's view
            box = max(found, key=lambda b: b.area)
            crops.append(FaceCrop(frame.index, frame.timestamp, box, 0,
                                  crop_face(frame.image, box, margin=extractor.margin, size=extractor.size),
                                  {key: cut(frame.image, box) for key, cut in extractor.views.items()}))
    split["crop"] = time.process_time() - cpu
    for member in panel.members:
        cpu = time.process_time()
        if crops:
            member.fake_probability([c.views[member.key] for c in crops], batch=SCORE_CHUNK)  # scan's chunk
        split[f"model:{member.key}"] = time.process_time() - cpu
    split["faces"] = len(crops)
    split["frames"] = len(frames)
    return split


def weights_without_exports(folder: Path) -> Path:
    """A copy of the weights folder whose cards name no ONNX export: a whole `ddtool scan` on torch, as before the exports."""
    from ddtool.weights import shipped_weights_dir

    source = shipped_weights_dir()
    top = os.path.realpath(source)
    shutil.copytree(source, folder, dirs_exist_ok=True,  # the detectors' exports are left out, not the face detector's network
                    ignore=lambda here, names: [n for n in names if n.endswith(".onnx") and os.path.realpath(here) == top])
    for card in folder.glob("*.json"):
        data = json.loads(card.read_text(encoding="utf-8"))
        if isinstance(data, dict) and ("onnx" in data or "model_spec" in data):
            data.pop("onnx", None), data.pop("model_spec", None)
            card.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return folder


def whole_command(video: Path, frames: int, runs: int, variants: dict[str, dict[str, str]], extra: list[str] | None = None) -> dict[str, dict]:
    """Wall seconds of `python -m ddtool scan VIDEO --frames F --json [EXTRA]` in a fresh process per run, variants interleaved
    (EXTRA: the --weights, --detector and --threads this benchmark was given, so the command scores what the scan rows did)."""
    command = [sys.executable, "-m", "ddtool", "scan", str(video), "--frames", str(frames), "--json", *(extra or [])]
    walls: dict[str, list[float]] = {name: [] for name in variants}
    codes: dict[str, int] = {}
    for run in range(runs):
        for name, env in variants.items():
            started = time.perf_counter()
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
            walls[name].append(time.perf_counter() - started)
            codes[name] = done.returncode
            print(f"  command run {run + 1}/{runs} {name}: {walls[name][-1]:.2f} s (exit {done.returncode})", file=sys.stderr)
    return {name: {**spread(values), "exit_code": codes[name], "command": " ".join(command[1:])} for name, values in walls.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=None, help="video to scan (default: the synthetic 720p clip)")
    parser.add_argument("--detector", default=None, help="face detector (default: scan's)")
    parser.add_argument("--model", default=None, help="untrained model at its paper input size")
    parser.add_argument("--weights", default=None, help="a checkpoint (default: the shipped panel)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per stage (default: scan's, ddtool.device.stage_threads)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant, interleaved")
    parser.add_argument("--engines", default="auto", help="comma-separated: auto (what scan runs), onnxruntime, torch")
    parser.add_argument("--command-runs", type=int, default=0, help="also time this many whole `ddtool scan` processes per variant")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--write-h264", type=Path, default=None, metavar="OUT", help="write an H.264 test clip and stop")
    parser.add_argument("--size", default="1920x1080", help="with --write-h264: WxH")
    parser.add_argument("--source", type=Path, default=REALDF_CLIP, help="with --write-h264: the clip to re-encode")
    args = parser.parse_args()
    if args.write_h264:
        w, h = (int(v) for v in args.size.lower().split("x"))
        print(f"wrote {write_h264(args.write_h264, (w, h), args.source)}")
        return
    from ddtool.device import scoring_threads, stage_threads
    from ddtool.media.video import probe, read_frames, sample_indices
    from ddtool.models.loader import spec_of
    from ddtool.scan.panel import load_panel
    from ddtool.scan.pipeline import ScanOptions, make_extractor, scan_file

    threads = stage_threads(args.threads)
    cv2.setNumThreads(threads)  # the CPU split runs each step alone in this thread with the threads scan gives each stage
    video = args.video or build_video(Path(tempfile.gettempdir()) / "ddtool_bench_60s_720p.mp4")
    info = probe(video)
    indices = sample_indices(info.frame_count, frames=args.frames)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    untrained = args.model is not None and args.weights is None
    options = ScanOptions(model=args.model, weights=args.weights, untrained=untrained, frames=args.frames, threads=args.threads)
    if args.detector:
        options.detector = args.detector
    def fresh_panels():
        # Loaded again before every run (outside the timing): each run scores as one `ddtool scan` does, first calls included,
        # and torch never reaches the frozen trace a long folder scan switches to (models.torch_scorer.FREEZE_AFTER_FACES).
        loaded = {engine: load_panel(None, args.model, args.weights, untrained, threads=args.threads, engine=engine, pipelined=True)
                  for engine in engines}
        return loaded, {engine: make_extractor(options, panel) for engine, panel in loaded.items()}

    panels, extractors = fresh_panels()
    print(f"video {video}: {info.width}x{info.height}, {info.frame_count} frames, {info.fps:g} fps; {len(indices)} sampled; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", file=sys.stderr)

    decode_wall, decode_cpu = [], []
    scans: dict[str, list[tuple[float, float, object]]] = {engine: [] for engine in engines}
    for run in range(args.runs):
        panels, extractors = fresh_panels()
        tick, cpu = time.perf_counter(), time.process_time()
        decoded = sum(1 for _ in read_frames(video, indices))
        decode_wall.append(time.perf_counter() - tick)
        decode_cpu.append(time.process_time() - cpu)
        for engine in engines:
            tick, cpu = time.perf_counter(), time.process_time()
            result = scan_file(video, options, panels[engine], extractors[engine])
            scans[engine].append((time.perf_counter() - tick, time.process_time() - cpu, result))
        print(f"  run {run + 1}/{args.runs}: decode-only {decode_wall[-1]:.2f} s, "
              + ", ".join(f"scan ({e}) {scans[e][-1][0]:.2f} s" for e in engines), file=sys.stderr)

    report = {
        "command": "python " + " ".join(sys.argv),
        "video": {"path": str(video), "width": info.width, "height": info.height, "frames_sampled": len(indices), "decoded": decoded},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0], "threads_per_stage": threads,
                    "scoring_threads": {m.key: scoring_threads(args.threads, spec_of(m.card).heavy_per_face) for m in panels[engines[0]].members}},
        "decode_only": {"wall": spread(decode_wall), "cpu": spread(decode_cpu)},
        "scan": {},
    }
    for engine in engines:
        walls = [w for w, _, _ in scans[engine]]
        best_wall, _, best = min(scans[engine], key=lambda item: item[0])
        panel = panels[engine]
        report["scan"][engine] = {
            "wall": spread(walls),
            "cpu": spread([c for _, c, _ in scans[engine]]),
            "ratio_to_decode_only": {"min": min(walls) / min(decode_wall), "median": statistics.median(walls) / statistics.median(decode_wall)},
            "members": [{"key": m.key, "model": m.name, "engine": m.engine, "input": list(m.input_hw), "crop": m.crop_style} for m in panel.members],
            "face_detector": extractors[engine].detector.name,
            "faces": len(best.frames),
            "stages_of_fastest_run": {k: round(v, 4) for k, v in best.timings.items()},
            "cpu_split_alone": cpu_split(video, indices, *fresh_panels(), engine, threads),
        }
    if args.command_runs:
        variants = {"auto": {}}
        if "torch" in engines:
            variants["torch"] = {"DDTOOL_WEIGHTS": str(weights_without_exports(Path(tempfile.mkdtemp(prefix="ddtool_weights_torch_"))))}
        extra = [w for flag, value in (("--weights", args.weights), ("--detector", args.detector), ("--threads", args.threads))
                 if value is not None for w in (flag, str(value))]
        report["whole_command"] = whole_command(video, args.frames, args.command_runs, variants, extra)

    print(f"\n{info.width}x{info.height}, {len(indices)} frames; min / median / max of {args.runs} interleaved runs; "
          f"load average {report['machine']['load_average_at_start']:.2f} at start, {os.cpu_count()} cores; threads: {threads} a stage, "
          f"scoring " + ", ".join(f"{k} {v}" for k, v in report["machine"]["scoring_threads"].items()) + "\n")
    print("| what | wall | CPU | scan / decode-only (min, median) |")
    print("|---|---|---|---|")
    print(f"| decode-only | {fmt(report['decode_only']['wall'])} | {fmt(report['decode_only']['cpu'])} | |")
    for engine, entry in report["scan"].items():
        ratio = entry["ratio_to_decode_only"]
        members = ", ".join(f"{m['key']} ({m['engine']})" for m in entry["members"])
        print(f"| scan, engine {engine}: {members} | {fmt(entry['wall'])} | {fmt(entry['cpu'])} | **{ratio['min']:.2f}x**, {ratio['median']:.2f}x |")
    for name, entry in report.get("whole_command", {}).items():
        print(f"| whole `ddtool scan` ({name}) | {fmt(entry)} | | exit {entry['exit_code']} |")
    for engine, entry in report["scan"].items():
        split = entry["cpu_split_alone"]
        faces = max(1, split["faces"])
        models = ", ".join(f"{k[6:]} {1000 * v / faces:.1f} ms/face" for k, v in split.items() if k.startswith("model:"))
        print(f"\n{engine}: CPU split alone: decode {split['decode']:.2f} s, detect {split['detect']:.2f} s "
              f"({1000 * split['detect'] / max(1, split['frames']):.1f} ms/frame), crop {split['crop']:.2f} s, {models}; "
              f"stages of the fastest scan: " + ", ".join(f"{k} {v:.2f}" for k, v in entry["stages_of_fastest_run"].items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
