"""Recall, false detections and ms/frame of ddtool's face detectors, to choose scan's default.

    python benchmarks/face_detectors.py [--detectors hog,blazeface,...,centerface,centerface:480,centerface@scan] [--utk 60] [--threads 1]

A detector written NAME:SIDE runs with max_side=SIDE (hog, cnn, yunet,
mtcnn, centerface downscale the frame to that longer side first); only
the first spelling of each name votes in the consensus below.
Whether a deepfake model still ranks real and fake right on each
detector's crops is the sibling script benchmarks/face_detector_auc.py.

Case sets (each printed as its own row; images the script makes itself are
marked "made"):
- astronaut: examples/astronaut.jpg, head box known (HEAD below).
- made from the astronaut, on grey 1280x720 / 1920x1080 canvases, head box
  known: small (head 48 and 80 px), rotated (+-20, +-45 degrees), dark
  (x0.25 with gamma), stretched (the whole photo resized to 7680x4320),
  grayscale, blurred, and turned: the photo warped in perspective as if the
  face plane turned 40 and 60 degrees about a vertical axis (a flat face
  turned, not a real profile: no real profile with a known box is offline).
- utkface: ../shared/realfaces/utkface_crop_part1, aligned 200x200 crops, face
  centred: a hit is a box holding the image centre; and the same crops
  pasted at 100 px into a 1280x720 frame ("utk-in-720p").
- realfaces-photos: the other ../shared/realfaces folders (whole photos,
  often several faces, no boxes given).
- realdf frames: --realdf-frames frames evenly inside each ../shared/realdf-dev
  video (1: the middle one; real and fake halves of DeepFaceLive clips, head
  turns included).
For sets without boxes the reference faces are the consensus: a box that at
least two of the detectors find (IoU >= 0.3; the "blazeface" cascade does
not vote, its two models do); a detection matching no
consensus box counts as a false detection (it may be a face only one
detector sees, so this overstates false detections a little).
- negatives (made): noise, gradients, and the astronaut with her head painted
  out: every detection is false.
Speed: ms/frame on a 1280x720 and a 1920x1080 frame with one face (median of --repeats).
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
HEAD = (175, 76, 266, 167)  # the astronaut's face in examples/astronaut.jpg (hog's box)


def astronaut() -> np.ndarray:
    return cv2.imread(str(REPO / "examples" / "astronaut.jpg"))[:, :, ::-1].copy()


def paste(face: np.ndarray, box, canvas_hw, side: int, at) -> tuple[np.ndarray, tuple]:
    """Paste `face` resized so the known box is `side` px wide; return the frame and the new box."""
    scale = side / (box[2] - box[0])
    small = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((*canvas_hw, 3), 90, np.uint8)
    y, x = at
    h, w = min(small.shape[0], canvas_hw[0] - y), min(small.shape[1], canvas_hw[1] - x)
    frame[y : y + h, x : x + w] = small[:h, :w]
    return frame, tuple(v * scale + off for v, off in zip(box, (x, y, x, y)))


def rotate(rgb: np.ndarray, box, degrees: float):
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    out = cv2.warpAffine(rgb, m, (w, h), borderValue=(90, 90, 90))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    nx, ny = m @ np.array([cx, cy, 1.0])
    half = (box[2] - box[0]) / 2
    return out, (nx - half, ny - half, nx + half, ny + half)


def turn(rgb: np.ndarray, box, degrees: float):
    """Warp the image as if the (flat) face plane turned `degrees` about the vertical axis through the box centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    focal = 3.0 * (box[2] - box[0])  # a camera about 3 face widths away
    sin, cos = np.sin(np.radians(degrees)), np.cos(np.radians(degrees))

    def project(x, y):
        depth = focal + (x - cx) * sin
        return cx + (x - cx) * cos * focal / depth, cy + (y - cy) * focal / depth

    h, w = rgb.shape[:2]
    # Map a square of one face width around the centre (the plane's depth grows too fast beyond it).
    half = box[2] - box[0]
    src = np.float32([(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)])
    dst = np.float32([project(x, y) for x, y in src])
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(rgb, m, (w, h), borderValue=(90, 90, 90))
    corners = cv2.perspectiveTransform(np.float32([[(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])]]), m)[0]
    return out, (float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()), float(corners[:, 1].max()))


