"""Forged face cache: schema, labels, domains, splits, donors, resumability and the video twins."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ddtool.cli import app
from ddtool.data.dataset import read_manifest
from ddtool.data.forge import ForgeOptions, animate, forge, parse_strengths
from ddtool.data.offline import PROVENANCE_COLUMNS, FaceOptions, build_faces, parse_landmarks, read_faces
from ddtool.data.synth import METHODS, method_domain
from ddtool.errors import ConfigError
from ddtool.media import probe

STRENGTHS = (0.4, 0.8)


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory, face_image):
    """Three real faces in three groups, all in train: the astronaut, its mirror, its mirrored recoloured copy shrunk."""
    src = tmp_path_factory.mktemp("src")
    rgb = cv2.cvtColor(cv2.imread(str(face_image)), cv2.COLOR_BGR2RGB)
    mirror = rgb[:, ::-1].copy()
    # Channel swap + a different crop make it a different "identity" for the hash.
    recoloured = cv2.resize(mirror[40:, 30:, ::-1].copy(), (400, 400))
    recoloured = np.clip(recoloured.astype(int) * [1.1, 0.8, 1.0] + [0, 20, -10], 0, 255).astype(np.uint8)
    rows = []
    for name, image in (("astronaut.jpg", rgb), ("mirror.jpg", mirror), ("recoloured.jpg", recoloured)):
        path = src / "media" / "pip-demo" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_jpeg(image))
        rows.append({"file": f"media/pip-demo/{name}", "manager": "pip", "package": "demo", "version": "1.0",
                     "path_in_package": name, "licence": "public domain", "identity_rule": "", "sha256": "", "bytes": 0})
    with (src / "provenance.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PROVENANCE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path_factory.mktemp("faces")
    # link_distance 0: the three are distinct "people" here even though two are one astronaut.
    summary = build_faces(src, out, FaceOptions(ratios="1:0:0", max_side=640, link_distance=0, max_distance=0))
    assert summary.faces == 3 and summary.groups == 3
    return out


@pytest.fixture(scope="module")
def gan_weights(tmp_path_factory):
    """A randomly initialised DCGAN generator saved like gan-face-generate's weights.tar (the real one is not in the repo)."""
    import torch

    from ddtool.data.synth import _dcgan_generator

    torch.manual_seed(0)
    state = {f"main.{k}": v for k, v in _dcgan_generator()["main"].state_dict().items()}
    path = tmp_path_factory.mktemp("gan") / "weights.tar"
    torch.save({"netG_state_dict": state}, path)
    return str(path)


