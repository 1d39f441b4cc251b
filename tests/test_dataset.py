"""The face-cache dataset: manifest validation, video-level splits, crops, balanced sampling."""

from __future__ import annotations

import json

from functools import partial

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from ddtool.data.dataset import EpochSampler, FaceCropDataset, balanced_weights, read_manifest, split_train_val
from ddtool.errors import ConfigError, InputError
from ddtool.train.augment import Compose

MANIFEST_COLUMNS = [
    "crop_path", "video_id", "source_path", "frame_index", "timestamp", "x0", "y0", "x1", "y1",
    "track_id", "label", "domain", "method", "split", "dataset",
]


def make_cache(
    root: Path,
    real_videos: int = 4,
    fake_methods: tuple[str, ...] = ("Deepfakes", "FaceSwap"),
    fake_videos_per_method: int = 2,
    crops_per_video: int = 3,
    size: int = 32,
    splits: dict[str, str] | None = None,
    seed: int = 0,
) -> Path:
    """A tiny face cache (manifest.csv + PNG crops) following docs/architecture.md.

    Real crops are smooth noise; fake crops get a bright blocky patch, so a
    model can learn the difference within an epoch or two.
    """
    rng = np.random.default_rng(seed)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    videos = [("real", 0, f"ffpp/real/{i:03d}.mp4") for i in range(real_videos)]
    for d, method in enumerate(fake_methods, start=1):
        videos += [(method, d, f"ffpp/{method}/{i:03d}.mp4") for i in range(fake_videos_per_method)]
    rows = []
    for method, domain, video_id in videos:
        base = cv2.GaussianBlur(rng.integers(60, 200, (size, size, 3), dtype=np.uint8), (5, 5), 0)
        for f in range(crops_per_video):
            image = np.clip(base.astype(int) + rng.integers(-8, 8, base.shape), 0, 255).astype(np.uint8)
            if domain:
                block = rng.integers(0, 2, (4, 4, 1)) * 120 + 100
                patch = np.kron(block, np.ones((size // 8, size // 8, 1))).astype(np.uint8)
                image[size // 4 : size // 4 + patch.shape[0], size // 4 : size // 4 + patch.shape[1]] = patch
            crop = f"crops/{video_id.replace('/', '_')}_{f}.png"
            cv2.imwrite(str(root / crop), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            rows.append({
                "crop_path": crop, "video_id": video_id, "source_path": f"/data/{video_id}", "frame_index": f * 2,
                "timestamp": f * 0.08, "x0": 0, "y0": 0, "x1": size, "y1": size, "track_id": 0,
                "label": int(domain > 0), "domain": domain, "method": method,
                "split": (splits or {}).get(video_id, ""), "dataset": "ffpp",
            })
    pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(root / "manifest.csv", index=False)
    return root


@pytest.fixture()
def cache(tmp_path) -> Path:
    return make_cache(tmp_path / "cache")


def test_read_manifest_validates(cache, tmp_path):
    frame = read_manifest(cache)
    assert len(frame) == 8 * 3 and set(frame["label"]) == {0, 1}
    with pytest.raises(InputError, match="ddtool extract"):
        read_manifest(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    broken.mkdir()
    pd.DataFrame({"crop_path": ["a.png"], "label": [0]}).to_csv(broken / "manifest.csv", index=False)
    with pytest.raises(InputError, match="lacks column"):
        read_manifest(broken)
    frame.assign(label=2).to_csv(broken / "manifest.csv", index=False)
    with pytest.raises(InputError, match="labels must be 0"):
        read_manifest(broken)


def test_split_is_by_video_stratified_and_seeded(cache):
    frame = read_manifest(cache)
    split = split_train_val(frame, val_fraction=0.25, seed=3)
    assert not set(split.train["video_id"]) & set(split.val["video_id"])
    assert set(split.val["label"]) == {0, 1} and set(split.train["label"]) == {0, 1}
    assert len(split.train) + len(split.val) == len(frame)
    again = split_train_val(frame, val_fraction=0.25, seed=3)
    assert list(again.val["video_id"]) == list(split.val["video_id"])
    assert split.source == "video-random"
    assert split.domains == {"Deepfakes": 1, "FaceSwap": 2}


def test_manifest_split_column_wins_and_test_rows_never_train(tmp_path):
    splits = {"ffpp/real/000.mp4": "val", "ffpp/Deepfakes/000.mp4": "val", "ffpp/real/001.mp4": "test", "ffpp/FaceSwap/001.mp4": "test"}
    cache = make_cache(tmp_path / "c", splits=splits)
    split = split_train_val(read_manifest(cache))
    assert split.source == "manifest"
    assert set(split.val["video_id"]) == {"ffpp/real/000.mp4", "ffpp/Deepfakes/000.mp4"}
    used = set(split.train["video_id"]) | set(split.val["video_id"])
    assert not used & {"ffpp/real/001.mp4", "ffpp/FaceSwap/001.mp4"}


def test_holdout_method_is_left_out_and_domains_renumbered(tmp_path):
    cache = make_cache(tmp_path / "c", fake_methods=("Deepfakes", "Face2Face", "FaceSwap"))
    split = split_train_val(read_manifest(cache), holdout_method="Face2Face")
    assert "Face2Face" not in set(split.train["method"]) | set(split.val["method"])
    assert split.domains == {"Deepfakes": 1, "FaceSwap": 2}
    assert set(split.train.loc[split.train["method"] == "FaceSwap", "domain"]) == {2}
    assert split.summary()["holdout_method"] == "Face2Face"
    with pytest.raises(ConfigError, match="not a fake method"):
        split_train_val(read_manifest(cache), holdout_method="NeuralTextures")


def test_split_needs_two_videos_per_class(tmp_path):
    cache = make_cache(tmp_path / "c", real_videos=1)
    with pytest.raises(InputError, match="at least 2 real videos"):
        split_train_val(read_manifest(cache))


def test_dataset_item_resizes_and_normalises(cache):
    frame = read_manifest(cache)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    dataset = FaceCropDataset(cache, frame, 48, mean, std)
    x, label, domain, index = dataset[5]
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32
    assert (label, domain, index) == (int(frame["label"][5]), int(frame["domain"][5]), 5)
    rgb = cv2.cvtColor(cv2.imread(str(cache / frame["crop_path"][0])), cv2.COLOR_BGR2RGB)
    x0 = FaceCropDataset(cache, frame, 32, mean, std)[0][0]
    expected = (rgb[..., 0].astype(np.float32) / 255 - 0.5) / 0.25
    np.testing.assert_allclose(x0[0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_unreadable_crop_raises_naming_the_file(cache):
    frame = read_manifest(cache)
    (cache / frame["crop_path"][2]).write_bytes(b"not a png")
    dataset = FaceCropDataset(cache, frame, 32, (0.5,) * 3, (0.5,) * 3)
    dataset[1]  # neighbours still load
    with pytest.raises(InputError, match=frame["crop_path"][2].split("/")[-1]):
        dataset[2]
    frame.loc[3, "crop_path"] = "crops/gone.png"
    with pytest.raises(InputError, match="gone.png is missing"):
        FaceCropDataset(cache, frame, 32, (0.5,) * 3, (0.5,) * 3)[3]


def test_balanced_sampler_equalises_classes_and_is_reproducible():
    labels = np.array([0] * 10 + [1] * 90)
    weights = balanced_weights(labels)
    assert weights[labels == 0].sum() == pytest.approx(0.5)
    sampler = EpochSampler(labels, seed=7)
    sampler.set_epoch(0)
    first = list(sampler)
    drawn = labels[first]
    assert len(first) == 100 and 0.3 < drawn.mean() < 0.7  # would be ~0.9 unbalanced
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


def test_sampler_ranks_take_disjoint_strides_of_one_draw():
    labels = np.array([0, 1] * 11)
    full = EpochSampler(labels, seed=1, balanced=False)
    ranks = [EpochSampler(labels, seed=1, balanced=False, rank=r, world_size=2) for r in range(2)]
    assert all(len(r) == 11 for r in ranks)
    merged = [i for pair in zip(*[list(r) for r in ranks]) for i in pair]
    assert merged == list(full)
    assert sorted(list(full)) == list(range(22))


def test_augment_is_driven_by_torch_seed():
    image = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    augment = Compose(["hflip", "rotate10"])
    torch.manual_seed(5)
    a = augment(image)
    torch.manual_seed(5)
    b = augment(image)
    assert np.array_equal(a, b) and a.shape == image.shape and a.dtype == np.uint8
    with pytest.raises(ConfigError, match="unknown augmentation"):
        Compose(["no_such_augmentation"])


def test_video_like_augmentations_degrade_but_keep_shape():
    from ddtool.train.augment import downscale, jpeg, zoom

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # noise: every degradation changes it
    for step in (partial(zoom, p=1.0), partial(jpeg, p=1.0), partial(downscale, p=1.0)):
        torch.manual_seed(3)
        out = step(image)
        torch.manual_seed(3)
        again = step(image)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.array_equal(out, again)  # seeded by torch, like the papers' augmentations
        assert np.abs(out.astype(int) - image).mean() > 5  # it did something
        assert np.array_equal(step.func(image, p=0.0), image)  # p=0 leaves the crop alone
    # high-frequency energy drops: what a compressed, up-sampled video face looks like
    lap = lambda x: np.abs(np.diff(x.astype(float), axis=0)).mean()
    torch.manual_seed(0)
    assert lap(downscale(image, min_scale=0.4, p=1.0)) < lap(image)


def test_crop_margin_is_read_from_extract_or_forge_config(tmp_path):
    from ddtool.data.dataset import crop_margin

    extract_cache = tmp_path / "extract"
    extract_cache.mkdir()
    assert crop_margin(extract_cache) is None
    (extract_cache / "extract_config.json").write_text(json.dumps({"margin": 0.25, "size": 256}))
    assert crop_margin(extract_cache) == 0.25
    faces, forged = tmp_path / "faces", tmp_path / "forged"
    faces.mkdir(), forged.mkdir()
    (forged / "forge_config.json").write_text(json.dumps({"faces": str(faces)}))
    assert crop_margin(forged) is None  # the faces folder says nothing yet
    (faces / "faces_config.json").write_text(json.dumps({"margin": 0.5}))
    assert crop_margin(forged) == 0.5
    (extract_cache / "extract_config.json").write_text("{not json")
    assert crop_margin(extract_cache) is None
