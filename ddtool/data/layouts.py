"""Dataset folders -> labelled items.

Each layout adapter turns a folder (or, for `csv`, a list file) into a
`DatasetIndex`: the `Item`s it found plus the files its metadata lists that
are not on disk (recorded, never a crash). Labels: 0 real, 1 fake. Domains:
0 real, 1..k forgery methods in a fixed, documented order per layout.

video_id = "<dataset>/<method>/<path relative to the dataset root>" with
forward slashes: unique (FF++ has a `000_003.mp4` in every method folder) and
stable across machines and operating systems.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ddtool.errors import InputError, LayoutError
from ddtool.media.suffixes import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES


SPLITS = ("train", "val", "test")

# FF++ domain numbers are fixed so that caches made from different subsets of
# FF++ agree on what domain 3 means.
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
FFPP_COMPRESSIONS = ("raw", "c23", "c40")
# Real sources: YouTube originals (pairs with the four/five face methods) and
# the actors' recordings that DeepFakeDetection manipulates.
FFPP_REAL_SOURCES = ("youtube", "actors")


@dataclass(frozen=True)
class Item:
    """One video or image of a dataset with its ground truth."""

    video_id: str
    source_path: Path
    label: int  # 0 real, 1 fake
    domain: int  # 0 real, 1..k forgery method
    method: str  # "real" for real items, else the forgery method
    split: str  # train / val / test, or "" when the dataset does not say
    dataset: str
    compression: str = ""


@dataclass(frozen=True)
class MissingFile:
    """A file a metadata list names that is not on disk."""

    path: str
    listed_in: str


@dataclass
class DatasetIndex:
    layout: str
    root: Path
    items: list[Item]
    missing: list[MissingFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # disagreements worth telling the user

    def methods(self) -> dict[int, str]:
        return {item.domain: item.method for item in self.items}


@dataclass(frozen=True)
class Layout:
    name: str
    expects: str  # what the folder must look like, shown in LayoutError
    detect: Callable[[Path], bool]
    load: Callable[..., DatasetIndex]


def make_video_id(dataset: str, method: str, relative: Path | str) -> str:
    return f"{dataset}/{method}/{Path(relative).as_posix()}"


def _media_files(folder: Path, suffixes: frozenset[str] = MEDIA_SUFFIXES) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _find_dir(parent: Path, name: str) -> Path | None:
    """A child folder matched case-insensitively (users rename Real/ to real/ and back)."""
    exact = parent / name
    if exact.is_dir():
        return exact
    for child in sorted(parent.iterdir()) if parent.is_dir() else []:
        if child.is_dir() and child.name.lower() == name.lower():
            return child
    return None


def _require_items(index: DatasetIndex, hint: str) -> DatasetIndex:
    if not index.items:
        raise LayoutError(f"{index.layout} layout at {index.root} contains no media files; {hint}")
    return index


# --------------------------------------------------------------------------- FF++


def _ffpp_detect(root: Path) -> bool:
    return (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir()


def _ffpp_split_lookup(root: Path) -> tuple[dict[str, str], list[str]]:
    """Map FF++ video stems ("071", "071_054") to their official split."""
    lookup: dict[str, str] = {}
    found: list[str] = []
    for folder in (root, root / "splits"):
        for split in SPLITS:
            path = folder / f"{split}.json"
            if not path.is_file() or split in found:
                continue
            try:
                pairs = json.loads(path.read_text(encoding="utf-8"))
                for a, b in pairs:
                    for stem in (str(a), str(b), f"{a}_{b}", f"{b}_{a}"):
                        lookup[stem] = split
            except (ValueError, TypeError) as exc:
                raise LayoutError(
                    f"FF++ split file {path} is not a JSON list of pairs like [[\"071\", \"054\"], ...] ({exc}); "
                    "replace it with the official file or delete it to extract without splits"
                ) from None
            found.append(split)
    return lookup, found


def load_ffpp(root: Path, compression: str = "c23") -> DatasetIndex:
    if compression not in FFPP_COMPRESSIONS:
        raise LayoutError(f"unknown FF++ compression {compression!r}; choose one of {', '.join(FFPP_COMPRESSIONS)}")
    splits, split_files = _ffpp_split_lookup(root)
    items: list[Item] = []
    available: set[str] = set()
    for source in FFPP_REAL_SOURCES:
        base = root / "original_sequences" / source
        if base.is_dir():
            available.update(p.name for p in base.iterdir() if p.is_dir())
        for path in _media_files(base / compression / "videos", VIDEO_SUFFIXES):
            items.append(_ffpp_item(root, path, 0, 0, "real", splits, compression))
    for domain, method in enumerate(FFPP_METHODS, start=1):
        base = root / "manipulated_sequences" / method
        if base.is_dir():
            available.update(p.name for p in base.iterdir() if p.is_dir())
        for path in _media_files(base / compression / "videos", VIDEO_SUFFIXES):
            items.append(_ffpp_item(root, path, 1, domain, method, splits, compression))
    index = DatasetIndex("ffpp", root, items)
    if not split_files:
        index.notes.append("no official train/val/test.json found in the root or splits/: split left empty")
    others = sorted(available & set(FFPP_COMPRESSIONS) - {compression})
    hint = f"compressions present: {', '.join(others)} (use --compression)" if others else (
        "expected original_sequences/youtube/<compression>/videos/*.mp4 and "
        "manipulated_sequences/<method>/<compression>/videos/*.mp4"
    )
    return _require_items(index, hint)


def _ffpp_item(root: Path, path: Path, label: int, domain: int, method: str, splits: dict[str, str], compression: str) -> Item:
    rel = path.relative_to(root)
    return Item(
        video_id=make_video_id("ffpp", method, rel),
        source_path=path,
        label=label,
        domain=domain,
        method=method,
        split=splits.get(path.stem, ""),
        dataset="ffpp",
        compression=compression,
    )


# ---------------------------------------------------------------------- Celeb-DF

CELEBDF_REAL = ("Celeb-real", "YouTube-real")
CELEBDF_FAKE = "Celeb-synthesis"
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"


def _celebdf_detect(root: Path) -> bool:
    return any((root / name).is_dir() for name in (*CELEBDF_REAL, CELEBDF_FAKE))


def load_celebdf(root: Path) -> DatasetIndex:
    test_list = root / CELEBDF_TEST_LIST
    listed: dict[str, int] = {}  # relative path -> label as ddtool counts it
    index = DatasetIndex("celebdf", root, [])
    if test_list.is_file():
        for number, line in enumerate(test_list.read_text(encoding="utf-8").splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[0] not in ("0", "1"):
                raise LayoutError(
                    f"{test_list}:{number}: expected '<1 real|0 fake> <relative path>', got {line!r}; "
                    "fix the line or restore the official list"
                )
            # Celeb-DF's list counts 1 as real; ddtool counts 1 as fake.
            listed[Path(parts[1]).as_posix()] = 1 - int(parts[0])
    else:
        index.notes.append(f"no {CELEBDF_TEST_LIST}: split left empty")
    for folder, label in [(name, 0) for name in CELEBDF_REAL] + [(CELEBDF_FAKE, 1)]:
        method = "real" if label == 0 else CELEBDF_FAKE
        for path in _media_files(root / folder, VIDEO_SUFFIXES):
            rel = path.relative_to(root).as_posix()
            split = ("test" if rel in listed else "train") if listed else ""
            if rel in listed and listed[rel] != label:
                index.notes.append(f"{CELEBDF_TEST_LIST} gives {rel} the other label; the folder's label was kept")
            index.items.append(Item(make_video_id("celebdf", method, rel), path, label, label, method, split, "celebdf"))
    on_disk = {item.video_id.split("/", 2)[2] for item in index.items}
    index.missing = [MissingFile(rel, str(test_list)) for rel in sorted(listed) if rel not in on_disk]
    return _require_items(index, "expected Celeb-real/, YouTube-real/ and Celeb-synthesis/ with *.mp4 files")


# -------------------------------------------------------------------------- DFDC


def _dfdc_metadata_files(root: Path) -> list[Path]:
    if (root / "metadata.json").is_file():
        return [root / "metadata.json"]
    return sorted(p / "metadata.json" for p in root.iterdir() if p.is_dir() and (p / "metadata.json").is_file())


def _dfdc_detect(root: Path) -> bool:
    return bool(_dfdc_metadata_files(root))


def load_dfdc(root: Path) -> DatasetIndex:
    index = DatasetIndex("dfdc", root, [])
    for meta_path in _dfdc_metadata_files(root):
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise LayoutError(f"DFDC metadata {meta_path} is not valid JSON ({exc}); re-download that part") from None
        if not isinstance(meta, dict):
            raise LayoutError(f"DFDC metadata {meta_path} must map file names to records; re-download that part")
        for name in sorted(meta):
            record = meta[name]
            label_text = str(record.get("label", "")).upper() if isinstance(record, dict) else ""
            if label_text not in ("REAL", "FAKE"):
                raise LayoutError(f"DFDC metadata {meta_path}: {name!r} has label {label_text or 'none'}; expected REAL or FAKE")
            path = meta_path.parent / name
            if not path.is_file():
                index.missing.append(MissingFile(str(path.relative_to(root)), str(meta_path)))
                continue
            label = 1 if label_text == "FAKE" else 0
            method = "fake" if label else "real"
            # Every public DFDC part says split "train"; keeping that would stop
            # split_by_video from making the papers' 5:1 split, so only a
            # real val/test marking is kept.
            split = str(record.get("split", "")).lower()
            split = split if split in ("val", "test") else ""
            rel = path.relative_to(root)
            index.items.append(Item(make_video_id("dfdc", method, rel), path, label, label, method, split, "dfdc"))
    return _require_items(index, "every file its metadata.json lists is missing")


# ------------------------------------------------------------ HFF and plain folders


def _split_roots(root: Path) -> list[tuple[str, Path]]:
    """[(split, folder holding real/ and fake/)]: the root itself or train/val/test children."""
    by_split = [(s, _find_dir(root, s)) for s in SPLITS]
    with_classes = [(s, d) for s, d in by_split if d is not None and _find_dir(d, "real") and _find_dir(d, "fake")]
    if with_classes:
        return with_classes
    return [("", root)]


def _has_real_fake(root: Path) -> bool:
    return any(_find_dir(base, "real") and _find_dir(base, "fake") for _, base in _split_roots(root))


def _is_hff(root: Path) -> bool:
    """Image-only real/ + fake/<method>/ folders (no loose files in fake/)."""
    if not _has_real_fake(root):
        return False
    for _, base in _split_roots(root):
        fake = _find_dir(base, "fake")
        real = _find_dir(base, "real")
        if any(p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES for p in fake.iterdir()):
            return False
        if not any(p.is_dir() for p in fake.iterdir()):
            return False
        if _media_files(fake, VIDEO_SUFFIXES) or _media_files(real, VIDEO_SUFFIXES):
            return False
    return True


def _load_real_fake(root: Path, layout: str, dataset: str, suffixes: frozenset[str]) -> DatasetIndex:
    entries: list[tuple[str, Path, int, str]] = []  # split, path, label, method
    for split, base in _split_roots(root):
        real, fake = _find_dir(base, "real"), _find_dir(base, "fake")
        if real is None or fake is None:
            raise LayoutError(f"{layout} layout needs real/ and fake/ folders in {base}")
        entries += [(split, p, 0, "real") for p in _media_files(real, suffixes)]
        for path in _media_files(fake, suffixes):
            inside = path.relative_to(fake).parts
            entries.append((split, path, 1, inside[0] if len(inside) > 1 else "fake"))
    # Domains follow sorted method names so the numbering does not depend on
    # which files happen to be listed first.
    domains = {m: d for d, m in enumerate(sorted({m for _, _, label, m in entries if label == 1}), start=1)}
    items = [
        Item(make_video_id(dataset, method, path.relative_to(root)), path, label, domains.get(method, 0), method, split, dataset)
        for split, path, label, method in entries
    ]
    return DatasetIndex(layout, root, items)


def load_hff(root: Path) -> DatasetIndex:
    index = _load_real_fake(root, "hff", "hff", IMAGE_SUFFIXES)
    return _require_items(index, "expected real/**/*.jpg|png and fake/<method>/**/*.jpg|png")


def _dataset_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name).strip("._")
    return name or "folder"


def load_folder(root: Path) -> DatasetIndex:
    index = _load_real_fake(root, "folder", _dataset_name(root), MEDIA_SUFFIXES)
    return _require_items(index, "expected videos or images under real/ and fake/ (or fake/<method>/)")


# --------------------------------------------------------------------------- CSV

_LABEL_WORDS = {"0": 0, "1": 1, "real": 0, "fake": 1}


def _csv_detect(root: Path) -> bool:
    return root.is_file() and root.suffix.lower() == ".csv"


def load_csv(root: Path) -> DatasetIndex:
    """`path,label[,method,split]` with a header; paths relative to the CSV's folder or absolute."""
    base = root.parent
    dataset = _dataset_name(root.with_suffix(""))
    rows: list[tuple[Path, int, str, str]] = []
    index = DatasetIndex("csv", root, [])
    with root.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        if "path" not in header or "label" not in header:
            raise LayoutError(f"{root} needs a header with at least 'path,label' (optional: method,split); found {header}")
        for number, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
            label = _LABEL_WORDS.get(row["label"].lower())
            if label is None:
                raise LayoutError(f"{root}:{number}: label {row['label']!r} is not 0/1/real/fake")
            split = row.get("split", "").lower()
            if split not in ("", *SPLITS):
                raise LayoutError(f"{root}:{number}: split {split!r} is not train/val/test or empty")
            path = Path(row["path"])
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                index.missing.append(MissingFile(row["path"], str(root)))
                continue
            method = "real" if label == 0 else (row.get("method") or "fake")
            rows.append((path, label, method, split))
    domains = {m: d for d, m in enumerate(sorted({m for _, label, m, _ in rows if label == 1}), start=1)}
    for path, label, method, split in rows:
        try:
            rel = path.resolve().relative_to(base.resolve())
        except ValueError:  # outside the CSV's folder: keep the whole path, minus the drive/root
            rel = Path(*path.resolve().parts[1:])
        index.items.append(Item(make_video_id(dataset, method, rel), path, label, domains.get(method, 0), method, split, dataset))
    return _require_items(index, "no listed file exists")


