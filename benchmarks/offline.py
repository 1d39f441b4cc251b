"""Offline forgery benchmark: train and evaluate the papers' detectors on a forged face cache.

    python benchmarks/offline.py --data /work/offline_cache/cache --out runs/offline-bench \
        --size 128 --epochs 2 --models mesoinception4,lgbm_noise,ldfnet

Two protocols, both with ddtool's own library (train, evaluate_checkpoint):
  intra  train on the cache's train split (val split for model selection),
         score its test split: AUC and BACC over every test face;
  lomo   leave one method out (SFIConv Table IV): train with
         holdout_method=M, score the held-out method's test fakes against
         the test reals.
The comparisons the papers make: MesoInception4; ResNet26 vs SFIC-ResNet26;
LDFnet full vs without DFM; LightGBM on noise statistics; BCE vs DID on the
same backbone (the ResNet26 row is the BCE side).

Writes to --out: runs/<entry>/<protocol>/ (ordinary ddtool run folders, reused
when the same configuration is asked for again), results.csv, results.json,
results.md (the table and the exact command) and roc.png.

`--ship NAME:RUN [--default]` copies a benchmarked run's best checkpoint into
the weights folder with a complete card (ddtool.weights.ship_checkpoint).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ddtool import __version__  # noqa: E402
from ddtool.data.synth_dataset import SYNTH_METHODS  # noqa: E402
from ddtool.errors import ConfigError, DDToolError, InputError  # noqa: E402
from ddtool.evaluate.evaluation import Evaluation, evaluate_checkpoint  # noqa: E402
from ddtool.evaluate.metrics import compute_metrics  # noqa: E402
from ddtool.evaluate.report import roc_figure  # noqa: E402
from ddtool.io import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic  # noqa: E402
from ddtool.train.config import AUGMENTS  # noqa: E402


@dataclass(frozen=True)
class Entry:
    """One benchmark row: a model and how it is trained."""

    key: str
    label: str
    model: str
    did: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    compares: str = ""  # which paper claim this row takes part in


ENTRIES = {
    e.key: e
    for e in (
        Entry("mesoinception4", "MesoInception4", "mesoinception4", compares="baseline (MesoNet)"),
        Entry("resnet26", "ResNet26 (BCE)", "resnet26", compares="SFIConv vs vanilla; BCE side of DID"),
        Entry("sfic_resnet26", "SFIC-ResNet26", "sfic_resnet26", compares="SFIConv vs vanilla"),
        Entry("ldfnet", "LDFnet", "ldfnet", compares="LDFnet full vs without DFM"),
        Entry("ldfnet_nodfm", "LDFnet w/o DFM", "ldfnet", model_kwargs={"dfm": False}, compares="LDFnet full vs without DFM"),
        Entry("lgbm_noise", "LightGBM (noise stats)", "lgbm_noise", compares="seed study"),
        Entry("did_resnet26", "ResNet26 + DID", "resnet26", did=True, compares="BCE vs DID (same backbone)"),
    )
}
DEFAULT_MODELS = tuple(ENTRIES)


@dataclass
class BenchmarkOptions:
    data: str
    out: str = "runs/offline-bench"
    models: tuple[str, ...] = DEFAULT_MODELS
    holdouts: tuple[str, ...] | None = None  # None: every fake method in the cache
    size: int | None = 128
    epochs: int | None = 2
    max_steps: int | None = None
    batch_size: int | None = None
    seed: int = 7
    device: str = "auto"
    level: str = "frame"
    augment: tuple[str, ...] | None = None  # None: each model's paper augmentation
    synth: tuple[str, ...] | None = None  # train image models on reals + on-the-fly forgeries (ddtool train --synth)
    synth_repeats: int = 1
    lr_decay: float | None = None  # None: each paper's
    workers: int = 0  # DataLoader processes: on-the-fly forgeries are made while the model steps
    command: str = ""


@dataclass
class BenchmarkResult:
    rows: pd.DataFrame
    files: list[Path]


Progress = Callable[[str], None]


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_list(text: str | None, allowed: tuple[str, ...] | None = None, what: str = "item") -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(i.strip() for i in text.split(",") if i.strip())
    unknown = [i for i in items if allowed is not None and i not in allowed]
    if unknown:
        raise ConfigError(f"unknown {what}(s) {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return items


def fake_methods(cache: Path) -> list[str]:
    manifest = cache / "manifest.csv"
    if not manifest.is_file():
        raise InputError(f"{manifest} not found; build the forged cache with `ddtool offline forge` first")
    rows = pd.read_csv(manifest, usecols=["label", "method"], keep_default_na=False)
    return sorted(rows.loc[rows["label"] == 1, "method"].astype(str).unique())


def ensure_noise_features(cache: Path, progress: Progress) -> None:
    """`ddtool features noise CACHE` for LightGBM, redone when the manifest is newer than the features."""
    from ddtool.features.noise import STATS_FILE, compute_noise_features

    stats = cache / STATS_FILE
    if stats.is_file() and stats.stat().st_mtime >= (cache / "manifest.csv").stat().st_mtime:
        return
    progress(f"computing noise features for {cache} (ddtool features noise)")
    compute_noise_features(cache)


# Config keys that decide what a run learns: a stored run is reused only when all agree.
_SAME_RUN_KEYS = ("model", "data", "epochs", "size", "max_steps", "batch_size", "seed", "holdout_method", "did", "model_kwargs", "augment", "synth", "synth_repeats", "lr_decay")


def train_or_reuse(entry: Entry, options: BenchmarkOptions, run_dir: Path, holdout: str | None, progress: Progress) -> Path:
    """Card path of the run's best checkpoint, training only when no matching finished run exists."""
    from ddtool.train.config import build_config
    from ddtool.train.loop import train

    overrides: dict[str, Any] = dict(
        model=entry.model, data=str(Path(options.data).resolve()), out=str(run_dir), epochs=options.epochs,
        max_steps=options.max_steps, batch_size=options.batch_size, seed=options.seed, device=options.device,
        holdout_method=holdout, did=entry.did, model_kwargs=dict(entry.model_kwargs),
        augment=list(options.augment) if options.augment is not None and entry.model != "lgbm_noise" else None,
        synth=list(options.synth) if options.synth and entry.model != "lgbm_noise" and not entry.did else None,
        synth_repeats=options.synth_repeats if options.synth and entry.model != "lgbm_noise" and not entry.did else 1,
        lr_decay=options.lr_decay if entry.model != "lgbm_noise" else None,
        workers=options.workers,
    )
    if entry.model == "lgbm_noise":
        # Boosting is cheap and its "epochs" are rounds: a CNN's epoch budget would
        # stop it after a couple of trees, so it keeps its own cap and early stopping.
        overrides["epochs"] = None
    else:
        overrides["size"] = options.size  # LightGBM reads fixed-size noise statistics, no input size
    config = build_config(**overrides)
    best = run_dir / "best.json"
    if best.is_file():
        recorded = json.loads(best.read_text(encoding="utf-8")).get("config") or {}
        from ddtool.models.checkpoint import strip_machine_paths

        # the card stores paths made portable (relative to its folder); compare like with like
        wanted = strip_machine_paths(config.to_dict(), base=best.resolve().parent)
        # unset hyper-parameters mean the paper default, which the stored config holds resolved
        paper_default = {k for k in ("epochs", "batch_size", "size", "augment", "synth", "lr_decay") if wanted.get(k) is None}
        paper_default |= {k for k in ("synth_repeats",) if k not in recorded and wanted.get(k) == 1}  # runs made before the key existed
        if all(recorded.get(k) == wanted.get(k) for k in _SAME_RUN_KEYS if k not in paper_default):
            progress(f"{entry.key} ({holdout or 'intra'}): reusing {run_dir}")
            return best
        raise ConfigError(f"{run_dir} holds a run with another configuration; use a new --out or delete that folder")
    if (run_dir / "train_state.pt").is_file():
        config.resume = True  # an interrupted earlier benchmark: continue it
    progress(f"{entry.key} ({holdout or 'intra'}): training in {run_dir}")
    return train(config).best_checkpoint


