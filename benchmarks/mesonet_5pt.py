"""Do CenterFace's 5 landmarks suffice for the MesoNet authors' aligned crop (no 68-point model)?

    python benchmarks/mesonet_5pt.py [--list data/realfaces.csv] [--fit 300] [--check 300]

The authors' crop (media.crops.mesonet_geometry) needs, from 68 dlib points:
the two eye centres, the mouth centre (mean of the lips) and a centre point
C = mean(nose tip points 31-35) / 2 + mean(nose bridge 27-30) / 2. From 5
points the eyes are given; this script fits, on realfaces photos of the
`train` split (faces CenterFace finds), C = eyes + ALPHA * (nose - eyes) and
mouth = eyes + GAMMA * (mouth corners' mean - eyes) by least squares, then
on `test` photos compares the crop geometry both ways: centre error and
side ratio (relative to the 68-point side) and the rotation difference.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ddtool.media.crops import BOTTOM_LIP, EYE_A, EYE_B, NOSE_BRIDGE, NOSE_TIP, TOP_LIP, mesonet_geometry  # noqa: E402
from ddtool.media.faces import scan_face_detector  # noqa: E402
from ddtool.media.landmarks import landmarks_68  # noqa: E402


def pairs(rows, limit):
    detector = scan_face_detector("centerface")
    out = []
    for row in rows:
        bgr = cv2.imread(row["path"])
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = detector.detect(rgb)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: b.area)
        p68 = landmarks_68(rgb, (box.x0, box.y0, box.x1, box.y1))
        out.append((np.asarray(box.landmarks, np.float64), p68.astype(np.float64)))
        if len(out) >= limit:
            break
    return out


def targets(p68):
    e1, e2 = p68[EYE_A].mean(0), p68[EYE_B].mean(0)
    eyes = (e1 + e2) / 2
    centre = p68[NOSE_TIP].mean(0) / 2 + p68[NOSE_BRIDGE].mean(0) / 2
    mouth = (p68[TOP_LIP].mean(0) + p68[BOTTOM_LIP].mean(0)) / 2
    return eyes, centre, mouth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", type=Path, default=Path("data/realfaces.csv"))
    parser.add_argument("--fit", type=int, default=300)
    parser.add_argument("--check", type=int, default=300)
    args = parser.parse_args()
    rows = list(csv.DictReader(open(args.list, newline="", encoding="utf-8")))
    train = pairs([r for r in rows if r["split"] == "train"][::20], args.fit)
    test = pairs([r for r in rows if r["split"] == "test"], args.check)
    a_num = a_den = g_num = g_den = 0.0
    for p5, p68 in train:
        eyes5 = (p5[0] + p5[1]) / 2
        _, centre, mouth = targets(p68)
        nose_dir, mouth_dir = p5[2] - eyes5, (p5[3] + p5[4]) / 2 - eyes5
        a_num += float(np.dot(centre - eyes5, nose_dir))
        a_den += float(np.dot(nose_dir, nose_dir))
        g_num += float(np.dot(mouth - eyes5, mouth_dir))
        g_den += float(np.dot(mouth_dir, mouth_dir))
    alpha, gamma = a_num / a_den, g_num / g_den
    print(f"fitted on {len(train)} train faces: ALPHA {alpha:.4f}, GAMMA {gamma:.4f}")
    from ddtool.media.crops import mesonet_geometry_5

    centre_err, side_ratio, rot_diff = [], [], []
    for p5, p68 in test:
        cx, cy, side, rot = mesonet_geometry(p68)
        cx5, cy5, side5, rot5 = mesonet_geometry_5(p5, alpha, gamma)
        centre_err.append(np.hypot(cx5 - cx, cy5 - cy) / side)
        side_ratio.append(side5 / side)
        rot_diff.append(abs(rot5 - rot))
    q = lambda v: f"median {np.median(v):.3f}, 95th {np.percentile(v, 95):.3f}"  # noqa: E731
    print(f"on {len(test)} test faces: centre error / side {q(centre_err)}; side ratio {q(side_ratio)} "
          f"(5th {np.percentile(side_ratio, 5):.3f}); rotation difference (deg) {q(rot_diff)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
