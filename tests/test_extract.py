"""Face cache extraction: end to end, failures, resume, shards, workers, CLI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import face_frames, write_video
from ddtool.cli import main
from ddtool.data.extract import (
    MANIFEST_COLUMNS,
    ExtractOptions,
    extract,
    merge_caches,
)
from ddtool.data.shards import parse_shard, select_shard, shard_of
from ddtool.data.layouts import load_dataset
from ddtool.errors import ConfigError, InputError

OPTIONS = ExtractOptions(frames=2, size=64)


def colour_shifted(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [cv2.add(f, np.full_like(f, (0, 20, 40))) for f in frames]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Generic layout: 2 real + 2 fake face videos, one real video without a face, one corrupt fake."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "real").mkdir()
    (root / "fake/swap").mkdir(parents=True)
    frames = face_frames(6)
    write_video(root / "real/a.mp4", frames)
    write_video(root / "real/b.mp4", frames[::-1])
    write_video(root / "fake/swap/a.mp4", colour_shifted(frames))
    write_video(root / "fake/swap/c.mp4", colour_shifted(frames[::-1]))
    rng = np.random.default_rng(0)
    write_video(root / "real/noface.mp4", [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(4)])
    (root / "fake/swap/corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return root


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("reference")
    extract(dataset, cache, options=OPTIONS)
    return cache


def read(cache: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(cache / name, keep_default_na=False, dtype=str)


def test_end_to_end_manifest_crops_and_errors(dataset, reference):
    manifest = read(reference, "manifest.csv")
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert sorted(manifest.video_id.unique()) == [
        f"{dataset.name}/real/real/a.mp4", f"{dataset.name}/real/real/b.mp4",
        f"{dataset.name}/swap/fake/swap/a.mp4", f"{dataset.name}/swap/fake/swap/c.mp4",
    ]
    assert len(manifest) == 8  # 2 sampled frames x 4 videos with a face
    assert set(manifest.frame_index) == {"0", "5"}  # evenly spaced: first and last frame
    fake = manifest[manifest.video_id.str.contains("/swap/")]
    assert set(fake.label) == {"1"} and set(fake.domain) == {"1"} and set(fake.method) == {"swap"}
    for crop_path in manifest.crop_path:
        image = cv2.imread(str(reference / crop_path))
        assert image is not None and image.shape == (64, 64, 3)
    errors = read(reference, "errors.csv")
    assert sorted(errors.video_id) == [f"{dataset.name}/real/real/noface.mp4", f"{dataset.name}/swap/fake/swap/corrupt.mp4"]
    assert "no face" in errors.set_index("video_id").loc[f"{dataset.name}/real/real/noface.mp4", "error"]
    assert not list(reference.rglob("*.partial")) and not list(reference.rglob("*.tmp"))


def test_rerun_skips_everything_and_changed_settings_are_refused(dataset, reference, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(reference, cache)
    summary = extract(dataset, cache, options=OPTIONS)
    assert summary.n_skipped == summary.n_items == 6
    assert read(cache, "manifest.csv").equals(read(reference, "manifest.csv"))
    with pytest.raises(ConfigError, match="size"):
        extract(dataset, cache, options=ExtractOptions(frames=2, size=96))


class Interrupt(Exception):
    pass


def test_resume_after_interruption_matches_uninterrupted_run(dataset, reference, tmp_path):
    cache = tmp_path / "cache"
    processed = []

    def crash_after_two(outcome, done, total):
        processed.append(outcome.video_id)
        if len(processed) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        extract(dataset, cache, options=OPTIONS, on_video_done=crash_after_two)
    assert not (cache / "manifest.csv").exists()
    # Simulate a crash in the middle of the third video: a half-written crop folder.
    partial = cache / "crops" / processed[0].rsplit("/", 1)[0] / "zzz.mp4.partial"
    partial.mkdir(parents=True)
    (partial / "000000_0.png").write_bytes(b"half")
    summary = extract(dataset, cache, options=OPTIONS)
    assert summary.n_skipped == 2
    manifest = read(cache, "manifest.csv")
    assert not manifest.duplicated(["video_id", "frame_index", "track_id"]).any()
    assert manifest.equals(read(reference, "manifest.csv"))
    assert read(cache, "errors.csv").equals(read(reference, "errors.csv"))


def test_shards_partition_and_merge_equals_single_run(dataset, reference, tmp_path):
    items = load_dataset(dataset).items
    parts = [select_shard(items, (i, 2), key=lambda item: item.video_id) for i in range(2)]
    assert sorted(i.video_id for p in parts for i in p) == sorted(i.video_id for i in items)
    assert all(shard_of(i.video_id, 2) == 1 for i in parts[1])
    for i in range(2):
        extract(dataset, tmp_path / f"shard{i}", options=OPTIONS, shard=(i, 2))
    merged = merge_caches([tmp_path / "shard0", tmp_path / "shard1"], tmp_path / "merged")
    assert merged.n_crops == 8
    assert read(tmp_path / "merged", "manifest.csv").equals(read(reference, "manifest.csv"))
    errors = read(tmp_path / "merged", "errors.csv").sort_values("video_id", ignore_index=True)
    assert errors.equals(read(reference, "errors.csv").sort_values("video_id", ignore_index=True))
    for crop_path in read(tmp_path / "merged", "manifest.csv").crop_path:
        assert (tmp_path / "merged" / crop_path).is_file()
    # the merged cache is a normal cache: rerunning resumes with nothing to do
    assert extract(dataset, tmp_path / "merged", options=OPTIONS).n_skipped == 6
    with pytest.raises(InputError, match="in both"):
        merge_caches([tmp_path / "shard0", tmp_path / "shard0"], tmp_path / "twice")
    with pytest.raises(ConfigError, match="need 0 <= I < N"):
        parse_shard("2/2")


def test_two_workers_give_the_same_cache(dataset, reference, tmp_path):
    extract(dataset, tmp_path / "cache", options=OPTIONS, workers=2)
    assert read(tmp_path / "cache", "manifest.csv").equals(read(reference, "manifest.csv"))


def test_cli_extract_counts_failures_and_exits_3_when_nothing_extracted(dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["extract", str(dataset), "--out", str(tmp_path / "cli"), "--frames", "2", "--size", "64"])
    assert done.value.code == 0
    err = capsys.readouterr().err
    assert "8 face crops" in err and "2 failed" in err
    assert len(read(tmp_path / "cli", "manifest.csv")) == 8

    bad = tmp_path / "bad"
    (bad / "real").mkdir(parents=True)
    (bad / "fake").mkdir()
    (bad / "real/x.mp4").write_bytes(b"not a video at all")
    (bad / "fake/y.mp4").write_bytes(b"")
    with pytest.raises(SystemExit) as done:
        main(["extract", str(bad), "--out", str(tmp_path / "badcache"), "--frames", "2"])
    assert done.value.code == 3
    assert "nothing could be extracted" in capsys.readouterr().err
    assert len(read(tmp_path / "badcache", "errors.csv")) == 2


def test_cli_shards_and_merge(dataset, reference, tmp_path, capsys):
    for i in range(3):
        with pytest.raises(SystemExit) as done:
            main(["extract", str(dataset), "--out", str(tmp_path / f"s{i}"), "--frames", "2", "--size", "64",
                  "--shard", f"{i}/3"])
        items = select_shard(load_dataset(dataset).items, (i, 3), key=lambda item: item.video_id)
        all_bad = items and all(Path(it.source_path).name in ("noface.mp4", "corrupt.mp4") for it in items)
        # An empty shard is not an error; a shard whose every video failed is.
        assert done.value.code == (3 if all_bad else 0)
    with pytest.raises(SystemExit) as done:
        main(["extract", "--merge", *(str(tmp_path / f"s{i}") for i in range(3)), "--out", str(tmp_path / "m")])
    assert done.value.code == 0
    assert read(tmp_path / "m", "manifest.csv").equals(read(reference, "manifest.csv"))
    with pytest.raises(SystemExit) as done:
        main(["extract", str(dataset), str(dataset), "--out", str(tmp_path / "two")])
    assert done.value.code == 2
    assert "several paths" in capsys.readouterr().err


def test_cli_features_noise_on_extracted_cache(reference, tmp_path, capsys):
    cache = tmp_path / "cache"
    shutil.copytree(reference, cache)
    with pytest.raises(SystemExit) as done:
        main(["features", "noise", str(cache), "--frames", "3"])
    assert done.value.code == 0
    assert np.load(cache / "noise_volumes.npz")["volume"].shape == (4, 3, 100, 100)
    assert len(pd.read_csv(cache / "noise_stats.csv")) == 8


def test_extract_cuts_the_crop_style_a_card_asks_for(dataset, reference, tmp_path):
    """--crop mesonet_aligned writes landmark-aligned squares and records the style; eval then accepts only matching cards."""
    import json

    from ddtool.evaluate.predict import check_cache_crop

    aligned = tmp_path / "aligned"
    extract(dataset, aligned, options=ExtractOptions(frames=2, size=64, crop="mesonet_aligned"))
    config = json.loads((aligned / "extract_config.json").read_text(encoding="utf-8"))
    assert config["crop"] == "mesonet_aligned"
    assert "crop" not in json.loads((reference / "extract_config.json").read_text(encoding="utf-8"))  # box caches unchanged
    rows, boxed = read(aligned, "manifest.csv"), read(reference, "manifest.csv")
    assert len(rows) == len(boxed) > 0
    first_aligned = cv2.imread(str(aligned / rows["crop_path"].iloc[0]))
    first_box = cv2.imread(str(reference / boxed["crop_path"].iloc[0]))
    assert first_aligned.shape == first_box.shape == (64, 64, 3)
    assert np.abs(first_aligned.astype(int) - first_box.astype(int)).mean() > 5  # a different cut of the same face
    check_cache_crop(aligned, {"model": "meso4", "input": {"crop": "mesonet_aligned"}})
    with pytest.raises(ConfigError, match="mesonet_aligned"):
        check_cache_crop(aligned, {"model": "meso4", "input": {"crop": "box"}})
    with pytest.raises(ConfigError, match="crop style"):
        ExtractOptions(crop="diagonal").validate()
