"""Prepare the cross-source data of benchmarks/cross_source.py: c40-like clips and the face caches.

    python benchmarks/cross_source_data.py --dftrain DATA/dftrain --out DATA/xsrc [--workers 2]

Writes under --out (keep it outside the repository; nothing here is ever committed):
  c40/                FF++ clips of dftrain re-encoded with libx264 at qp 40 (how FF++ made c40)
  lists/*.csv         `csv`-layout lists: dftrain (FF++ c23 crops and clips, Celeb-DF clips), ffpp_c40,
                      realdf (../shared/realdf-dev), realfaces (../shared/realfaces, split by person)
  cache_<list>/       `ddtool extract` face caches of each list, cut as scan cuts faces: CenterFace,
                      box crop with margin 0.3, 224 px, 16 frames per video
  train_ffpp/         the training cache (`--training-cache`): the crops of cache_dftrain that may be trained on,
                      as a cache of its own (manifest + a link to the crops): FF++ and DFD rows of the official
                      train/val splits and the `extra` crops, less 1 `extra` group in 5 (held out: the leave-one-
                      method-out test's own-publisher reals, `is_held_out_extra`). Never FF++ test, Celeb-DF or realdf.
  lists/calibration_reals.csv   the real reference of `ddtool weights calibrate --split test` (issue 21): the realfaces
                      people held out of all training and the FF++ test-split originals
  labels/ffpp_test.csv, labels/celebdf.csv   `path,label,group` of dftrain's FF++ test clips and Celeb-DF clips, for
                      `benchmarks/realdf.py --extra-labels` (verdicts through scan)
Every step resumes: a clip already re-encoded or a face cache already made is kept.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
COLUMNS = ["path", "label", "method", "split", "dataset", "group", "source_split"]
SPLITS = ("train", "val", "test")
# As scan cuts faces for the 224 px members (docs/benchmark-results/cross-source).
EXTRACT = ["--layout", "csv", "--detector", "centerface", "--size", "224", "--margin", "0.3", "--frames", "16"]


def write_list(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # ddtool's csv layout knows train/val/test only; the list's own split (extra, cdf, realdf) stays in
    # source_split, joined back by path (a manifest's source_path) when the benchmark reads the caches.
    rows = [{**r, "source_split": r.get("source_split") or r["split"], "split": r["split"] if r["split"] in SPLITS else ""} for r in rows]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def c40_rows(dftrain: Path, out: Path) -> list[dict]:
    from ddtool.media.reencode import C40_QP, reencode_h264

    rows = []
    for row in csv.DictReader((dftrain / "list.csv").open(encoding="utf-8")):
        if row["dataset"] != "FF++" or not row["path"].endswith(".mp4"):
            continue
        dst = out / "c40" / row["method"] / Path(row["path"]).name
        if not dst.is_file():
            reencode_h264(row["path"], dst, qp=C40_QP)
        rows.append({**row, "path": str(dst), "dataset": "FF++c40"})
    return rows


def realdf_rows() -> list[dict]:
    root = SHARED / "realdf-dev"
    return [{"path": str(root / r["path"]), "label": r["label"], "method": r["method"][:40], "split": "realdf",
             "dataset": r["dataset"], "group": r["group"]} for r in csv.DictReader((root / "labels.csv").open(encoding="utf-8"))]


def realfaces_rows(tmp: Path) -> list[dict]:
    listing = tmp / "realfaces_raw.csv"
    subprocess.run([sys.executable, str(REPO / "scripts" / "realfaces_list.py"), "--out", str(listing)], check=True)
    rows = list(csv.DictReader(listing.open(encoding="utf-8")))
    return [{**r, "dataset": "realfaces"} for r in rows]


def is_held_out_extra(group: str) -> bool:
    """1 `extra` group in 5 (by a hash of its name) stays out of every training set."""
    import hashlib

    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % 5 == 0


def training_cache(out: Path) -> Path:
    """out/train_ffpp: cache_dftrain's trainable rows (see the module docstring), `extra` rows as split train."""
    import json
    import shutil

    source = out / "cache_dftrain"
    listed = {str(Path(r["path"]).resolve()): r for r in csv.DictReader((out / "lists" / "dftrain.csv").open(encoding="utf-8"))}
    target = out / "train_ffpp"
    target.mkdir(parents=True, exist_ok=True)
    if not (target / "crops").exists():
        (target / "crops").symlink_to((source / "crops").resolve(), target_is_directory=True)
    shutil.copy(source / "extract_config.json", target / "extract_config.json")
    rows, kept = list(csv.DictReader((source / "manifest.csv").open(encoding="utf-8"))), []
    for row in rows:
        info = listed[str(Path(row["source_path"]).resolve())]
        if info["dataset"] not in ("FF++", "FF++-DFD"):
            continue
        own = info["source_split"]
        if own in ("train", "val") or (own == "extra" and not is_held_out_extra(info["group"])):
            # Validation: the val-split clips' frames only (288 faces; their crops train): a 2-core CPU validates
            # in a minute, and the epoch is chosen across sources anyway.
            split = "val" if own == "val" and info["path"].endswith(".mp4") else "train"
            kept.append({**row, "split": split})
    with (target / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows(kept)
    (target / "README.json").write_text(json.dumps({"made_by": "benchmarks/cross_source_data.py --training-cache", "rows": len(kept)}))
    return target


def reference_and_label_lists(out: Path) -> list[Path]:
    """lists/calibration_reals.csv and labels/{ffpp_test,celebdf}.csv from lists/dftrain.csv and lists/realfaces.csv."""
    lists = out / "lists"
    read = lambda name: list(csv.DictReader((lists / f"{name}.csv").open(encoding="utf-8")))  # noqa: E731
    dftrain, realfaces = read("dftrain"), read("realfaces")
    is_video = lambda r: r["path"].lower().endswith((".mp4", ".avi", ".mov"))  # noqa: E731
    reference = [{"path": r["path"], "split": "test", "label": 0, "group": r["group"]} for r in realfaces if r["split"] == "test"]
    reference += [{"path": r["path"], "split": "test", "label": 0, "group": r["group"]} for r in dftrain
                  if r["dataset"] == "FF++" and r["label"] == "0" and r["source_split"] == "test"]
    written = [lists / "calibration_reals.csv"]
    _write(written[0], ["path", "split", "label", "group"], reference)
    for name, keep in (("ffpp_test", lambda r: r["dataset"] == "FF++" and r["source_split"] == "test"),
                       ("celebdf", lambda r: r["source_split"] == "cdf")):
        path = out / "labels" / f"{name}.csv"
        _write(path, ["path", "label", "group"], [{k: r[k] for k in ("path", "label", "group")} for r in dftrain if is_video(r) and keep(r)])
        written.append(path)
    return written


def _write(path: Path, columns: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dftrain", type=Path, required=True, help="the folder build.py wrote (with list.csv)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="dftrain,ffpp_c40,realdf,realfaces", help="which lists to extract")
    parser.add_argument("--training-cache", action="store_true", help="only write out/train_ffpp from cache_dftrain")
    args = parser.parse_args(argv)
    if args.training_cache:
        print(training_cache(args.out), file=sys.stderr)
        return 0
    lists = args.out / "lists"
    dftrain_rows = list(csv.DictReader((args.dftrain / "list.csv").open(encoding="utf-8")))
    made = {
        "dftrain": lambda: write_list(lists / "dftrain.csv", dftrain_rows),
        "ffpp_c40": lambda: write_list(lists / "ffpp_c40.csv", c40_rows(args.dftrain, args.out)),
        "realdf": lambda: write_list(lists / "realdf.csv", realdf_rows()),
        "realfaces": lambda: write_list(lists / "realfaces.csv", realfaces_rows(lists)),
    }
    ddtool = Path(sys.executable).with_name("ddtool")
    for name in args.only.split(","):
        listing = made[name]()
        print(f"{name}: {listing}", file=sys.stderr)
        subprocess.run([str(ddtool), "extract", str(listing), "--out", str(args.out / f"cache_{name}"), *EXTRACT,
                        "--workers", str(args.workers)], check=False)
    if (lists / "dftrain.csv").is_file() and (lists / "realfaces.csv").is_file():
        for path in reference_and_label_lists(args.out):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
