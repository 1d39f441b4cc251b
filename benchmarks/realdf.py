"""Scan ../shared/realdf-dev with each detector alone and with the panel: AUCs with intervals, verdict accuracy, FPR.

    python benchmarks/realdf.py [--weights a,b,c] [--panel a,b,c] [--frames 10] [--detector hog]
                                [--variant mesoinception4_df@box0.2 ...] [--cache DIR] [--json OUT]
                                [--write-cards]

Every input of labels.csv (108 DeepFaceLive video halves, 61 photos) goes
through scan's own code (scan.pipeline.scan_file: detect, cut each
detector's crop view from its card, score). Per-face scores are cached per
(input, weights sha256, frames, face detector, crop view) under --cache, so
adding a weight to --weights scores only that weight.

Reported, per detector: per-video scores (track mean of P(fake), max over
tracks, as scan), video- and face-level AUC with a bootstrap 95% interval
that resamples `group`s (a clip's real half and its swap share one), the
false-positive rate on the real photos at the card's operating point. For
the panel (calibrated members only): the same AUCs of the panel score, the
accuracy of the shipped verdicts (uncertain counts as not right, its rate is
reported) and a sweep of uncertain bands. `--variant NAME@box0.2` adds a
weight re-cut with a plain box crop of margin 0.2 (the crop-style trial).
`--write-cards` stores each weight's realdf-dev row in its card
(`benchmark_realdf`; imported weights without an offline-benchmark entry
also get it as their `benchmark`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import sys
import time
from copy import deepcopy
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ddtool.weights import portable_command  # noqa: E402  (cards name data, never this machine's paths)

REALDF = REPO.parent / "shared" / "realdf-dev"
DEFAULT_CACHE = Path("/work/scratch/realdf_scores")


def read_labels(root: Path, listing: Path | None = None) -> list[dict]:
    """Rows of a labels CSV (path, label, group[, dataset]); paths relative to its folder. Default: root/labels.csv."""
    from ddtool.media.suffixes import VIDEO_SUFFIXES

    listing = listing or root / "labels.csv"
    rows = list(csv.DictReader(listing.open(encoding="utf-8")))
    for r in rows:
        r["abs"] = str((listing.parent / r["path"]).resolve())
        r["label"] = int(r["label"])
        r["kind"] = "video" if Path(r["path"]).suffix.lower() in VIDEO_SUFFIXES else "image"
        r.setdefault("dataset", listing.parent.name)
    return rows


def load_member(spec: str):
    """A weights name, NAME@boxM (the same weights cut with a box crop of margin M) or NAME@aligned5 (aligned from 5 detector landmarks)."""
    from ddtool.scan.detector import load_detector

    name, _, variant = spec.partition("@")
    detector = load_detector(weights=name)
    if variant:
        detector.card = deepcopy(detector.card)
        if variant == "aligned5":  # the authors' aligned crop from the face detector's 5 landmarks
            detector.card.setdefault("input", {}).update(crop="mesonet_aligned5")
        elif variant.startswith("box"):
            detector.card.setdefault("input", {}).update(crop="box", margin=float(variant[3:]), interpolation="auto")
        else:
            raise SystemExit(f"--variant {spec}: NAME@boxMARGIN or NAME@aligned5")
        detector.label = spec
    return detector


def cache_file(cache: Path, detector, frames: int, face_detector: str) -> Path:
    view = "-".join(str(v) for v in detector.preprocess.view)
    from ddtool.media.faces import SCAN_COARSE_SIDE

    # The coarse pass changes the boxes, so it is part of what the scores were made with.
    key = hashlib.sha256(f"{detector.weights_sha256}|{frames}|{face_detector}|coarse{SCAN_COARSE_SIDE}|{view}".encode()).hexdigest()[:16]
    return cache / f"{detector.key}_{key}.json"


def score_inputs(rows: list[dict], members: list, frames: int, face_detector: str, cache: Path) -> dict[str, dict]:
    """{member key: {input path: [(track_id, P(fake)), ...]}}, from the cache or by scanning what is missing."""
    from ddtool.scan.panel import Panel
    from ddtool.scan.pipeline import ScanOptions, scan_file

    cache.mkdir(parents=True, exist_ok=True)
    found = {}
    todo = []
    for m in members:
        path = cache_file(cache, m, frames, face_detector)
        found[m.key] = json.loads(path.read_text()) if path.is_file() else {}
        if any(r["abs"] not in found[m.key] for r in rows):
            todo.append(m)
    if todo:
        panel = Panel(todo)
        options = ScanOptions(frames=frames, detector=face_detector)
        extractor = panel.extractor(options)
        started = time.perf_counter()
        for i, r in enumerate(rows):
            if all(r["abs"] in found[m.key] for m in todo):
                continue
            result = scan_file(Path(r["abs"]), options, panel, extractor)
            for m in todo:
                found[m.key][r["abs"]] = [(f.track_id, f.scores[m.key]) for f in result.frames]
            if (i + 1) % 20 == 0:
                print(f"  scanned {i + 1}/{len(rows)} inputs ({time.perf_counter() - started:.0f} s, contended CPU)", file=sys.stderr)
        for m in todo:
            cache_file(cache, m, frames, face_detector).write_text(json.dumps(found[m.key]))
    return found


def input_score(faces: list, transform=None) -> float | None:
    """As scan: mean per track, maximum over tracks (transform: per-face score -> panel score)."""
    if not faces:
        return None
    tracks: dict[int, list[float]] = {}
    for track, score in faces:
        tracks.setdefault(int(track), []).append(score)
    return max(float(np.mean(v)) for v in tracks.values())


def auc_with_interval(labels, scores, groups, n: int = 2000) -> dict:
    from benchmarks.realdf_epochs import grouped_bootstrap_auc
    from ddtool.evaluate.metrics import compute_metrics

    labels, scores, groups = np.asarray(labels, int), np.asarray(scores, float), np.asarray(groups)
    auc = compute_metrics(labels, scores)["auc"]
    lo, hi = grouped_bootstrap_auc(labels, scores, groups, n=n)
    return {"auc": round(float(auc), 4), "ci95": [round(lo, 4), round(hi, 4)], "n_real": int((labels == 0).sum()), "n_fake": int((labels == 1).sum())}


def member_report(rows, faces_by_input, point) -> dict:
    videos = [r for r in rows if r["kind"] == "video" and faces_by_input.get(r["abs"])]
    v_scores = [input_score(faces_by_input[r["abs"]]) for r in videos]
    out = {"video": auc_with_interval([r["label"] for r in videos], v_scores, [r["group"] for r in videos]),
           "videos_without_face": sum(1 for r in rows if r["kind"] == "video" and not faces_by_input.get(r["abs"]))}
    f_labels, f_scores, f_groups = [], [], []
    for r in videos:
        for _, s in faces_by_input[r["abs"]]:
            f_labels.append(r["label"]), f_scores.append(s), f_groups.append(r["group"])
    out["face"] = auc_with_interval(f_labels, f_scores, f_groups, n=500)
    out["per_video"] = {Path(r["path"]).name: round(s, 4) for r, s in zip(videos, v_scores)}
    if point:
        thr = point["threshold"]
        photos = [r for r in rows if r["kind"] == "image" and r["label"] == 0 and faces_by_input.get(r["abs"])]
        out["operating_point"] = thr
        out["photo_fpr"] = round(float(np.mean([input_score(faces_by_input[r["abs"]]) >= thr for r in photos])), 4) if photos else None
        out["video_fpr"] = round(float(np.mean([s >= thr for r, s in zip(videos, v_scores) if r["label"] == 0])), 4)
        out["video_tpr"] = round(float(np.mean([s >= thr for r, s in zip(videos, v_scores) if r["label"] == 1])), 4)
    return out


def panel_scores(rows, found, members) -> dict[str, float]:
    """Panel score per input as scan computes it: per face the mean reference percentile, mean per track, max over tracks."""
    from ddtool.scan.calibration import reference_percentile

    out = {}
    for r in rows:
        per_member = [found[m.key].get(r["abs"]) or [] for m in members]
        if not per_member[0]:
            continue
        fused = np.mean([reference_percentile(np.array([s for _, s in faces]), m.operating_point) for faces, m in zip(per_member, members)], axis=0)
        out[r["abs"]] = input_score([(t, f) for (t, _), f in zip(per_member[0], fused)])
    return out


# Bands tried (docs/benchmark-results/cross-source/RULE.md "The band"): the fake cut at the 95th, 97th or 99th
# percentile of real reference faces, the real cut at or below it.
BAND_SWEEP = [(lo, hi) for hi in (0.95, 0.97, 0.99) for lo in (0.5, 0.6, 0.7, 0.8, 0.9, hi) if lo <= hi]


def verdict_table(rows, scores: dict, band, video_band=None) -> dict:
    """Verdict rates per source; photos are judged by `band`, videos by `video_band` (default: `band`), as scan does."""
    from ddtool.scan.calibration import verdict_for

    video_band = tuple(video_band or band)

    def judged(r):
        return verdict_for(scores[r["abs"]], video_band if r["kind"] == "video" else band)

    def rates(subset):
        verdicts = [judged(r) for r in subset]
        right = [v == ("fake" if r["label"] else "real") for v, r in zip(verdicts, subset)]
        n = len(subset)
        return {"n": n, "accuracy": round(float(np.mean(right)), 4) if n else None,
                **{v: round(verdicts.count(v) / n, 4) if n else None for v in ("fake", "real", "uncertain")}}

    videos = [r for r in rows if r["kind"] == "video" and r["abs"] in scores]
    photos = [r for r in rows if r["kind"] == "image" and r["label"] == 0 and r["abs"] in scores]
    decided = [r for r in videos if judged(r) != "uncertain"]
    by_source = {}
    for source in dict.fromkeys(r["source"] for r in videos):
        by_source[source] = rates([r for r in videos if r["source"] == source])
    return {"band": list(band), "video_band": list(video_band), "videos": rates(videos),
            "real_videos": rates([r for r in videos if r["label"] == 0]),
            "fake_videos": rates([r for r in videos if r["label"] == 1]), "real_photos": rates(photos),
            "accuracy_when_decided": rates(decided)["accuracy"] if decided else None, "by_source": by_source,
            # each source once (RULE.md): the band's selection score
            "mean_source_accuracy": round(float(np.mean([v["accuracy"] for v in by_source.values()])), 4) if by_source else None}


# The video cuts tried (RULE.md "The video cut"): 0.80 to 0.97 in steps of 0.01; ties within TIE: the higher cut.
VIDEO_CUTS = tuple(round(0.80 + 0.01 * i, 2) for i in range(18))
VIDEO_CUT_TIE = 0.01


def grouped_accuracy_interval(right: np.ndarray, groups: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of an accuracy, resampling `groups` (a clip's real half and its swap together)."""
    from benchmarks.realdf_epochs import grouped_bootstrap

    return [round(v, 4) for v in grouped_bootstrap(lambda rows: float(np.mean(right[rows])), groups, n=n, seed=seed)]