# ------------------------------------------------------------------- registry

# Detection order matters: the specific layouts come before the generic folder.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("ffpp", "FaceForensics++: original_sequences/youtube/{raw,c23,c40}/videos/*.mp4 and "
               "manipulated_sequences/<method>/{c23,...}/videos/*.mp4 (+ train/val/test.json in root or splits/)",
               _ffpp_detect, load_ffpp),
        Layout("celebdf", "Celeb-DF v2: Celeb-real/, YouTube-real/, Celeb-synthesis/ (+ List_of_testing_videos.txt)",
               _celebdf_detect, load_celebdf),
        Layout("dfdc", "DFDC: metadata.json in the folder or in dfdc_train_part_N/ subfolders",
               _dfdc_detect, load_dfdc),
        Layout("hff", "HFF-style images: real/**/*.jpg|png and fake/<method>/**/*.jpg|png "
               "(optionally inside train/ val/ test/)", _is_hff, load_hff),
        Layout("folder", "generic: real/ and fake/ (or fake/<method>/) with videos or images "
               "(optionally inside train/ val/ test/)", _has_real_fake, load_folder),
        Layout("csv", "a CSV file with header path,label[,method,split] (label 0/1 or real/fake)",
               _csv_detect, load_csv),
    )
}


def _layout_catalogue() -> str:
    return "; ".join(f"{name} = {layout.expects}" for name, layout in LAYOUTS.items())