def _subset_metrics(evaluation: Evaluation, level: str, method: str | None) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics (and labels, scores) over the test reals + all fakes, or + one method's fakes."""
    table = evaluation.predictions if level == "frame" else evaluation.videos
    if method is not None:
        table = table[(table["label"] == 0) | (table["method"].astype(str) == method)]
    y = table["label"].to_numpy(dtype=int)
    s = table["score"].to_numpy(dtype=float)
    return compute_metrics(y, s), y, s


def run_benchmark(options: BenchmarkOptions, progress: Progress = _note) -> BenchmarkResult:
    """Train and evaluate every requested entry under both protocols; write the result files."""
    if options.level not in ("frame", "video"):
        raise ConfigError(f"--level must be frame or video (got {options.level!r})")
    cache = Path(options.data)
    methods = fake_methods(cache)
    holdouts = tuple(methods) if options.holdouts is None else options.holdouts
    missing = [m for m in holdouts if m not in methods]
    if missing:
        raise ConfigError(f"--holdouts {', '.join(missing)} not in the cache; its fake methods are {', '.join(methods)}")
    entries = [ENTRIES[key] for key in parse_list(",".join(options.models), tuple(ENTRIES), "model") or ()]
    if not entries:
        raise ConfigError(f"--models is empty; choose from {', '.join(ENTRIES)}")
    out = Path(options.out)
    if any(e.model == "lgbm_noise" for e in entries):
        ensure_noise_features(cache, progress)

    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {"intra (all test fakes)": []}
    curves.update({f"held out: {m}": [] for m in holdouts})
    for entry in entries:
        for holdout in (None, *holdouts):
            protocol = "intra" if holdout is None else "lomo"
            run_dir = out / "runs" / entry.key / ("intra" if holdout is None else f"lomo-{holdout}")
            started = time.monotonic()
            card = train_or_reuse(entry, options, run_dir, holdout, progress)
            trained_s = time.monotonic() - started
            evaluation = evaluate_checkpoint(card, cache, split="test", out=run_dir / "eval-test", device=options.device)
            metrics, y, s = _subset_metrics(evaluation, options.level, holdout)
            curves["intra (all test fakes)" if holdout is None else f"held out: {holdout}"].append((entry.label, y, s))
            rows.append({
                "entry": entry.key, "label": entry.label, "model": entry.model, "did": entry.did,
                "model_kwargs": json.dumps(entry.model_kwargs, sort_keys=True), "protocol": protocol,
                "heldout": holdout or "", "level": options.level, "auc": metrics["auc"], "bacc": metrics["bacc"],
                "n_real": int((y == 0).sum()), "n_fake": int((y == 1).sum()), "seconds": round(trained_s, 1),
                "run_dir": str(run_dir), "checkpoint": str(card),
            })
            progress(f"  {entry.key} {protocol} {holdout or ''}: AUC {100 * metrics['auc']:.2f} BACC {100 * metrics['bacc']:.2f}")

    table = pd.DataFrame(rows)
    files = _write_results(out, table, curves, options, holdouts)
    return BenchmarkResult(table, files)