def made_cases() -> dict[str, list[tuple[np.ndarray, list]]]:
    img = astronaut()
    cases: dict[str, list] = {"astronaut": [(img, [HEAD])]}
    small = []
    for side, hw in ((48, (720, 1280)), (80, (720, 1280)), (48, (1080, 1920)), (80, (1080, 1920))):
        for at in ((100, 200), (400, 900)):
            frame, box = paste(img, HEAD, hw, side, at)
            small.append((frame, [box]))
    cases["small (48/80 px head in 720p/1080p)"] = small
    cases["rotated (+-20, +-45 deg)"] = [(f, [b]) for f, b in (rotate(img, HEAD, d) for d in (-45, -20, 20, 45))]
    dark = []
    for gain in (0.25, 0.12):
        out = (255.0 * (img / 255.0) ** 1.6 * gain).astype(np.uint8)
        dark.append((out, [HEAD]))
    cases["dark (x0.25, x0.12, gamma 1.6)"] = dark
    sx, sy = 7680 / 512, 4320 / 512
    stretched = cv2.resize(img, (7680, 4320), interpolation=cv2.INTER_LINEAR)
    cases["stretched to 7680x4320"] = [(stretched, [(HEAD[0] * sx, HEAD[1] * sy, HEAD[2] * sx, HEAD[3] * sy)])]
    gray = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    cases["grayscale, blurred (sigma 3)"] = [(gray, [HEAD]), (cv2.GaussianBlur(img, (0, 0), 3), [HEAD])]
    cases["turned 40/60 deg (flat warp, both ways)"] = [(f, [b]) for f, b in (turn(img, HEAD, d) for d in (-60, -40, 40, 60))]
    return cases


def negatives() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = [rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)]
    ramp = np.linspace(0, 255, 1280, dtype=np.float32)[None, :, None]
    out.append(np.broadcast_to(ramp, (720, 1280, 3)).astype(np.uint8).copy())
    painted = astronaut()
    painted[40:220, 140:300] = 90
    out.append(painted)
    return out


def utk_cases(n: int) -> tuple[list, list]:
    folder = SHARED / "realfaces" / "utkface_crop_part1"
    if not folder.is_dir():
        return [], []
    files = sorted(folder.glob("*.jpg"))
    random.Random(0).shuffle(files)
    crops, in720 = [], []
    for i, path in enumerate(files[:n]):
        rgb = cv2.imread(str(path))[:, :, ::-1].copy()
        h, w = rgb.shape[:2]
        crops.append((rgb, [("centre", w / 2, h / 2)]))
        frame, _ = paste(rgb, (0, 0, w, h), (720, 1280), 100, (100 + 37 * i % 500, 100 + 91 * i % 1000))
        in720.append((frame, None))
    return crops, in720


def realfaces_photos(n: int) -> list:
    table = SHARED / "realfaces" / "faces.csv"
    if not table.is_file():
        return []
    with table.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if not r["path"].startswith("utkface")]
    random.Random(1).shuffle(rows)
    out = []
    for row in rows[:n]:
        img = cv2.imread(str(SHARED / "realfaces" / row["path"]))
        if img is not None:
            out.append((img[:, :, ::-1].copy(), None))
    return out