def detect_layout(root: str | Path) -> str:
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist; give a dataset folder or a CSV list")
    if root.is_file():
        if _csv_detect(root):
            return "csv"
        raise LayoutError(f"{root} is a file but not a .csv list. Known layouts: {_layout_catalogue()}")
    for name, layout in LAYOUTS.items():
        if name != "csv" and layout.detect(root):
            return name
    raise LayoutError(f"cannot recognise the dataset layout of {root}. Known layouts: {_layout_catalogue()}")


def load_dataset(root: str | Path, layout: str = "auto", compression: str = "c23") -> DatasetIndex:
    """Index a dataset folder (or CSV list); `layout="auto"` detects it."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist; give a dataset folder or a CSV list")
    name = detect_layout(root) if layout == "auto" else layout
    if name not in LAYOUTS:
        raise LayoutError(f"unknown layout {name!r}; choose auto or one of: {_layout_catalogue()}")
    if name == "csv" and not root.is_file():
        raise LayoutError(f"layout csv needs a .csv file, got the folder {root}")
    if name != "csv" and not root.is_dir():
        raise LayoutError(f"layout {name} needs a folder, got the file {root}")
    if name == "ffpp":
        index = load_ffpp(root, compression=compression)
    else:
        index = LAYOUTS[name].load(root)
    _check_unique(index)
    return index


def _check_unique(index: DatasetIndex) -> None:
    seen: set[str] = set()
    for item in index.items:
        if item.video_id in seen:
            raise LayoutError(f"two files map to the video id {item.video_id!r}; rename one of them")
        seen.add(item.video_id)