def _pct(value: Any) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * float(value):.1f}"


def render_markdown(table: pd.DataFrame, options: BenchmarkOptions, holdouts: tuple[str, ...]) -> str:
    head = ["Model", "intra AUC", "intra BACC", *(f"LOMO {m} AUC" for m in holdouts)]
    if holdouts:
        head.append("LOMO mean AUC")
    lines = [
        "# Offline benchmark results", "",
        f"{options.level.capitalize()}-level metrics in percent on the test split of `{options.data}`. "
        "Intra: trained on the train split, scored on all test faces. "
        "LOMO (leave one method out): trained without the method, scored on its test fakes against the test reals.", "",
        "Command:", "", "```bash", options.command or "(library call)", "```", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
    ]
    for key, group in table.groupby("entry", sort=False):
        intra = group[group["protocol"] == "intra"].iloc[0]
        lomo = {r["heldout"]: r["auc"] for _, r in group[group["protocol"] == "lomo"].iterrows()}
        cells = [str(intra["label"]), _pct(intra["auc"]), _pct(intra["bacc"]), *(_pct(lomo.get(m)) for m in holdouts)]
        if holdouts:
            cells.append(_pct(float(np.nanmean([lomo[m] for m in holdouts]))))
        lines.append("| " + " | ".join(cells) + " |")
    first = table.iloc[0]
    lines += [
        "", f"Test faces: {int(first['n_real'])} real, {int(table[table['protocol'] == 'intra'].iloc[0]['n_fake'])} fake (intra). "
        f"Training: size {options.size}, epochs {options.epochs}, max steps {options.max_steps or 'all'}, seed {options.seed}, "
        f"augmentation {','.join(options.augment) if options.augment is not None else 'paper default'}"
        f"{'; on-the-fly forgeries ' + ','.join(options.synth) + f' x{options.synth_repeats}' if options.synth else ''}"
        f"{'; lr decay ' + str(options.lr_decay) if options.lr_decay is not None else ''}; "
        f"ddtool {__version__}.", "", "![ROC curves](roc.png)", "",
    ]
    return "\n".join(lines)