def realdf_frames(limit: int, per_video: int = 1) -> list:
    folder = SHARED / "realdf-dev" / "videos"
    out = []
    for path in sorted(folder.rglob("*.mp4"))[:limit]:
        cap = cv2.VideoCapture(str(path))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        # Evenly inside the clip, ends left out: 1 -> the middle frame.
        for k in range(per_video):
            cap.set(cv2.CAP_PROP_POS_FRAMES, count * (k + 1) // (per_video + 1))
            ok, frame = cap.read()
            if ok:
                out.append((frame[:, :, ::-1].copy(), None))
        cap.release()
    return out


def iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(box, truth) -> bool:
    if truth[0] == "centre":
        return box[0] <= truth[1] <= box[2] and box[1] <= truth[2] <= box[3]
    # Detectors draw boxes of different extent (BlazeFace/MTCNN include the
    # forehead and chin): the box must overlap and hold the true centre.
    cx, cy = (truth[0] + truth[2]) / 2, (truth[1] + truth[3]) / 2
    return iou(box, truth) >= 0.2 and box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def consensus(found: dict[str, list]) -> list:
    """Boxes found by at least two detectors (each detector's boxes matched at IoU >= 0.3)."""
    names = list(found)
    refs: list = []
    for name in names:
        for box in found[name]:
            votes = sum(any(iou(box, other) >= 0.3 for other in found[o]) for o in names if o != name) + 1
            if votes >= 2 and not any(iou(box, r) >= 0.3 for r in refs):
                refs.append(box)
    return refs


def make_detector(spec: str):
    """A detector from NAME, NAME:MAX_SIDE, or NAME@scan (as scan runs it: coarse pass first)."""
    from ddtool.media.faces import create_detector, scan_face_detector

    if spec.endswith("@scan"):
        return scan_face_detector(spec[: -len("@scan")])
    name, _, side = spec.partition(":")
    return create_detector(name, max_side=int(side)) if side else create_detector(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default="hog,blazeface,blazeface-back,blazeface-front,mtcnn,centerface")
    parser.add_argument("--utk", type=int, default=60)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--videos", type=int, default=120)
    parser.add_argument("--realdf-frames", type=int, default=1, help="frames per realdf-dev video")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per detector and frame size")
    parser.add_argument("--speed-only", action="store_true", help="skip the recall sets")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    names = args.detectors.split(",")
    detectors = {n: make_detector(n) for n in names}
    # Voters: one spelling per detector name; the cascade repeats its two models' boxes.
    voters, seen = [], set()
    for n in names:
        base = n.split(":")[0].split("@")[0]
        if base != "blazeface" and base not in seen:
            voters.append(n)
            seen.add(base)
    if not args.speed_only:
        recall(args, detectors, voters)
    speed(args, detectors)


def recall(args, detectors: dict, voters: list) -> None:
    names = list(detectors)

    def boxes(rgb):
        return {n: [(b.x0, b.y0, b.x1, b.y1) for b in d.detect(rgb)] for n, d in detectors.items()}

    utk, utk720 = utk_cases(args.utk)
    sets = {**made_cases(), "utkface crops": utk, "utk-in-720p (100 px, made)": utk720,
            "realfaces-photos": realfaces_photos(args.photos),
            f"realdf frames ({args.realdf_frames}/video)": realdf_frames(args.videos, args.realdf_frames)}
    header = f"{'case set':40s} {'n':>4s} " + " ".join(f"{n:>19s}" for n in names)
    print("recall (faces found / faces) and false detections per set")
    print(header)
    totals = {n: [0, 0, 0] for n in names}
    for label, items in sets.items():
        if not items:
            print(f"{label:40s} skipped (data not found)")
            continue
        hit = {n: 0 for n in names}
        false = {n: 0 for n in names}
        faces = 0
        for rgb, truth in items:
            found = boxes(rgb)
            if truth is None:
                truth = consensus({n: found[n] for n in voters})
            faces += len(truth)
            for n in names:
                hit[n] += sum(any(matches(b, t) for b in found[n]) for t in truth)
                false[n] += sum(not any(matches(b, t) for t in truth) for b in found[n])
        for n in names:
            totals[n][0] += hit[n]
            totals[n][1] += faces
            totals[n][2] += false[n]
        cells = " ".join(f"{f'{hit[n]}/{faces} ({false[n]} false)':>19s}" for n in names)
        print(f"{label:40s} {len(items):4d} {cells}")
    neg = negatives()
    cells = " ".join(f"{f'{sum(len(boxes(x)[n]) for x in neg)} false':>19s}" for n in names)
    print(f"{'negatives (noise, ramp, head painted out)':40s} {len(neg):4d} {cells}")
    cells = " ".join(f"{f'{t[0]}/{t[1]} ({t[2]} false)':>19s}" for t in totals.values())
    print(f"{'all sets with faces':40s} {'':4s} {cells}")



def speed(args, detectors: dict) -> None:
    print(f"\nms/frame, one face: median of {args.repeats} rounds, the detectors interleaved in each round so load "
          f"swings on a shared machine hit them alike; wall time, and CPU time of this process (threads = {args.threads})")
    face = astronaut()
    for hw in ((720, 1280), (1080, 1920)):
        frame, _ = paste(face, HEAD, hw, hw[0] // 5, (hw[0] // 4, hw[1] // 3))
        wall = {n: [] for n in detectors}
        cpu = {n: [] for n in detectors}
        for d in detectors.values():
            d.detect(frame)  # warm-up: first-call allocations
        for _ in range(args.repeats):
            for n, d in detectors.items():
                tick, cpu_tick = time.perf_counter(), time.process_time()
                d.detect(frame)
                wall[n].append(time.perf_counter() - tick)
                cpu[n].append(time.process_time() - cpu_tick)
        row = [f"{n} {1000 * float(np.median(wall[n])):.1f} ({1000 * float(np.median(cpu[n])):.1f} CPU)" for n in detectors]
        print(f"  {hw[1]}x{hw[0]}: " + ", ".join(row))


if __name__ == "__main__":
    main()
