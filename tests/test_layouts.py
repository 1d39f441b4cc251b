"""Every dataset layout adapter on a miniature copy of its folder structure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ddtool.data.layouts import FFPP_METHODS, detect_layout, load_dataset
from ddtool.data.sampling import balance, parse_ratios, split_by_video
from ddtool.errors import ConfigError, InputError, LayoutError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def make_ffpp(root: Path, compression: str = "c23") -> Path:
    for name in ("071", "054", "000", "003"):
        touch(root / f"original_sequences/youtube/{compression}/videos/{name}.mp4")
    for method in ("Deepfakes", "FaceSwap"):
        for name in ("071_054", "054_071", "000_003"):
            touch(root / f"manipulated_sequences/{method}/{compression}/videos/{name}.mp4")
    (root / "splits").mkdir()
    (root / "splits/train.json").write_text(json.dumps([["071", "054"]]))
    (root / "splits/test.json").write_text(json.dumps([["000", "003"]]))
    return root


def test_ffpp_labels_domains_splits_and_unique_ids(tmp_path):
    index = load_dataset(make_ffpp(tmp_path), layout="auto")
    assert index.layout == "ffpp"
    by_id = {item.video_id: item for item in index.items}
    assert len(by_id) == len(index.items) == 4 + 6
    real = by_id["ffpp/real/original_sequences/youtube/c23/videos/071.mp4"]
    assert (real.label, real.domain, real.method, real.split) == (0, 0, "real", "train")
    # the same file name in two methods: two items, two domains, both in the pair's split
    df = by_id["ffpp/Deepfakes/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"]
    fs = by_id["ffpp/FaceSwap/manipulated_sequences/FaceSwap/c23/videos/000_003.mp4"]
    assert (df.label, df.domain, df.split) == (1, FFPP_METHODS.index("Deepfakes") + 1, "test")
    assert (fs.label, fs.domain, fs.split) == (1, FFPP_METHODS.index("FaceSwap") + 1, "test")
    assert by_id["ffpp/FaceSwap/manipulated_sequences/FaceSwap/c23/videos/054_071.mp4"].split == "train"
    assert {i.compression for i in index.items} == {"c23"}


def test_ffpp_wrong_compression_names_the_available_ones(tmp_path):
    make_ffpp(tmp_path, compression="c40")
    with pytest.raises(LayoutError, match="c40"):
        load_dataset(tmp_path, layout="ffpp", compression="c23")
    assert len(load_dataset(tmp_path, compression="c40").items) == 10


def test_celebdf_test_list_marks_test_split_and_missing_files(tmp_path):
    touch(tmp_path / "Celeb-real/id0_0000.mp4")
    touch(tmp_path / "YouTube-real/00000.mp4")
    touch(tmp_path / "Celeb-synthesis/id0_id1_0000.mp4")
    touch(tmp_path / "Celeb-synthesis/id0_id1_0001.mp4")
    (tmp_path / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n0 Celeb-synthesis/gone.mp4\n"
    )
    index = load_dataset(tmp_path)
    assert index.layout == "celebdf"
    got = {i.video_id: (i.label, i.domain, i.split) for i in index.items}
    assert got == {
        "celebdf/real/Celeb-real/id0_0000.mp4": (0, 0, "test"),
        "celebdf/real/YouTube-real/00000.mp4": (0, 0, "train"),
        "celebdf/Celeb-synthesis/Celeb-synthesis/id0_id1_0000.mp4": (1, 1, "test"),
        "celebdf/Celeb-synthesis/Celeb-synthesis/id0_id1_0001.mp4": (1, 1, "train"),
    }
    assert [m.path for m in index.missing] == ["Celeb-synthesis/gone.mp4"]


def test_dfdc_parts_labels_and_missing_files(tmp_path):
    for part, files in (("dfdc_train_part_0", ("a.mp4", "b.mp4")), ("dfdc_train_part_1", ("a.mp4",))):
        for name in files:
            touch(tmp_path / part / name)
    meta0 = {"a.mp4": {"label": "FAKE", "original": "b.mp4", "split": "train"}, "b.mp4": {"label": "REAL", "split": "train"},
             "lost.mp4": {"label": "FAKE", "original": "b.mp4", "split": "train"}}
    (tmp_path / "dfdc_train_part_0/metadata.json").write_text(json.dumps(meta0))
    (tmp_path / "dfdc_train_part_1/metadata.json").write_text(json.dumps({"a.mp4": {"label": "REAL", "split": "test"}}))
    index = load_dataset(tmp_path)
    assert index.layout == "dfdc"
    got = {i.video_id: (i.label, i.domain, i.split) for i in index.items}
    assert got == {
        "dfdc/fake/dfdc_train_part_0/a.mp4": (1, 1, ""),
        "dfdc/real/dfdc_train_part_0/b.mp4": (0, 0, ""),
        "dfdc/real/dfdc_train_part_1/a.mp4": (0, 0, "test"),
    }
    assert [m.path for m in index.missing] == ["dfdc_train_part_0/lost.mp4"]


def test_hff_image_folders_one_domain_per_method(tmp_path):
    touch(tmp_path / "real/ffhq/0001.png")
    touch(tmp_path / "fake/stylegan/0001.png")
    touch(tmp_path / "fake/pggan/0001.jpg")
    index = load_dataset(tmp_path)
    assert index.layout == "hff"
    got = {i.video_id: (i.label, i.domain, i.method) for i in index.items}
    assert got == {
        "hff/real/real/ffhq/0001.png": (0, 0, "real"),
        "hff/pggan/fake/pggan/0001.jpg": (1, 1, "pggan"),
        "hff/stylegan/fake/stylegan/0001.png": (1, 2, "stylegan"),
    }


def test_generic_folder_with_split_subfolders_and_loose_fakes(tmp_path):
    root = tmp_path / "mydata"
    touch(root / "train/real/a.mp4")
    touch(root / "train/fake/a.mp4")
    touch(root / "test/Real/b.jpg")
    touch(root / "test/fake/swap/b.mp4")
    index = load_dataset(root)
    assert index.layout == "folder"
    got = {i.video_id: (i.label, i.domain, i.split) for i in index.items}
    assert got == {
        "mydata/real/train/real/a.mp4": (0, 0, "train"),
        "mydata/fake/train/fake/a.mp4": (1, 1, "train"),
        "mydata/real/test/Real/b.jpg": (0, 0, "test"),
        "mydata/swap/test/fake/swap/b.mp4": (1, 2, "test"),
    }


def test_csv_list_with_relative_paths_and_missing_rows(tmp_path):
    touch(tmp_path / "v/one.mp4")
    touch(tmp_path / "v/two.mp4")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label,method,split\nv/one.mp4,real,,train\nv/two.mp4,1,gan,test\nv/none.mp4,0,,\n")
    assert detect_layout(listing) == "csv"
    index = load_dataset(listing)
    got = {i.video_id: (i.label, i.domain, i.method, i.split) for i in index.items}
    assert got == {"list/real/v/one.mp4": (0, 0, "real", "train"), "list/gan/v/two.mp4": (1, 1, "gan", "test")}
    assert [m.path for m in index.missing] == ["v/none.mp4"]


def test_csv_bad_label_names_the_line(tmp_path):
    touch(tmp_path / "a.mp4")
    listing = tmp_path / "list.csv"
    listing.write_text("path,label\na.mp4,maybe\n")
    with pytest.raises(LayoutError, match=r"list.csv:2"):
        load_dataset(listing)


def test_unknown_layout_lists_every_layout(tmp_path):
    touch(tmp_path / "random/file.mp4")
    with pytest.raises(LayoutError) as info:
        load_dataset(tmp_path)
    for name in ("ffpp", "celebdf", "dfdc", "hff", "folder", "csv"):
        assert f"{name} = " in str(info.value)
    with pytest.raises(InputError):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(LayoutError, match="unknown layout"):
        load_dataset(tmp_path, layout="kinetics")


# ------------------------------------------------------------------ sampling


def manifest(videos: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """{video_id: (label, crops)} -> manifest-like frame."""
    rows = [{"video_id": v, "label": label, "crop_path": f"{v}/{k}.png", "split": ""}
            for v, (label, n) in videos.items() for k in range(n)]
    return pd.DataFrame(rows)


def test_balance_equal_classes_spread_over_videos():
    df = manifest({"r1": (0, 50), "r2": (0, 2), "r3": (0, 2), "f1": (1, 4), "f2": (1, 4)})
    out = balance(df, seed=1)
    counts = out["label"].value_counts()
    assert counts[0] == counts[1] == 8
    per_video = out[out.label == 0].groupby("video_id").size().to_dict()
    assert per_video == {"r1": 4, "r2": 2, "r3": 2}  # the long video does not crowd out the short ones
    assert out.equals(balance(df, seed=1))
    assert len(balance(df, seed=1, n_per_class=3)) == 6
    with pytest.raises(ConfigError, match="smaller class has 8"):
        balance(df, seed=1, n_per_class=9)


def test_split_by_video_keeps_videos_whole_and_respects_existing():
    videos = {f"r{i}": (0, 3) for i in range(12)} | {f"f{i}": (1, 3) for i in range(12)}
    df = manifest(videos)
    df.loc[df.video_id == "r0", "split"] = "test"
    out = split_by_video(df, "8:1:1", seed=3)
    assert (out.groupby("video_id")["split"].nunique() == 1).all()
    assert set(out.loc[out.video_id == "r0", "split"]) == {"test"}
    assert set(out["split"]) == {"train", "val", "test"}
    for label in (0, 1):
        assert out[(out.label == label) & (out.split == "train")].video_id.nunique() >= 9
    five_one = split_by_video(df, "5:1", seed=3, keep_existing=False)
    assert set(five_one["split"]) == {"train", "test"}
    assert five_one.drop_duplicates("video_id").split.value_counts()["test"] == 4  # 2 of 12 per class
    assert parse_ratios("5:1") == pytest.approx((5 / 6, 0.0, 1 / 6))
    with pytest.raises(ConfigError):
        parse_ratios("five:one")