def _write_results(out: Path, table: pd.DataFrame, curves, options: BenchmarkOptions, holdouts: tuple[str, ...]) -> list[Path]:
    files = [out / "results.csv", out / "results.json", out / "results.md", out / "roc.png"]
    with atomic_path(files[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    write_json_atomic(files[1], {
        "command": options.command, "options": asdict(options), "ddtool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": json.loads(table.to_json(orient="records")),
    })
    write_text_atomic(files[2], render_markdown(table, options, holdouts))
    write_bytes_atomic(files[3], roc_figure({k: v for k, v in curves.items() if v}, options.level))
    return files


def benchmark_metrics_for(results_file: Path, run_dir: Path) -> tuple[dict[str, Any], str]:
    """(benchmark block for a model card, benchmark command) of an intra run listed in results.json."""
    results = json.loads(results_file.read_text(encoding="utf-8"))
    rows = results["rows"]
    target = run_dir.resolve()
    intra = next((r for r in rows if Path(r["run_dir"]).resolve() == target and r["protocol"] == "intra"), None)
    if intra is None:
        raise ConfigError(f"{run_dir} is not an intra run of {results_file}; ship a runs/<model>/intra folder of this benchmark")
    lomo = {r["heldout"]: r["auc"] for r in rows if r["entry"] == intra["entry"] and r["protocol"] == "lomo"}
    block = {
        "name": "ddtool offline benchmark", "cache": results["options"]["data"], "split": "test", "level": intra["level"],
        "auc": intra["auc"], "bacc": intra["bacc"], "n_real": intra["n_real"], "n_fake": intra["n_fake"],
        "lomo_auc": lomo, "command": results["command"], "results": str(results_file.resolve()),
    }
    return block, results["command"]


def ship(spec: str, out: Path, weights_dir: str | None, default: bool) -> Path:
    from ddtool.weights import ship_checkpoint, train_command

    name, sep, run = spec.partition(":")
    if not sep or not name or not run:
        raise ConfigError(f"--ship wants NAME:RUN (e.g. ldfnet_offline:{out}/runs/ldfnet/intra), got {spec!r}")
    run_dir = Path(run)
    results_file = out / "results.json"
    if not results_file.is_file():
        raise InputError(f"{results_file} not found; run the benchmark with the same --out first")
    benchmark, command = benchmark_metrics_for(results_file, run_dir)
    card = json.loads((run_dir / "best.json").read_text(encoding="utf-8"))
    training_command = f"{train_command(card.get('config') or {})}   # run by: {command}"
    return ship_checkpoint(run_dir / "best.json", name, benchmark, folder=weights_dir, command=training_command, default=default)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="forged face cache (manifest.csv with method/split)")
    parser.add_argument("--out", default="runs/offline-bench", help="benchmark folder (run folders, results.*, roc.png)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help=f"comma list from {', '.join(ENTRIES)}")
    parser.add_argument("--holdouts", default=None, help="comma list of methods to leave out (default: every fake method; 'none' for intra only)")
    parser.add_argument("--size", type=int, default=128, help="input side for image models (CPU budget; papers use 256)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None, help="cap on training steps per epoch")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: each paper's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--level", default="frame", choices=("frame", "video"))
    parser.add_argument("--synth", default=None, help="comma list of forgery methods made on the fly from the train reals (ddtool train --synth); image models only")
    parser.add_argument("--synth-repeats", type=int, default=1, help="with --synth: each real crop shown this many times per epoch")
    parser.add_argument("--lr-decay", type=float, default=None, help="per-epoch lr factor (default: each paper's)")
    parser.add_argument("--augment", default=None, help="comma list of training augmentations (default: each paper's hflip,rotate10); see docs/train.md")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (ddtool train --workers); 1 overlaps --synth forgery-making with the model step")
    parser.add_argument("--ship", action="append", default=[], metavar="NAME:RUN", help="after the benchmark, ship RUN's best checkpoint as weights/NAME")
    parser.add_argument("--default", action="store_true", help="with --ship: mark the shipped model as scan's default")
    parser.add_argument("--weights-dir", default=None, help="where --ship writes (default: the shipped weights folder)")
    parser.add_argument("--ship-only", action="store_true", help="only ship from an earlier benchmark in --out; train nothing")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/offline.py", *(sys.argv[1:] if argv is None else argv)])
    try:
        holdouts = () if args.holdouts == "none" else parse_list(args.holdouts, what="method")
        options = BenchmarkOptions(
            data=args.data, out=args.out, models=parse_list(args.models, tuple(ENTRIES), "model") or (), holdouts=holdouts,
            size=args.size, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch, seed=args.seed,
            device=args.device, level=args.level, command=command,
            augment=parse_list(args.augment, AUGMENTS, "augmentation"),
            synth=parse_list(args.synth, SYNTH_METHODS, "synth method"),
            synth_repeats=args.synth_repeats, lr_decay=args.lr_decay, workers=args.workers,
        )
        if not args.ship_only:
            result = run_benchmark(options)
            print(result.files[2].read_text(encoding="utf-8"))
        for spec in args.ship:
            card = ship(spec, Path(args.out), args.weights_dir, args.default)
            _note(f"shipped {card}")
    except DDToolError as exc:
        _note(f"error: {exc}")
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
