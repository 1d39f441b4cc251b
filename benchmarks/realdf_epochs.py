"""Score checkpoints on real deepfakes (../shared/realdf-dev) from a face cache: pick an epoch, get AUCs with intervals.

SBI-style training validates on self-blends of held-out real faces, and that
validation AUC climbs while the model learns blend traces that compressed
real deepfakes do not show (issue 11's trial: 0.74 after one epoch, 0.66
after two). So the recipe keeps every epoch (`train --keep-epochs`) and this
script scores each on real face swaps. realdf-dev is for model choice and
evaluation only, never for training; a figure on the epoch chosen here is
optimistic for that reason, and the docs say so beside it.

Build the cache once (same crop margin as the training cache):

    python benchmarks/realdf_epochs.py csv --out /work/data/realdf_videos.csv
    ddtool extract /work/data/realdf_videos.csv --layout csv --frames 12 --size 224 --margin 0.3 --out CACHE

then score every kept epoch (or any checkpoint cards):

    python benchmarks/realdf_epochs.py score --cache CACHE RUN_DIR/epoch_*.json [--json OUT]

Prints, per checkpoint: video-level AUC (mean of face scores per video) with
a bootstrap 95% interval that resamples `group`s (a real clip and its swap
share a group), face-level AUC, and the accuracy at 0.5.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REALDF = REPO.parent / "shared" / "realdf-dev"


def write_csv(out: Path, root: Path = REALDF) -> int:
    """The videos of realdf-dev as a `csv` layout list (path,label,method,split,group)."""
    rows = list(csv.DictReader((root / "labels.csv").open(encoding="utf-8")))
    videos = [r for r in rows if r["path"].startswith("videos/")]
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "method", "split", "group"])
        for r in videos:
            writer.writerow([str(root / r["path"]), r["label"], "deepfacelive" if r["label"] == "1" else "real", "test", r["group"]])
    return len(videos)


def groups_by_source(root: Path = REALDF) -> dict[str, str]:
    rows = csv.DictReader((root / "labels.csv").open(encoding="utf-8"))
    return {str((root / r["path"]).resolve()): r["group"] for r in rows}


def grouped_bootstrap(statistic, groups: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of `statistic(rows)` when whole groups are resampled with replacement.

    A group is what must travel together (a clip's real half and its swap); a draw where the statistic
    is undefined (it returns None) is skipped, and the generator still advances, so every statistic
    sees the same draws for the same groups and seed.
    """
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in names]
    values = []
    for _ in range(n):
        value = statistic(np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))]))
        if value is not None:
            values.append(value)
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def grouped_bootstrap_auc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the AUC when whole groups are resampled with replacement."""
    from ddtool.evaluate.metrics import compute_metrics

    def auc(rows: np.ndarray) -> float | None:
        return compute_metrics(labels[rows], scores[rows])["auc"] if len(np.unique(labels[rows])) == 2 else None

    return grouped_bootstrap(auc, groups, n=n, seed=seed)


def score_checkpoint(card: Path, cache: Path, groups: dict[str, str]) -> dict:
    from ddtool.evaluate.metrics import compute_metrics
    from ddtool.evaluate.predict import load_split, predict_images
    from ddtool.models import get_spec
    from ddtool.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(card, device="cpu")
    rows, _ = load_split(cache, "all")
    rows = rows.copy()
    rows["score"] = predict_images(model, get_spec(meta["model"]), meta, cache, rows["crop_path"].tolist(), batch_size=32, device="cpu")
    videos = rows.groupby("source_path").agg(label=("label", "first"), score=("score", "mean")).reset_index()
    videos["group"] = [groups.get(str(Path(p).resolve()), p) for p in videos["source_path"]]
    y, s = videos["label"].to_numpy(int), videos["score"].to_numpy(float)
    video = compute_metrics(y, s)
    lo, hi = grouped_bootstrap_auc(y, s, videos["group"].to_numpy())
    face = compute_metrics(rows["label"].to_numpy(int), rows["score"].to_numpy(float))
    return {
        "checkpoint": str(card), "epoch": (meta.get("metrics") or {}).get("epoch"), "val_auc": (meta.get("metrics") or {}).get("val_auc"),
        "videos": len(videos), "faces": len(rows), "groups": int(videos["group"].nunique()),
        "video_auc": video["auc"], "video_auc_ci95": [lo, hi], "face_auc": face["auc"],
        "video_acc_at_0.5": float(((s >= 0.5).astype(int) == y).mean()),
        "real_mean": float(s[y == 0].mean()), "fake_mean": float(s[y == 1].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("csv", help="write realdf-dev's videos as a csv layout list")
    make.add_argument("--out", type=Path, required=True)
    score = sub.add_parser("score", help="score checkpoint cards on a realdf-dev face cache")
    score.add_argument("cards", type=Path, nargs="+")
    score.add_argument("--cache", type=Path, required=True)
    score.add_argument("--json", type=Path, help="append one JSON line per checkpoint to this file")
    args = parser.parse_args(argv)
    if not REALDF.is_dir():
        print(f"error: {REALDF} not found (realdf-dev lives in ../shared beside the repo)", file=sys.stderr)
        return 3
    if args.command == "csv":
        print(f"{write_csv(args.out)} videos -> {args.out}")
        return 0
    groups = groups_by_source()
    print(f"{'checkpoint':<40} {'epoch':>5} {'valAUC':>7} {'videoAUC':>9} {'95% CI':>13} {'faceAUC':>8} {'acc@.5':>7}")
    for card in args.cards:
        row = score_checkpoint(card, args.cache, groups)
        lo, hi = row["video_auc_ci95"]
        print(f"{card.parent.name + '/' + card.name:<40} {row['epoch'] or '':>5} {row['val_auc'] or float('nan'):7.4f} "
              f"{row['video_auc']:9.4f} {lo:6.3f}-{hi:5.3f} {row['face_auc']:8.4f} {row['video_acc_at_0.5']:7.3f}", flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
