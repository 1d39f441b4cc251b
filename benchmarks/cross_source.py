"""Cross-source benchmark (issue 21): video AUC per held-out source, leave-one-method-out, and the selection rule.

    python benchmarks/cross_source.py --xsrc XSRC --candidate NAME=CARD [--candidate ...]
        [--lomo NAME=Deepfakes:CARD,Face2Face:CARD,FaceSwap:CARD,NeuralTextures:CARD]
        [--panel NAME=MEMBER+MEMBER] [--work DIR] [--json OUT]

XSRC is what benchmarks/cross_source_data.py made (face caches cut as scan cuts faces). For every candidate
(a checkpoint card or a shipped weights name) it reports video-level AUC with a 95% bootstrap interval
(ddtool.evaluate.metrics: stratified, resampling source videos by dftrain's `group`) on
  ffpp_c23   FF++ test-split clips (6 real, 10 fake videos; trained-on `extra` crops may overlap them: optimistic)
  ffpp_c40   the same clips re-encoded with libx264 at qp 40
  celebdf    the 24 Celeb-DF clips (never trained on)
  realdf     the 108 realdf-dev DeepFaceLive video halves (never trained on)
  lomo_*     with --lomo: the candidate's recipe trained without one FF++ method, scored on all of that
             method's files against FF++ test-split originals and the held-out `extra` originals
and the selection score of docs/benchmark-results/cross-source/RULE.md: mean(celebdf, realdf, mean lomo).
A video's score is the mean of its faces' scores (scan's track mean). A panel (--panel NAME=a+b) fuses
its members' reference percentiles face by face (scan.calibration, the cards' operating points), as scan
does. Per-face scores are cached under --work by the weights' sha256; a CLIP probe's encoder features
are cached per cache, probe layers and pooling, so a new probe costs a matrix product.
Prints a markdown table on stdout (progress on stderr); --json writes every figure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from cross_source_data import is_held_out_extra  # noqa: E402

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov")


def faces_table(xsrc: Path) -> pd.DataFrame:
    """Every face of every cache with its source's facts (list columns joined by source path) and its unit (video)."""
    frames = []
    for cache, listing in (("cache_dftrain", "dftrain"), ("cache_ffpp_c40", "ffpp_c40"), ("cache_realdf", "realdf")):
        listed = {str(Path(r["path"]).resolve()): r for r in csv.DictReader((xsrc / "lists" / f"{listing}.csv").open(encoding="utf-8"))}
        rows = pd.read_csv(xsrc / cache / "manifest.csv", dtype=str, keep_default_na=False)
        info = [listed[str(Path(p).resolve())] for p in rows["source_path"]]
        frame = pd.DataFrame({
            "cache": cache, "crop_path": rows["crop_path"], "label": rows["label"].astype(int),
            "dataset": [i["dataset"] for i in info], "method": [i["method"] for i in info],
            "source_split": [i["source_split"] for i in info], "group": [i["group"] for i in info],
            "is_video": [p.lower().endswith(VIDEO_SUFFIXES) for p in rows["source_path"]],
        })
        # A unit is one video file, or one `extra` run of neighbouring crops (by group and method).
        frame["unit"] = [p if v else f"{m}|{g}" for p, v, m, g in zip(rows["source_path"], frame["is_video"], frame["method"], frame["group"])]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def source_masks(faces: pd.DataFrame) -> dict[str, np.ndarray]:
    d = faces
    ff = d["dataset"].eq("FF++")
    masks = {
        "ffpp_c23": (d["cache"].eq("cache_dftrain") & ff & d["source_split"].eq("test") & d["is_video"]).to_numpy(),
        "ffpp_c40": (d["cache"].eq("cache_ffpp_c40") & d["source_split"].eq("test")).to_numpy(),
        "celebdf": (d["cache"].eq("cache_dftrain") & d["source_split"].eq("cdf")).to_numpy(),
        "realdf": (d["cache"].eq("cache_realdf") & d["is_video"]).to_numpy(),
    }
    dft = d["cache"].eq("cache_dftrain") & ff
    real_side = dft & d["label"].eq(0) & (d["source_split"].eq("test") | (d["source_split"].eq("extra") & d["group"].map(is_held_out_extra)))
    for method in METHODS:
        masks[f"lomo_{method}"] = (real_side | (dft & d["method"].eq(method))).to_numpy()
    return masks


