"""How big each CNN detector's face box is against dlib HOG's, on faces both find.

    python benchmarks/face_box_geometry.py [--utk 80] [--photos 60] [--videos 60]

Crops are squares around the box, so this says whether a model trained on
HOG crops sees the same face extent with another detector. Prints, per
detector, the median of HOG side / detector side (longer sides) and of the
centre offsets (HOG minus detector, as fractions of the detector's side).
Uses the image sets of benchmarks/face_detectors.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import face_detectors as sets  # noqa: E402

from ddtool.media.faces import create_detector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default="blazeface,mtcnn")
    parser.add_argument("--utk", type=int, default=80)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--videos", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    hog = create_detector("hog")
    others = {name: create_detector(name) for name in args.detectors.split(",")}
    utk, _ = sets.utk_cases(args.utk)
    images = [rgb for rgb, _ in utk + sets.realfaces_photos(args.photos) + sets.realdf_frames(args.videos)]
    found = {name: [] for name in others}
    for rgb in images:
        hog_boxes = hog.detect(rgb)
        for name, detector in others.items():
            for box in detector.detect(rgb):
                near = [h for h in hog_boxes if h.iou(box) > 0.3]
                if near:
                    h = max(near, key=box.iou)
                    side = max(box.width, box.height)
                    found[name].append((max(h.width, h.height) / side, (h.center[0] - box.center[0]) / side,
                                        (h.center[1] - box.center[1]) / side))
    print(f"{len(images)} images")
    for name, rows in found.items():
        v = np.array(rows)
        q1, q3 = np.percentile(v[:, 0], [25, 75])
        print(f"{name}: {len(v)} faces; HOG side / {name} side median {np.median(v[:, 0]):.3f} (middle half {q1:.2f}-{q3:.2f}); "
              f"centre offset x {np.median(v[:, 1]):+.3f}, y {np.median(v[:, 2]):+.3f} of the side")


if __name__ == "__main__":
    main()
