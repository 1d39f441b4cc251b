"""Build the demo clips in examples/ (run from the repo root):

    .venv/bin/python examples/make_examples.py

- astronaut_real.mp4: NASA's portrait of astronaut Eileen Collins (public
  domain; the copy scikit-image ships as `astronaut`), animated with a slow
  zoom and pan, 48 frames at 12 fps.
- astronaut_fake.mp4: the same clip with the face swapped in every frame for
  Grace Hopper's (US Navy portrait, public domain; the copy matplotlib ships
  as sample data) using ddtool.data.synth.face_swap with a fixed seed.
Both are written with OpenCV's mp4v codec and stay well under 1 MB.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ddtool.data.synth import face_swap
from ddtool.media.landmarks import landmarks_68

HERE = Path(__file__).resolve().parent
FRAMES, FPS, SIZE = 48, 12.0, 320


def _detect_landmarks(rgb: np.ndarray) -> np.ndarray:
    import dlib

    faces = dlib.get_frontal_face_detector()(rgb, 1)
    if not faces:
        raise SystemExit("no face found while building the examples")
    rect = max(faces, key=lambda r: r.width() * r.height())
    return landmarks_68(rgb, (rect.left(), rect.top(), rect.right(), rect.bottom()))


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def animate(image: np.ndarray, frames: int, size: int) -> list[np.ndarray]:
    """Slow zoom-in and pan over the head and shoulders."""
    h, w = image.shape[:2]
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        side = int(round(min(h, w) * (0.75 - 0.1 * t)))
        cx = w * 0.44 + 12 * np.sin(2 * np.pi * t)
        cy = h * 0.36 + 6 * t
        x0 = int(np.clip(cx - side / 2, 0, w - side))
        y0 = int(np.clip(cy - side / 2, 0, h - side))
        out.append(cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA))
    return out


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    tmp = path.with_name(path.stem + ".tmp.mp4")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    tmp.replace(path)


def main() -> None:
    astronaut = cv2.cvtColor(cv2.imread(str(HERE / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    real = animate(astronaut, FRAMES, SIZE)
    donor = _grace_hopper()
    donor_lm = _detect_landmarks(donor)
    fake = []
    for frame in real:
        lm = _detect_landmarks(frame)
        # Same seed every frame: the same blend each time, no flicker.
        forged = face_swap(frame, lm, np.random.default_rng(7), 0.6, donor=donor, donor_landmarks=donor_lm, seamless=False)
        fake.append(forged.image)
    write_mp4(HERE / "astronaut_real.mp4", real, FPS)
    write_mp4(HERE / "astronaut_fake.mp4", fake, FPS)
    for name in ("astronaut_real.mp4", "astronaut_fake.mp4"):
        print(name, (HERE / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