def video_auc(faces: pd.DataFrame, scores: np.ndarray) -> dict:
    """Video AUC (mean face score per unit) with its stratified bootstrap interval over source groups."""
    from ddtool.evaluate.metrics import bootstrap_intervals, compute_metrics

    videos = faces.assign(score=scores).groupby("unit", sort=True).agg(score=("score", "mean"), label=("label", "first"), group=("group", "first"))
    y, s = videos["label"].to_numpy(), videos["score"].to_numpy()
    if len(set(y)) < 2:
        return {"auc": None, "ci95": None, "real": int((y == 0).sum()), "fake": int((y == 1).sum())}
    auc = compute_metrics(y, s)["auc"]
    ci = bootstrap_intervals(y, s, groups=videos["group"].to_numpy())["auc"]
    return {"auc": round(float(auc), 4), "ci95": None if ci is None else [round(v, 4) for v in ci],
            "real": int((y == 0).sum()), "fake": int((y == 1).sum())}


class FaceScorer:
    """Per-face P(fake) of one checkpoint over the caches, cached by the weights' sha256."""

    def __init__(self, card: str, work: Path):
        from ddtool.scan.detector import load_detector

        self.detector = load_detector(weights=card)
        self.work = work

    def scores(self, xsrc: Path, faces: pd.DataFrame) -> np.ndarray:
        """P(fake) of every face some source reads (`faces.needed`); NaN elsewhere."""
        sha = self.detector.weights_sha256 or hashlib.sha256(str(self.detector.weights_path).encode()).hexdigest()
        out = np.full(len(faces), np.nan)
        for cache, rows in faces[faces["needed"]].groupby("cache"):
            store = self.work / f"scores_{sha[:16]}_{cache}.npz"
            if store.is_file():
                known = dict(np.load(store, allow_pickle=False).items())
                got = dict(zip(known["crop_path"].tolist(), known["score"]))
            else:
                got = self._score_cache(xsrc / cache, rows["crop_path"].tolist())
                np.savez(store, crop_path=np.array(list(got)), score=np.array(list(got.values())))
            out[rows.index] = [got[p] for p in rows["crop_path"]]
        return out

    def _score_cache(self, cache: Path, crops: list[str]) -> dict[str, float]:
        from ddtool.data.dataset import load_crop

        scorer = self.detector.scorer
        started = time.perf_counter()
        if scorer is not None and hasattr(scorer, "logits_from_features"):  # a CLIP probe: features cached per layers
            from ddtool.train.probe import FaceEncoder

            features = clip_features(cache, crops, scorer.layers, scorer.pooling, self.detector.preprocess, self.work)
            from ddtool.models.logits import fake_probability

            probs = fake_probability(scorer.logits_from_features(features))
        else:
            probs = np.concatenate([self.detector.fake_probability([load_crop(cache / p) for p in crops[i : i + 32]]) for i in range(0, len(crops), 32)])
        print(f"  {self.detector.key}: {len(crops)} faces of {cache.name} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return dict(zip(crops, probs.astype(float)))


def clip_features(cache: Path, crops: list[str], layers, pooling: str, preprocess, work: Path) -> np.ndarray:
    """CLIP probe features of `crops`, kept in WORK per cache, layers and pooling (any probe on them reuses them)."""
    from ddtool.data.dataset import load_crop
    from ddtool.train.probe import FaceEncoder

    store = work / f"clip_features_L{'-'.join(map(str, layers))}_{pooling}_{cache.name}.npz"
    encoder = FaceEncoder(layers, preprocess, store, pooling)
    try:
        return np.stack([encoder(p, load_crop(cache / p)) for p in crops]).astype(np.float32)
    finally:
        encoder.save()  # an interrupted run keeps what it encoded


def evaluate(name: str, scores: np.ndarray, faces: pd.DataFrame, masks: dict, lomo_scores: dict[str, np.ndarray] | None) -> dict:
    row = {"candidate": name}
    for source in ("ffpp_c23", "ffpp_c40", "celebdf", "realdf"):
        row[source] = video_auc(faces[masks[source]], scores[masks[source]])
    if lomo_scores:
        for method, held_out in lomo_scores.items():
            row[f"lomo_{method}"] = video_auc(faces[masks[f"lomo_{method}"]], held_out[masks[f"lomo_{method}"]])
        row["lomo_mean"] = round(float(np.mean([row[f"lomo_{m}"]["auc"] for m in lomo_scores])), 4)
        row["rule"] = round(float(np.mean([row["celebdf"]["auc"], row["realdf"]["auc"], row["lomo_mean"]])), 4)
    return row


def fused(members: list[FaceScorer], member_scores: list[np.ndarray], points: list | None = None) -> np.ndarray:
    """scan's panel score per face: the mean of the members' reference percentiles (cards' operating points;
    `points` gives them where the members' own cards have none: a leave-one-method-out run uses its full run's)."""
    from ddtool.scan.calibration import reference_percentile

    points = points or [m.detector.operating_point for m in members]
    if not all(points):
        raise SystemExit("a --panel needs an operating point in every member's card (ddtool weights calibrate NAME)")
    return np.mean([reference_percentile(s, p) for s, p in zip(member_scores, points)], axis=0)


def markdown(rows: list[dict]) -> str:
    def cell(value) -> str:
        if not isinstance(value, dict) or value.get("auc") is None:
            return "-"
        ci = value.get("ci95")
        return f"{value['auc']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")

    head = "| candidate | rule | Celeb-DF | realdf-dev | LOMO mean | LOMO DF / F2F / FS / NT | FF++ c23 | FF++ c40 |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lomo = " / ".join(f"{r[f'lomo_{m}']['auc']:.3f}" for m in METHODS if f"lomo_{m}" in r) or "-"
        lines.append(f"| {r['candidate']} | {r.get('rule', '-')} | {cell(r['celebdf'])} | {cell(r['realdf'])} | {r.get('lomo_mean', '-')} | "
                     f"{lomo} | {cell(r['ffpp_c23'])} | {cell(r['ffpp_c40'])} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xsrc", type=Path, required=True)
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=CARD")
    parser.add_argument("--lomo", action="append", default=[], metavar="NAME=METHOD:CARD,...")
    parser.add_argument("--panel", action="append", default=[], metavar="NAME=A+B")
    parser.add_argument("--work", type=Path, default=None, help="score cache (default XSRC/cross_source_work)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work or args.xsrc / "cross_source_work"
    work.mkdir(parents=True, exist_ok=True)
    faces = faces_table(args.xsrc)
    masks = source_masks(faces)
    faces["needed"] = np.logical_or.reduce(list(masks.values()))
    candidates = dict(item.split("=", 1) for item in args.candidate)
    lomo = {name: dict(pair.split(":", 1) for pair in spec.split(",")) for name, spec in (item.split("=", 1) for item in args.lomo)}
    scorers = {name: FaceScorer(card, work) for name, card in candidates.items()}
    scores = {name: s.scores(args.xsrc, faces) for name, s in scorers.items()}
    rows = []
    for name in candidates:
        held = {m: FaceScorer(card, work).scores(args.xsrc, faces) for m, card in lomo.get(name, {}).items()}
        rows.append(evaluate(name, scores[name], faces, masks, held or None))
    for item in args.panel:
        name, members = item.split("=", 1)
        parts = members.split("+")
        panel_scores = fused([scorers[m] for m in parts], [scores[m] for m in parts])
        held = None
        if all(m in lomo for m in parts):
            held = {}
            for method in METHODS:
                member_held = [FaceScorer(lomo[m][method], work) for m in parts]
                held[method] = fused(member_held, [s.scores(args.xsrc, faces) for s in member_held],
                                     [scorers[m].detector.operating_point for m in parts])
        rows.append(evaluate(name, panel_scores, faces, masks, held))
    report = {"command": "python " + " ".join(sys.argv), "rule": "mean(celebdf, realdf, mean lomo): docs/benchmark-results/cross-source/RULE.md",
              "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