@pytest.fixture(scope="module")
def cache(faces_dir, gan_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "cache"
    summary = forge(faces_dir, out, ForgeOptions(strengths=STRENGTHS, per_face=1, seed=3, gan_weights=gan_weights))
    assert summary.faces == 3 and summary.errors == 0
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cache_is_a_valid_face_cache(cache, faces_dir):
    manifest = read_manifest(cache)
    faces = read_faces(faces_dir)
    per_face = 1 + len(METHODS) * len(STRENGTHS)
    assert len(manifest) == 3 * per_face
    assert manifest["video_id"].is_unique
    assert set(manifest["dataset"]) == {"offline"}
    real = manifest[manifest["method"] == "real"]
    fake = manifest[manifest["method"] != "real"]
    assert (real["label"] == 0).all() and (real["domain"] == 0).all() and len(real) == 3
    assert (fake["label"] == 1).all()
    for method, part in fake.groupby("method"):
        assert (part["domain"] == method_domain(method)).all()
        assert len(part) == 3 * len(STRENGTHS)
        assert sorted(set(part["strength"].astype(float))) == list(STRENGTHS)
    split_of_face = dict(zip(faces["face_id"], faces["split"]))
    assert (manifest["split"] == manifest["face_id"].map(split_of_face)).all()
    for _, row in manifest.iterrows():
        crop = cv2.imread(str(cache / row["crop_path"]))
        assert crop is not None and crop.shape == (256, 256, 3)
    # Real crops are the faces folder's crops unchanged; forgeries differ from their real face.
    for _, row in real.iterrows():
        source = faces.loc[faces["face_id"] == row["face_id"], "crop_path"].iloc[0]
        assert np.array_equal(cv2.imread(str(cache / row["crop_path"])), cv2.imread(str(faces_dir / source)))
    for _, row in fake.iterrows():
        twin = real.loc[real["face_id"] == row["face_id"], "crop_path"].iloc[0]
        diff = np.abs(cv2.imread(str(cache / row["crop_path"])).astype(int) - cv2.imread(str(cache / twin)).astype(int))
        assert diff.mean() > 0.3, row["crop_path"]


def test_face_swap_donor_is_another_group(cache):
    manifest = read_manifest(cache)
    real = manifest[manifest["method"] == "real"].set_index("face_id")
    for _, row in manifest[manifest["method"] == "face_swap"].iterrows():
        swapped = cv2.imread(str(cache / row["crop_path"])).astype(int)
        own = cv2.imread(str(cache / real.loc[row["face_id"], "crop_path"])).astype(int)
        others = [cv2.imread(str(cache / real.loc[f, "crop_path"])).astype(int) for f in real.index if f != row["face_id"]]
        # The swapped face is not a copy of its own face; some other face went into it.
        assert np.abs(swapped - own).mean() > 1.0
        assert all(np.abs(swapped - o).mean() > 1.0 for o in others)


def test_no_donor_in_split_is_recorded_not_fatal(faces_dir, tmp_path):
    alone = tmp_path / "faces"
    shutil.copytree(faces_dir, alone)
    table = pd.read_csv(alone / "faces.csv", dtype=str, keep_default_na=False)
    table["split"] = ["train", "val", "test"]  # every split holds one group: no donor anywhere
    table.to_csv(alone / "faces.csv", index=False)
    summary = forge(alone, tmp_path / "c", ForgeOptions(methods=("face_swap", "smooth"), strengths=(0.5,)))
    errors = pd.read_csv(tmp_path / "c" / "errors.csv")
    assert summary.errors == 3 and errors["error"].str.contains("no donor").all()
    assert summary.per_method == {"real": 3, "smooth": 3}


def test_resume_redoes_only_unfinished_faces_with_the_same_pixels(cache, faces_dir, gan_weights, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    before = read_manifest(copy)
    victim = before[before["method"] == "smooth"].iloc[0]
    digest = _digest(copy / victim["crop_path"])
    (copy / "records" / f"{victim['face_id']}.csv").unlink()
    (copy / victim["crop_path"]).unlink()
    summary = forge(faces_dir, copy, ForgeOptions(strengths=STRENGTHS, per_face=1, seed=3, gan_weights=gan_weights))
    assert summary.reused == 2
    assert _digest(copy / victim["crop_path"]) == digest
    after = read_manifest(copy)
    assert sorted(after["crop_path"]) == sorted(before["crop_path"])
    with pytest.raises(ConfigError, match="different settings"):
        forge(faces_dir, copy, ForgeOptions(strengths=STRENGTHS, per_face=1, seed=4, gan_weights=gan_weights))


def test_videos_pairs_are_listed_and_readable(cache, faces_dir, gan_weights, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    first = ForgeOptions(strengths=STRENGTHS, per_face=1, seed=3, videos=1, video_frames=4, video_size=96, gan_weights=gan_weights)
    forge(faces_dir, copy, first)
    assert probe(copy / "videos" / "clip000_real.mp4").width == 96
    # Other clip settings remake the clips but keep the crops.
    options = ForgeOptions(strengths=STRENGTHS, per_face=1, seed=3, videos=2, video_frames=6, video_size=128, gan_weights=gan_weights)
    summary = forge(faces_dir, copy, options)
    assert summary.reused == 3
    listing = pd.read_csv(copy / "videos.csv", keep_default_na=False)
    assert summary.videos == 4 and list(listing["label"]) == [0, 1, 0, 1]
    assert list(listing.columns[:4]) == ["path", "label", "method", "split"]
    assert listing.loc[0, "method"] == "" and listing.loc[1, "method"] in METHODS
    assert set(listing["split"]) == {"train"}
    for _, row in listing.iterrows():
        info = probe(copy / row["path"])
        assert info.frame_count == options.video_frames and info.width == options.video_size
    real = cv2.VideoCapture(str(copy / listing.loc[0, "path"]))
    fake = cv2.VideoCapture(str(copy / listing.loc[1, "path"]))
    _, a = real.read()
    _, b = fake.read()
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.5


def test_animate_moves_landmarks_with_the_frame(faces_dir):
    faces = read_faces(faces_dir)
    image = cv2.cvtColor(cv2.imread(str(faces_dir / faces["crop_path"].iloc[0])), cv2.COLOR_BGR2RGB)
    landmarks = parse_landmarks(faces["landmarks"].iloc[0])
    frames = animate(image, landmarks, 5, 128)
    assert len(frames) == 5 and frames[0][0].shape == (128, 128, 3)
    nose_first, nose_last = frames[0][1][30], frames[-1][1][30]
    assert (frames[-1][1] >= 0).all() and (frames[-1][1] < 128).all()
    # Zooming in: the landmarks spread out.
    assert np.ptp(frames[-1][1][:, 0]) > np.ptp(frames[0][1][:, 0])
    assert not np.allclose(nose_first, nose_last)


def test_bad_options_and_cli(faces_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown forgery method"):
        forge(faces_dir, tmp_path / "x", ForgeOptions(methods=("deepfake",)))
    with pytest.raises(ConfigError, match="strengths"):
        parse_strengths("0.3,lots")
    with pytest.raises(ConfigError, match="strengths"):
        forge(faces_dir, tmp_path / "x", ForgeOptions(strengths=(1.5,)))
    with pytest.raises(ConfigError, match="GAN weights not found"):
        forge(faces_dir, tmp_path / "x", ForgeOptions(methods=("gan_face",), gan_weights=str(tmp_path / "none.tar")))
    result = CliRunner().invoke(app, ["offline", "forge", "--faces", str(faces_dir), "--out", str(tmp_path / "c"),
                                      "--methods", "smooth,resample", "--strengths", "0.5", "--per-face", "2"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "c")
    assert manifest["method"].value_counts().to_dict() == {"real": 3, "smooth": 6, "resample": 6}
