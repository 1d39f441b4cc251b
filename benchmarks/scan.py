"""How long `ddtool scan` takes on a video, split into decode, face detection,
cropping and model, against decoding the same sampled frames alone.

    python benchmarks/scan.py [VIDEO] [--detector NAME] [--model sfic_resnet26 | --weights W] [--frames 32] [--threads N]
    python benchmarks/scan.py --write-h264 OUT.mp4 --size 1920x1080 [--source CLIP]   # make a test clip

Goal: a scan within 2x of decode-only time. VIDEO is any video file; without
it a synthetic one is used (the astronaut face moving over a grey canvas,
60 s 720p OpenCV mp4v, written once to the system temp folder). Without
--model or --weights it times what a plain `ddtool scan` runs: the default
shipped model at the size and crop margin its card records, and the default
face detector. With --model the model is untrained at its paper input size
(speed does not depend on the weights). Every stage time scan records is
printed, so a scan that scores several models (a panel) shows each one.

--write-h264 makes a real H.264 test clip with PyAV: every frame of
--source (default: a real realdf-dev clip) resized (bicubic) to --size and
encoded with libx264, CRF 23, x264's default keyframe interval (250).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


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


REALDF_CLIP = REPO.parent / "shared" / "realdf-dev" / "videos" / "real" / "dflive-original_DeepFaceLive_David_Kovalniy__David_Kovalniy_1.mp4"


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


def cpu_split(video: Path, indices, extractor, panel, decode_cpu: float) -> None:
    """Each step alone, in this process's CPU seconds: on a shared machine wall time
    swings with the other jobs' load, CPU time much less. On an idle machine with
    the steps overlapped, the scan's wall time is at most about their sum."""
    from ddtool.media.faces import FaceCrop, crop_face
    from ddtool.media.video import read_frames
    from ddtool.scan.pipeline import SCORE_CHUNK

    frames = list(read_frames(video, indices))
    cpu = time.process_time()
    boxes = [extractor.detector.detect(frame.image) for frame in frames]
    detect = time.process_time() - cpu
    cpu = time.process_time()
    crops = []
    for frame, found in zip(frames, boxes):
        if found:  # the largest face, as scan keeps, cut in every panel member's view
            box = max(found, key=lambda b: b.area)
            crops.append(FaceCrop(frame.index, frame.timestamp, box, 0,
                                  crop_face(frame.image, box, margin=extractor.margin, size=extractor.size),
                                  {key: cut(frame.image, box) for key, cut in extractor.views.items()}))
    crop = time.process_time() - cpu
    models = {}
    for member in panel.members:
        cpu = time.process_time()
        if crops:
            member.fake_probability([c.views[member.key] for c in crops], batch=SCORE_CHUNK)  # scan's chunk
        models[member.key] = time.process_time() - cpu
    model = sum(models.values())
    per_model = ", ".join(f"{k} {1000 * v / max(1, len(crops)):.0f}" for k, v in models.items())
    print(f"CPU split (each step alone): decode {decode_cpu:.2f} s, detect {detect:.2f} s ({1000 * detect / max(1, len(frames)):.0f} ms/frame), "
          f"crop {crop:.2f} s, model {model:.2f} s (ms/face: {per_model})")
    # The 2x goal leaves detection + crop + model one decode's worth of time when nothing overlaps.
    work = detect + crop + model
    print(f"  detect + crop + model = {work:.2f} s = {work / max(1e-9, decode_cpu):.2f}x decode; "
          f"serial total {decode_cpu + work:.2f} s = {(decode_cpu + work) / max(1e-9, decode_cpu):.2f}x decode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=None, help="video to scan (default: the synthetic 720p clip)")
    parser.add_argument("--detector", default=None, help="face detector (default: scan's)")
    parser.add_argument("--model", default=None, help="untrained model at its paper input size")
    parser.add_argument("--weights", default=None, help="a checkpoint (default: the shipped default model)")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per stage (default: scan's, ddtool.device.stage_threads)")
    parser.add_argument("--runs", type=int, default=2, help="repeat and keep the fastest (the machine is shared)")
    parser.add_argument("--write-h264", type=Path, default=None, metavar="OUT", help="write an H.264 test clip and stop")
    parser.add_argument("--size", default="1920x1080", help="with --write-h264: WxH")
    parser.add_argument("--source", type=Path, default=REALDF_CLIP, help="with --write-h264: the clip to re-encode")
    args = parser.parse_args()
    if args.write_h264:
        w, h = (int(v) for v in args.size.lower().split("x"))
        print(f"wrote {write_h264(args.write_h264, (w, h), args.source)}")
        return
    import cv2

    from ddtool.device import stage_threads

    # The CPU split runs each step alone in this thread with the threads scan gives each stage.
    torch.set_num_threads(stage_threads(args.threads))
    cv2.setNumThreads(stage_threads(args.threads))

    from ddtool.media.video import probe, read_frames, sample_indices
    from ddtool.scan.panel import load_panel
    from ddtool.scan.pipeline import ScanOptions, make_extractor, scan_file

    started = time.perf_counter()
    video = args.video or build_video(Path(tempfile.gettempdir()) / "ddtool_bench_60s_720p.mp4")
    print(f"video: {video} ({time.perf_counter() - started:.1f} s to build or find)")
    info = probe(video)
    print(f"  {info.width}x{info.height}, {info.frame_count} frames, {info.fps:g} fps, {info.duration:.1f} s")
    indices = sample_indices(info.frame_count, frames=args.frames)

    untrained = args.model is not None and args.weights is None
    options = ScanOptions(model=args.model, weights=args.weights, untrained=untrained, frames=args.frames, threads=args.threads)
    if args.detector:
        options.detector = args.detector
    # What a plain `ddtool scan` runs: the default panel, unless one model is asked for.
    detector = load_panel(None, args.model, args.weights, untrained)
    extractor = make_extractor(options, detector)
    decode_only, scans, cpu_decode, cpu_scan = [], [], [], []
    for _ in range(args.runs):
        tick, cpu = time.perf_counter(), time.process_time()
        decoded = sum(1 for _ in read_frames(video, indices))
        decode_only.append(time.perf_counter() - tick)
        cpu_decode.append(time.process_time() - cpu)
        tick, cpu = time.perf_counter(), time.process_time()
        result = scan_file(video, options, detector, extractor)
        scans.append((time.perf_counter() - tick, result))
        cpu_scan.append(time.process_time() - cpu)
    best_decode = min(decode_only)
    wall, result = min(scans, key=lambda item: item[0])
    t = result.timings
    members = ", ".join(f"{m.key} ({m.name} at {m.input_hw[0]} px, margin {m.crop_margin}, {m.crop_style})" for m in detector.members)
    print(f"sampled frames: {len(indices)} (decoded {decoded}); faces scored: {len(result.frames)}; detector {options.detector}; models: {members}")
    print(f"decode-only        {best_decode:7.2f} s")
    print(f"scan total         {wall:7.2f} s  = {wall / best_decode:.2f}x decode-only")
    # CPU seconds (all threads of this process) move less than wall time on a loaded machine.
    print(f"CPU time           decode-only {min(cpu_decode):.2f} s, scan {min(cpu_scan):.2f} s = {min(cpu_scan) / max(1e-9, min(cpu_decode)):.2f}x")
    print("stage times (each stage's own wall time; decode, detection and model overlap, so they can add up to more than the total):")
    notes = {
        "detect": f"{1000 * t.get('detect', 0.0) / max(1, decoded):.0f} ms/frame, {options.detector}",
        "hash": "sha256 of the input file, for the evidence record",
    }
    for key, seconds in t.items():
        if key == "total":
            continue
        if key.startswith("model"):
            # "model", or one entry per model of a panel ("model:NAME"): per face scored.
            notes[key] = f"{1000 * seconds / max(1, len(result.frames)):.0f} ms/face"
        note = f"  ({notes[key]})" if key in notes else ""
        print(f"  {key:<16} {seconds:7.2f} s{note}")
    cpu_split(video, indices, extractor, detector, min(cpu_decode))
    print(f"verdict {result.verdict}{' (untrained model: meaningless)' if untrained else ''}, errors {result.errors}")


if __name__ == "__main__":
    main()