def right_at(cut: float, videos: list[dict], scores: dict) -> np.ndarray:
    """Per video: is the verdict at this cut (fake from it, real below) right?"""
    return np.array([(scores[r["abs"]] >= cut) == bool(r["label"]) for r in videos])


def choose_video_cut(videos: list[dict], scores: dict, sources: list[str]) -> tuple[float, dict[float, float]]:
    """RULE.md "The video cut": the cut with the best mean verdict accuracy over `sources` (each once); ties: the higher."""
    by_source = {s: [r for r in videos if r["source"] == s] for s in sources}
    by_cut = {}
    for cut in VIDEO_CUTS:
        accuracy = [right_at(cut, mine, scores).mean() for mine in by_source.values()]
        by_cut[cut] = round(float(np.mean(accuracy)), 4)
    best = max(by_cut.values())
    return max(c for c, v in by_cut.items() if v >= best - VIDEO_CUT_TIE), by_cut


def video_cut_selection(rows, scores: dict) -> dict:
    """The video cut chosen on all sources, and chosen on all but one and measured on that one (leave one source out)."""
    videos = [r for r in rows if r["kind"] == "video" and r["abs"] in scores]
    sources = list(dict.fromkeys(r["source"] for r in videos))
    chosen, by_cut = choose_video_cut(videos, scores, sources)
    held_out = {}
    pooled_right, pooled_groups, pooled_reals = [], [], []
    for source in sources:
        cut, _ = choose_video_cut(videos, scores, [s for s in sources if s != source])
        mine = [r for r in videos if r["source"] == source]
        right = right_at(cut, mine, scores)
        groups = np.array([r["group"] for r in mine])
        reals = [scores[r["abs"]] >= cut for r in mine if r["label"] == 0]
        held_out[source] = {"cut_chosen_on_the_others": cut, "n": len(mine), "accuracy": round(float(right.mean()), 4),
                            "ci95": grouped_accuracy_interval(right, groups),
                            "real_videos_called_fake": round(float(np.mean(reals)), 4) if reals else None}
        # Groups are named per source (a realdf-dev clip, an FF++ pair, a Celeb-DF id pair), so pooled they stay apart.
        pooled_right.append(right)
        pooled_groups.append(np.array([f"{source}|{g}" for g in groups]))
        pooled_reals += reals
    right, groups = np.concatenate(pooled_right), np.concatenate(pooled_groups)
    return {"cuts": list(VIDEO_CUTS), "mean_source_accuracy_by_cut": {str(c): v for c, v in by_cut.items()}, "chosen": chosen,
            "leave_one_source_out": held_out,
            "leave_one_source_out_mean": round(float(np.mean([v["accuracy"] for v in held_out.values()])), 4),
            "leave_one_source_out_pooled": round(float(right.mean()), 4),
            "leave_one_source_out_pooled_ci95": grouped_accuracy_interval(right, groups),
            "leave_one_source_out_pooled_real_videos_called_fake": round(float(np.mean(pooled_reals)), 4) if pooled_reals else None}


