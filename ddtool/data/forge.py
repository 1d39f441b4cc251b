"""Forged face cache from real faces: every synth method at several strengths.

Input: a faces folder from `ddtool.data.offline.build_faces` (256 px crops
with a margin, provenance, group and split per face). Output: a ddtool face
cache (docs/architecture.md) that `ddtool train --data CACHE` reads:

    CACHE/crops/real/<face_id>.png
    CACHE/crops/<method>/s<strength>/<face_id>_k<k>.png
    CACHE/records/<face_id>.csv      the face is done (manifest rows)
    CACHE/manifest.csv, errors.csv   assembled from the records
    CACHE/forge_config.json          methods, strengths, seed...; a re-run must match
    CACHE/videos/*.mp4, videos.csv   optional real/fake clip pairs (`videos`)

Every forgery is seeded by (seed, face, method, strength, k), never by the
order of work, so an interrupted run resumed with the same command writes the
same pixels. Crops are written first and a face's record last (atomically):
a record is the only proof that a face is finished.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from ddtool.data.extract import MANIFEST_COLUMNS, check_resume_settings
from ddtool.data.offline_faces import parse_landmarks, read_faces, write_png_atomic
from ddtool.data.synth import METHODS, default_gan_weights, load_gan_generator, make_forgery, method_domain
from ddtool.errors import ConfigError, DDToolError, InputError
from ddtool.io import atomic_path, write_json_atomic

EXTRA_COLUMNS = ("face_id", "group", "strength", "licence")
CSV_COLUMNS = (*MANIFEST_COLUMNS, *EXTRA_COLUMNS)
ERROR_COLUMNS = ("video_id", "source_path", "error")
VIDEO_COLUMNS = ("path", "label", "method", "split", "face_id")
CONFIG_FILE = "forge_config.json"
GAN_WEIGHTS_IN_FETCH = "media/pip-gan-face-generate/gan_face_generate/weights.tar"
DATASET = "offline"


@dataclass(frozen=True)
class ForgeOptions:
    methods: tuple[str, ...] = tuple(METHODS)
    strengths: tuple[float, ...] = (0.3, 0.6, 0.9)
    per_face: int = 1
    seed: int = 7
    videos: int = 0
    video_frames: int = 24
    video_size: int = 224
    fps: float = 12.0
    gan_weights: str | None = None  # gan-face-generate's weights.tar; default: the one `offline fetch` extracted

    def validate(self) -> None:
        if not self.methods:
            raise ConfigError("choose at least one forgery method")
        for name in self.methods:
            method_domain(name)  # raises ConfigError naming the known methods
        if not self.strengths or any(not 0.0 <= s <= 1.0 for s in self.strengths):
            raise ConfigError(f"strengths must be numbers in [0, 1], got {list(self.strengths)}")
        if self.per_face < 1:
            raise ConfigError(f"--per-face must be >= 1, got {self.per_face}")
        if self.videos < 0 or self.video_frames < 2 or self.video_size < 64:
            raise ConfigError("videos must be >= 0, video frames >= 2 and video size >= 64")

    def fingerprint(self) -> dict:
        """What decides the crops' pixels; the clips have their own (videos_config.json)."""
        data = asdict(self)
        for key in ("videos", "video_frames", "video_size", "fps", "gan_weights"):
            data.pop(key)
        data["methods"] = list(self.methods)
        data["strengths"] = [round(s, 4) for s in self.strengths]
        return data


@dataclass
class ForgeSummary:
    faces: int
    reused: int
    rows: int
    errors: int
    per_method: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    videos: int = 0


