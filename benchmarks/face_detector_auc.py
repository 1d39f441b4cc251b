"""Does a deepfake model still rank real and fake videos right on each face detector's crops?

    python benchmarks/face_detector_auc.py WEIGHTS_CARD [--detectors hog,blazeface,mtcnn,centerface] [--frames 8] [--json OUT]

A model learns from the crops of one detector (the shipped ones from dlib
HOG's); another detector's boxes differ a little in size and place, and a
model can be sensitive to that. Before a face detector becomes scan's
default, run this with the model that will ship beside it. For each
../shared/realdf-dev video (labels.csv; real and DeepFaceLive halves) it
decodes --frames evenly spaced frames once, then for each face detector
crops the largest face per frame the way `ddtool scan` does (the model's
input size and the crop margin its card records), scores the crops with
the model and takes the mean per video (scan's default aggregate). Prints,
per face detector: video AUC with a 95% interval that resamples `group`s
(a real clip and its swap share one), face AUC, mean score of real and of
fake videos, videos where no face was found (left out of the AUCs), the
demo pair (examples/astronaut_real.mp4 / _fake.mp4, 16 frames as `make
demo` scans them) and detection time.

realdf-dev is for evaluation and model choice only, never for training.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
REALDF = REPO.parent / "shared" / "realdf-dev"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from realdf_epochs import grouped_bootstrap_auc  # noqa: E402


def realdf_videos(limit: int | None) -> list[dict]:
    rows = list(csv.DictReader((REALDF / "labels.csv").open(encoding="utf-8")))
    videos = [r for r in rows if r["path"].startswith("videos/")]
    if not limit:
        return videos
    # A quick run still needs both labels: half real, half fake.
    return [r for r in videos if r["label"] == "0"][: (limit + 1) // 2] + [r for r in videos if r["label"] == "1"][: limit // 2]


def decode(path: Path, frames: int) -> list:
    from ddtool.media.video import probe, read_frames, sample_indices

    info = probe(path)
    return list(read_frames(path, sample_indices(info.frame_count, frames=frames)))


def video_score(model, extractor, frames, timing: list) -> tuple[float | None, int]:
    """Mean P(fake) over the video's face crops (None: no face) and the number of faces."""
    tick = time.perf_counter()
    crops = extractor.extract_frames(frames)
    timing[0] += time.perf_counter() - tick
    timing[1] += len(frames)
    if not crops:
        return None, 0
    scores = model.fake_probability([c.image for c in crops])
    return float(np.mean(scores)), len(crops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", type=Path, help="the model's weights card (NAME.json) or weights file")
    parser.add_argument("--detectors", default="hog,blazeface,mtcnn,centerface", help="face detectors, comma-separated")
    parser.add_argument("--frames", type=int, default=8, help="frames per realdf-dev video")
    parser.add_argument("--videos", type=int, default=None, help="only N videos, half real, half fake (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not REALDF.is_dir():
        print(f"error: {REALDF} not found (realdf-dev lives in ../shared beside the repo)", file=sys.stderr)
        return 3
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from ddtool.evaluate.metrics import compute_metrics
    from ddtool.media.faces import FaceExtractor, create_detector
    from ddtool.scan.detector import load_detector

    model = load_detector(weights=args.weights)
    names = args.detectors.split(",")
    extractors = {
        n: FaceExtractor(create_detector(n), size=max(model.input_hw), margin=model.crop_margin) for n in names
    }
    print(f"model {model.name} from {args.weights} (input {model.input_hw}, crop margin {model.crop_margin}); "
          f"{args.frames} frames per video")
    results: dict[str, dict] = {n: {"videos": [], "faces": [], "timing": [0.0, 0]} for n in names}
    videos = realdf_videos(args.videos)
    for i, row in enumerate(videos):
        frames = decode(REALDF / row["path"], args.frames)
        for n in names:
            score, faces = video_score(model, extractors[n], frames, results[n]["timing"])
            results[n]["videos"].append((int(row["label"]), row["group"], score, faces))
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(videos)} videos", flush=True)
    demo = {}
    demo_frames = {kind: decode(REPO / "examples" / f"astronaut_{kind}.mp4", 16) for kind in ("real", "fake")}
    for n in names:
        demo[n] = {kind: video_score(model, extractors[n], frames, [0.0, 0])[0] for kind, frames in demo_frames.items()}

    print(f"\n{'face detector':<16} {'videoAUC':>8} {'95% CI':>13} {'faceless':>8} {'real':>6} {'fake':>6} "
          f"{'demo real/fake':>15} {'ms/frame':>8}")
    summary = {}
    for n in names:
        kept = [v for v in results[n]["videos"] if v[2] is not None]
        y = np.array([v[0] for v in kept])
        s = np.array([v[2] for v in kept])
        groups = np.array([v[1] for v in kept])
        if len(set(y.tolist())) < 2:
            print(f"{n:<16} faces in videos of one label only: no AUC")
            continue
        auc = compute_metrics(y, s)["auc"]
        lo, hi = grouped_bootstrap_auc(y, s, groups)
        seconds, frames = results[n]["timing"]
        real, fake = demo[n]["real"], demo[n]["fake"]
        summary[n] = {
            "video_auc": auc, "video_auc_ci95": [lo, hi], "videos": len(kept),
            "videos_without_face": len(videos) - len(kept), "faces": int(sum(v[3] for v in kept)),
            "real_mean": float(s[y == 0].mean()), "fake_mean": float(s[y == 1].mean()),
            "demo_real": real, "demo_fake": fake, "demo_ranked_right": None if None in (real, fake) else bool(fake > real),
            "detect_ms_per_frame": 1000 * seconds / max(1, frames),
        }
        demo_text = "no face" if None in (real, fake) else f"{real:.3f}/{fake:.3f}{'' if fake > real else ' !'}"
        print(f"{n:<16} {auc:8.4f} {lo:6.3f}-{hi:5.3f} {len(videos) - len(kept):8d} {summary[n]['real_mean']:6.3f} "
              f"{summary[n]['fake_mean']:6.3f} {demo_text:>15} {summary[n]['detect_ms_per_frame']:8.0f}")
    print("(real/fake: mean video score; '!' marks a demo pair ranked the wrong way round)")
    if args.json:
        payload = {"weights": str(args.weights), "model": model.name, "frames": args.frames, "detectors": summary}
        tmp = args.json.with_name(args.json.name + ".partial")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