def offline_report(cache: Path, members: dict, panel: list[str]) -> dict:
    """Face-level AUC on the offline benchmark's test split (box crops, margin 0.5, as the cache holds them).

    Detectors trained on another crop style (the MesoNet authors' aligned crop) are scored on these box
    crops as they are (`crop_mismatch`): the cache cannot be re-cut, because its forgeries were made on the crops.
    """
    from ddtool.evaluate.metrics import compute_metrics
    from ddtool.evaluate.predict import load_split, predict_images
    from ddtool.scan.calibration import reference_percentile

    rows, _ = load_split(cache, "test")
    labels = rows["label"].to_numpy(int)
    out, raw = {}, {}
    for spec, m in members.items():
        card = deepcopy(m.card)
        mismatch = (card.get("input") or {}).get("crop", "box") != "box"
        card.setdefault("input", {})["crop"] = "box"
        raw[spec] = predict_images(m.model, m.spec, card, cache, rows["crop_path"].tolist(), batch_size=64, device="cpu")
        out[spec] = {"face_auc": round(float(compute_metrics(labels, raw[spec])["auc"]), 4), "crop_mismatch": mismatch,
                     "n_real": int((labels == 0).sum()), "n_fake": int((labels == 1).sum())}
    chosen = [s for s in panel if members[s].operating_point]
    if chosen and len(chosen) == len(panel):
        fused = np.mean([reference_percentile(raw[s], members[s].operating_point) for s in chosen], axis=0)
        out["panel"] = {"members": chosen, "face_auc": round(float(compute_metrics(labels, fused)["auc"]), 4)}
    return out