def parse_strengths(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--strengths must be comma-separated numbers in [0, 1], e.g. 0.3,0.6,0.9; got {text!r}") from None
    if not values:
        raise ConfigError("--strengths is empty; give e.g. 0.3,0.6,0.9")
    return values


def _rng(seed: int, *parts) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps([seed, *parts]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _load_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read face crop {path}; rebuild the faces folder with `ddtool offline faces`")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class RealFace:
    row: pd.Series
    image: np.ndarray
    landmarks: np.ndarray


def load_faces(faces_dir: str | Path) -> list[RealFace]:
    """Every face crop with its 68 landmarks (computed once by build_faces, reused by every method and donor)."""
    faces_dir = Path(faces_dir)
    table = read_faces(faces_dir)
    return [RealFace(row, _load_rgb(faces_dir / row["crop_path"]), parse_landmarks(row["landmarks"]))
            for _, row in table.sort_values("face_id").iterrows()]


def _donor_pools(faces: list[RealFace]) -> dict[str, list[int]]:
    pools: dict[str, list[int]] = {}
    for i, face in enumerate(faces):
        pools.setdefault(face.row["split"], []).append(i)
    return pools


def _pick_donor(index: int, faces: list[RealFace], pools: dict[str, list[int]], rng: np.random.Generator) -> RealFace | None:
    """A face from another source group of the same split: no identity crosses the split, none swaps with itself."""
    me = faces[index].row
    candidates = [j for j in pools.get(me["split"], []) if faces[j].row["group"] != me["group"]]
    return faces[candidates[int(rng.integers(len(candidates)))]] if candidates else None


def _row(face: pd.Series, crop_path: str, video_id: str, label: int, method: str, strength: float | str) -> dict:
    return {
        "crop_path": crop_path, "video_id": video_id, "source_path": face["source_file"],
        "frame_index": face["frame_index"], "timestamp": face["timestamp"],
        "x0": face["x0"], "y0": face["y0"], "x1": face["x1"], "y1": face["y1"], "track_id": 0,
        "label": label, "domain": 0 if method == "real" else method_domain(method), "method": method,
        "split": face["split"], "dataset": DATASET,
        "face_id": face["face_id"], "group": face["group"], "strength": strength, "licence": face["licence"],
    }


def _write_csv(path: Path, columns, rows) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def resolve_gan_weights(faces_dir: Path, options: ForgeOptions) -> str | None:
    """Path of the DCGAN weights when gan_face is asked for, loaded once here so a bad file fails before any work."""
    if "gan_face" not in options.methods:
        return None
    path = options.gan_weights
    if path is None:
        config = faces_dir / "faces_config.json"
        src = json.loads(config.read_text()).get("src") if config.is_file() else None
        fetched = Path(src) / GAN_WEIGHTS_IN_FETCH if src else None
        path = str(fetched) if fetched and fetched.is_file() else str(default_gan_weights())
    load_gan_generator(path)
    return path


def forge_face(index: int, faces: list[RealFace], pools: dict[str, list[int]], cache: Path,
               options: ForgeOptions) -> tuple[list[dict], list[dict]]:
    """Write one face's real crop and forgeries; return (manifest rows, error rows)."""
    face = faces[index]
    fid = face.row["face_id"]
    real_path = f"crops/real/{fid}.png"
    write_png_atomic(cache / real_path, face.image)
    rows = [_row(face.row, real_path, f"{DATASET}/real/{fid}", 0, "real", "")]
    errors = []
    for method in options.methods:
        for strength in options.strengths:
            for k in range(options.per_face):
                video_id = f"{DATASET}/{method}/{fid}/s{strength:.2f}/k{k}"
                rng = _rng(options.seed, fid, method, round(strength, 4), k)
                extra = {"weights": options.gan_weights} if method == "gan_face" else {}
                if method == "face_swap":
                    donor = _pick_donor(index, faces, pools, rng)
                    if donor is None:
                        errors.append({"video_id": video_id, "source_path": face.row["source_file"],
                                       "error": f"no donor from another group in split {face.row['split']!r}"})
                        continue
                    extra = {"donor": donor.image, "donor_landmarks": donor.landmarks}
                try:
                    forged = make_forgery(method, face.image, face.landmarks, rng, strength, **extra)
                except DDToolError as exc:
                    errors.append({"video_id": video_id, "source_path": face.row["source_file"], "error": str(exc)})
                    continue
                crop_path = f"crops/{method}/s{strength:.2f}/{fid}_k{k}.png"
                write_png_atomic(cache / crop_path, forged.image)
                rows.append(_row(face.row, crop_path, video_id, 1, method, round(strength, 4)))
    return rows, errors


def forge(faces_dir: str | Path, cache: str | Path, options: ForgeOptions = ForgeOptions(),
          note: Callable[[str], None] = lambda _msg: None) -> ForgeSummary:
    """Build (or resume) the forged face cache; see the module docstring for the layout."""
    options.validate()
    faces_dir, cache = Path(faces_dir), Path(cache)
    faces = load_faces(faces_dir)
    options = replace(options, gan_weights=resolve_gan_weights(faces_dir, options))
    cache.mkdir(parents=True, exist_ok=True)
    check_resume_settings(cache / CONFIG_FILE, {**options.fingerprint(), "faces": str(faces_dir.resolve())}, made="forged")
    pools = _donor_pools(faces)
    rows: list[dict] = []
    errors: list[dict] = []
    reused = 0
    for index, face in enumerate(faces):
        record = cache / "records" / f"{face.row['face_id']}.csv"
        error_record = record.with_suffix(".errors.csv")
        if record.is_file():
            reused += 1
        else:
            face_rows, face_errors = forge_face(index, faces, pools, cache, options)
            # Errors first, rows last: the row record marks the face finished.
            _write_csv(error_record, ERROR_COLUMNS, face_errors)
            _write_csv(record, CSV_COLUMNS, face_rows)
            note(f"{face.row['face_id']}: {len(face_rows)} crops")
        rows.extend(_read_csv(record))
        if error_record.is_file():
            errors.extend(_read_csv(error_record))
    _write_csv(cache / "manifest.csv", CSV_COLUMNS, rows)
    _write_csv(cache / "errors.csv", ERROR_COLUMNS, errors)
    videos = write_videos(faces, pools, cache, options, note) if options.videos else 0

    table = pd.DataFrame(rows)
    per_split = {s: {m: int(n) for m, n in part["method"].value_counts().sort_index().items()}
                 for s, part in table.groupby("split")}
    return ForgeSummary(
        faces=len(faces), reused=reused, rows=len(rows), errors=len(errors),
        per_method={m: int(n) for m, n in table["method"].value_counts().sort_index().items()},
        per_split=per_split, videos=videos,
    )


# ------------------------------------------------------------------ videos

def animate(image: np.ndarray, landmarks: np.ndarray, frames: int, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Slow zoom-in and pan over a face crop: (frame, landmarks moved with it) per frame.

    The landmarks follow the same crop-and-scale, so the forged twin needs no
    per-frame detection and its mask sits exactly where the face moved.
    """
    h, w = image.shape[:2]
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        side = int(round(min(h, w) * (1.0 - 0.12 * t)))
        cx = w / 2 + 0.03 * w * np.sin(2 * np.pi * t)
        cy = h / 2 + 0.02 * h * t
        x0 = int(np.clip(round(cx - side / 2), 0, w - side))
        y0 = int(np.clip(round(cy - side / 2), 0, h - side))
        scale = size / side
        frame = cv2.resize(image[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)
        out.append((frame, ((landmarks - [x0, y0]) * scale).astype(np.float32)))
    return out


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """mp4v via OpenCV (its wheels cannot encode H.264), written beside the target then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        raise InputError(f"OpenCV cannot write {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    os.replace(tmp, path)


def write_videos(faces: list[RealFace], pools: dict[str, list[int]], cache: Path, options: ForgeOptions,
                 note: Callable[[str], None] = lambda _msg: None) -> int:
    """`options.videos` real clips and their forged twins under CACHE/videos, listed in CACHE/videos.csv.

    Clip j animates a face (one per source group first, so clips differ) and
    forges every frame with method j mod len(methods) and the same seed each
    frame: the same manipulation follows the face, no flicker.
    """
    order = _rng(options.seed, "videos").permutation(len(faces))
    seen, first, rest = set(), [], []
    for i in order:
        (rest if faces[i].row["group"] in seen else first).append(int(i))
        seen.add(faces[i].row["group"])
    chosen = (first + rest)[: options.videos]
    wanted = {**options.fingerprint(), "video_frames": options.video_frames, "video_size": options.video_size, "fps": options.fps}
    config = cache / "videos_config.json"
    if config.is_file() and json.loads(config.read_text()) != wanted:
        # Clips made with other settings would be silently mixed in: start the clips over.
        shutil.rmtree(cache / "videos", ignore_errors=True)
    write_json_atomic(config, wanted)
    listing = []
    for j, index in enumerate(chosen):
        face = faces[index]
        method = options.methods[j % len(options.methods)]
        strength = options.strengths[-1]
        clip_rng = _rng(options.seed, "clip", face.row["face_id"], method)
        extra = {"weights": options.gan_weights} if method == "gan_face" else {}
        if method == "face_swap":
            donor = _pick_donor(index, faces, pools, clip_rng)
            if donor is None:
                method = next((m for m in options.methods if m != "face_swap"), None)
                if method is None:
                    continue
            else:
                extra = {"donor": donor.image, "donor_landmarks": donor.landmarks}
        stem = f"clip{j:03d}"
        real_path, fake_path = f"videos/{stem}_real.mp4", f"videos/{stem}_{method}.mp4"
        if not ((cache / real_path).is_file() and (cache / fake_path).is_file()):
            frames = animate(face.image, face.landmarks, options.video_frames, options.video_size)
            seed = int(clip_rng.integers(2**32))
            if method == "gan_face":
                # A generated face ignores the real frame: move the generated face the same way instead.
                generated = make_forgery(method, face.image, face.landmarks, np.random.default_rng(seed), strength, **extra).image
                fakes = [f for f, _ in animate(generated, face.landmarks, options.video_frames, options.video_size)]
            else:
                fakes = [make_forgery(method, f, lm, np.random.default_rng(seed), strength, **extra).image for f, lm in frames]
            write_mp4(cache / real_path, [f for f, _ in frames], options.fps)
            write_mp4(cache / fake_path, fakes, options.fps)
            note(f"{stem}: {face.row['face_id']} + {method}")
        split = face.row["split"]
        listing.append({"path": real_path, "label": 0, "method": "", "split": split, "face_id": face.row["face_id"]})
        listing.append({"path": fake_path, "label": 1, "method": method, "split": split, "face_id": face.row["face_id"]})
    _write_csv(cache / "videos.csv", VIDEO_COLUMNS, listing)
    return len(listing)