def reference_band(path: Path, members: list) -> dict:
    """The band from real reference faces alone: real below their median panel score, fake from the score
    flagging 5% of them (the panel's own operating point); nothing of realdf-dev goes into it."""
    from ddtool.scan.calibration import reference_percentile

    scores = json.loads(path.read_text())
    fused = np.mean([reference_percentile(np.array(scores[m.key]), m.operating_point) for m in members], axis=0)
    return {"members": [m.key for m in members], "n_faces": int(fused.size),
            "median": round(float(np.quantile(fused, 0.5)), 4), "p95": round(float(np.quantile(fused, 0.95)), 4)}


def main() -> None:
    from ddtool.scan.calibration import BAND, VIDEO_BAND
    from ddtool.weights import panel_names

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REALDF)
    parser.add_argument("--extra-labels", action="append", default=[], metavar="NAME=CSV",
                        help="more labelled inputs scored and judged with realdf-dev (path,label,group; paths relative to the CSV), "
                             "e.g. FF++ test clips and Celeb-DF clips; reported per NAME")
    parser.add_argument("--weights", default=None, help="comma-separated weights names [default: the panel]")
    parser.add_argument("--panel", default=None, help="comma-separated calibrated weights fused as scan does [default: weights/panel.txt]")
    parser.add_argument("--variant", action="append", default=[], help="NAME@boxMARGIN: the weights re-cut with a box crop")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--detector", default=None, help="face detector [default: scan's]")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--write-cards", action="store_true")
    parser.add_argument("--offline", type=Path, default=None, help="offline benchmark cache: also score its test split (face level)")
    parser.add_argument("--reference-scores", type=Path, default=None,
                        help="JSON of `ddtool weights calibrate --save-scores`: derive the panel's band from real reference faces only")
    args = parser.parse_args()

    if args.detector is None:
        from ddtool.media.faces import DEFAULT_SCAN_DETECTOR

        args.detector = DEFAULT_SCAN_DETECTOR
    rows = [{**r, "source": "realdf-dev"} for r in read_labels(args.data)]
    for item in args.extra_labels:
        name, _, listing = str(item).partition("=")
        rows += [{**r, "source": name} for r in read_labels(Path(listing).parent, Path(listing))]
    panel = args.panel.split(",") if args.panel else panel_names()
    names = args.weights.split(",") if args.weights else list(panel)
    specs = list(dict.fromkeys(names + panel + args.variant))
    members = {s: load_member(s) for s in specs}
    started = time.perf_counter()
    found = score_inputs(rows, list(members.values()), args.frames, args.detector, args.cache)
    report = {"command": portable_command(shlex.join(["python", *sys.argv])), "frames": args.frames, "face_detector": args.detector,
              "inputs": len(rows), "detectors": {}, "note": "timings on a contended 2-core CPU"}
    for spec, m in members.items():
        report["detectors"][spec] = member_report(rows, found[m.key], m.operating_point)
    if panel:
        chosen = [members[s] for s in panel]
        if all(m.operating_point for m in chosen):
            scores = panel_scores(rows, found, chosen)
            videos = [r for r in rows if r["kind"] == "video" and r["abs"] in scores]
            report["panel"] = {
                "members": panel,
                "video": auc_with_interval([r["label"] for r in videos], [scores[r["abs"]] for r in videos], [r["group"] for r in videos]),
                "video_by_source": {source: auc_with_interval([r["label"] for r in mine], [scores[r["abs"]] for r in mine], [r["group"] for r in mine])
                                    for source in dict.fromkeys(r["source"] for r in videos)
                                    for mine in [[r for r in videos if r["source"] == source]]},
                "shipped_band": verdict_table(rows, scores, BAND, VIDEO_BAND),
                "video_cut": video_cut_selection(rows, scores),
                "band_sweep": [verdict_table(rows, scores, band) for band in BAND_SWEEP],
                "per_video": {Path(r["path"]).name: round(scores[r["abs"]], 4) for r in videos},
            }
    if args.offline:
        report["offline"] = offline_report(args.offline, members, panel)
    if args.reference_scores and panel:
        report["reference_band"] = reference_band(args.reference_scores, [members[s] for s in panel])
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print_summary(report)
    if args.write_cards:
        write_cards(report, members)


def print_summary(report: dict) -> None:
    print("| detector | video AUC [95% CI] | face AUC [95% CI] | operating point | video TPR / FPR at it | real-photo FPR |")
    print("|---|---|---|---|---|---|")
    for spec, d in report["detectors"].items():
        v, f = d["video"], d["face"]
        op = d.get("operating_point")
        print(f"| {spec} | {v['auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}] | {f['auc']:.3f} [{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}] | "
              f"{'-' if op is None else f'{op:.4f}'} | {d.get('video_tpr', '-')} / {d.get('video_fpr', '-')} | {d.get('photo_fpr', '-')} |")
    if "reference_band" in report:
        b = report["reference_band"]
        print(f"\nband from {b['n_faces']} real reference faces: median panel score {b['median']}, 95th percentile {b['p95']}")
    if "offline" in report:
        print("\noffline benchmark test split, face level: " + ", ".join(
            f"{k} {v['face_auc']:.3f}{' (box crops, not its style)' if v.get('crop_mismatch') else ''}" for k, v in report["offline"].items()))
    if "panel" in report:
        p = report["panel"]
        print(f"\npanel {', '.join(p['members'])}: video AUC {p['video']['auc']:.3f} [{p['video']['ci95'][0]:.3f}, {p['video']['ci95'][1]:.3f}]"
              + "".join(f"; {src} {v['auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for src, v in p.get("video_by_source", {}).items()))
        sources = list(p["shipped_band"]["by_source"])
        print("| band | video accuracy | mean over sources | " + " | ".join(f"{src} accuracy" for src in sources) +
              " | uncertain | fake videos called fake | real videos called real | real photos called fake | accuracy when decided |")
        print("|---|---|---|" + "---|" * len(sources) + "---|---|---|---|---|")
        for t in [p["shipped_band"]] + p["band_sweep"]:
            per = " | ".join(str(t["by_source"][src]["accuracy"]) for src in sources)
            label = t["band"] if t["video_band"] == t["band"] else f"{t['band']}, videos {t['video_band']}"
            print(f"| {label} | {t['videos']['accuracy']} | {t['mean_source_accuracy']} | {per} | {t['videos']['uncertain']} | {t['fake_videos']['fake']} | "
                  f"{t['real_videos']['real']} | {t['real_photos']['fake']} | {t['accuracy_when_decided']} |")
    if "panel" in report and "video_cut" in report["panel"]:
        v = report["panel"]["video_cut"]
        print(f"\nvideo cut (RULE.md): chosen on all sources {v['chosen']}; mean source accuracy by cut: "
              + ", ".join(f"{c} {a}" for c, a in v["mean_source_accuracy_by_cut"].items()))
        print("| left-out source | cut chosen on the others | accuracy [95% CI] | real videos called fake |")
        print("|---|---|---|---|")
        for src, h in v["leave_one_source_out"].items():
            print(f"| {src} ({h['n']} videos) | {h['cut_chosen_on_the_others']} | {h['accuracy']} [{h['ci95'][0]}, {h['ci95'][1]}] | "
                  f"{h['real_videos_called_fake']} |")
        print(f"mean over left-out sources {v['leave_one_source_out_mean']}, pooled {v['leave_one_source_out_pooled']} "
              f"{v['leave_one_source_out_pooled_ci95']} (real videos called fake {v['leave_one_source_out_pooled_real_videos_called_fake']})")


def write_cards(report: dict, members: dict) -> None:
    from ddtool.io import write_json_atomic
    from ddtool.models.checkpoint import card_path_for, strip_machine_paths

    report = strip_machine_paths(report)  # cards travel: no absolute paths of this machine
    by_source = (report.get("panel") or {}).get("shipped_band", {}).get("by_source") or {}
    sources = ", ".join(f"{name} ({v['n']} videos)" for name, v in by_source.items()) or "realdf-dev"
    named = "realdf-dev (DeepFaceLive video halves + tool demo photos)" if list(by_source) in ([], ["realdf-dev"]) else \
        f"{sources}; realdf-dev's tool demo photos for false positives"
    for spec, m in members.items():
        if "@" in spec:
            continue
        d = report["detectors"][spec]
        row = {"name": named, "split": "all", "level": "video",
               "auc": d["video"]["auc"], "ci95": d["video"]["ci95"], "n_real": d["video"]["n_real"], "n_fake": d["video"]["n_fake"],
               "face_auc": d["face"]["auc"], "face_ci95": d["face"]["ci95"], "photo_fpr_at_operating_point": d.get("photo_fpr"),
               "video_tpr_at_operating_point": d.get("video_tpr"), "video_fpr_at_operating_point": d.get("video_fpr"),
               "frames_per_video": report["frames"], "face_detector": report["face_detector"], "command": report["command"]}
        path = card_path_for(m.weights_path)
        card = json.loads(path.read_text(encoding="utf-8"))
        card["benchmark_realdf"] = row
        if card.get("origin") and not (card.get("benchmark") or {}).get("name", "").startswith("ddtool offline"):
            card["benchmark"] = row  # imported weights: no offline-benchmark run, realdf-dev is their measured row
        write_json_atomic(path, card)
        print(f"wrote the realdf-dev row into {path}", file=sys.stderr)
    if "panel" in report:
        from ddtool.weights import PANEL_MEASUREMENT_FILE, shipped_weights_dir

        p, shipped = report["panel"], report["panel"]["shipped_band"]
        record = {"members": p["members"], "dataset": sources, "band": shipped["band"], "video_band": shipped["video_band"],
                  "by_source": {name: v["accuracy"] for name, v in by_source.items()},
                  "n_videos": shipped["videos"]["n"], "accuracy": shipped["videos"]["accuracy"], "uncertain": shipped["videos"]["uncertain"],
                  "accuracy_when_decided": shipped["accuracy_when_decided"], "auc": p["video"]["auc"], "ci95": p["video"]["ci95"],
                  "real_photos_called_fake": shipped["real_photos"]["fake"], "real_videos_called_fake": shipped["real_videos"]["fake"],
                  "leave_one_source_out": {name: {k: h[k] for k in ("accuracy", "ci95", "n")} for name, h in
                                           (p.get("video_cut") or {}).get("leave_one_source_out", {}).items()},
                  "leave_one_source_out_pooled": (p.get("video_cut") or {}).get("leave_one_source_out_pooled"),
                  "leave_one_source_out_pooled_ci95": (p.get("video_cut") or {}).get("leave_one_source_out_pooled_ci95"),
                  "command": report["command"]}
        write_json_atomic(shipped_weights_dir() / PANEL_MEASUREMENT_FILE, record)
        print(f"wrote the panel's measured accuracy into {shipped_weights_dir() / PANEL_MEASUREMENT_FILE}", file=sys.stderr)


if __name__ == "__main__":
    main()
