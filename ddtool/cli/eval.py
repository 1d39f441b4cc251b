"""`ddtool eval`: score a face cache with a checkpoint, frame- and video-level metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.markup import escape
from rich.table import Table

from ddtool.cli.app import app, console, out
from ddtool.cli.options import device_option
from ddtool.evaluate.rules import RULES

EVAL_SCHEMA = "ddtool.eval/1"
SHOWN = (("auc", "AUC"), ("ap", "AP"), ("acc", "ACC"), ("bacc", "BACC"), ("eer", "EER"), ("tpr_at_fpr_0.01", "TPR@1%"), ("tpr_at_fpr_0.001", "TPR@0.1%"))


def _value(m: dict, key: str) -> str:
    if m.get(key) is None:
        return "-"
    interval = (m.get("ci95") or {}).get(key)
    return f"{m[key]:.4f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else (" [–]" if key in (m.get("ci95") or {}) else ""))


def metrics_table(metrics: dict, title: str) -> Table:
    """Metrics down, levels across: stays readable in an 80-column terminal."""
    frame, video = metrics["frame"], metrics["video"]
    table = Table("metric", "frame", "video", title=title, caption=escape("[a, b]: bootstrap 95% interval, resampling videos (none under 2 videos a class)"))
    table.add_row("n (real/fake)", *(f"{m['n']} ({m['n_real']}/{m['n_fake']})" for m in (frame, video)))
    for key, label in SHOWN:
        table.add_row(label, *(_value(m, key) for m in (frame, video)))
    table.add_row("EER threshold", *("-" if m.get("eer_threshold") is None else f"{m['eer_threshold']:.4f}" for m in (frame, video)))
    return table


def small_sample_warning(m: dict) -> str | None:
    video = m["video"]
    if not video.get("small_sample"):
        return None
    counts = f"small sample: {video['n_videos_real']} real and {video['n_videos_fake']} fake videos"
    if min(video["n_videos_real"], video["n_videos_fake"]) < 2:
        return f"{counts}, too few for any interval: these figures show the pipeline ran, not how well the model detects"
    return f"{counts}; one video more or less moves these figures a lot, read the intervals, not the point values"


@app.command("eval")
def eval_command(
    data: str = typer.Option(..., "--data", help="Face cache folder or a name registered with `ddtool data add`."),
    run: Optional[Path] = typer.Option(None, "--run", help="Training run folder (uses its best checkpoint)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint file (.safetensors or its .json card)."),
    split: str = typer.Option("test", "--split", help="Manifest split to score: train, val, test or all."),
    batch: int = typer.Option(64, "--batch", min=1, help="Crops per forward pass."),
    device: str = device_option(),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Output folder \\[default: with --run, a folder in RUN/eval/ named after the cache and split; with --weights, one in the user cache folder]."),
    aggregate: str = typer.Option("mean", "--aggregate", help=f"Frame -> video rule: {', '.join(RULES)}."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Score at or above which a face counts as fake (ACC, BACC)."),
    fresh: bool = typer.Option(False, "--fresh", help="Predict again even if cached predictions match."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json to stdout."),
) -> None:
    """Score every crop of a split, write predictions.csv and metrics.json, print the metrics."""
    from ddtool.evaluate.registry_data import resolve_dataset
    from ddtool.evaluate.evaluation import evaluate_checkpoint, resolve_checkpoint
    checkpoint = resolve_checkpoint(run, weights)
    name, cache = resolve_dataset(data)
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("scoring", total=None)
        evaluation = evaluate_checkpoint(
            checkpoint, cache, split=split, out=out_dir, batch_size=batch, device=device, rule=aggregate,
            threshold=threshold, reuse=not fresh, dataset_name=name,
            on_batch=lambda done, total: progress.update(task, completed=done, total=total),
        )
    m = evaluation.metrics
    if as_json:
        sys.stdout.write(json.dumps({"schema": EVAL_SCHEMA, **m, "out_dir": str(evaluation.out_dir), "reused": evaluation.reused}, indent=2) + "\n")
    else:
        title = f"{m['model']} ({m['training_data']}) on {name} ({m['split_note']}); video = {aggregate} of face scores"
        out.print(metrics_table(m, escape(title)))
    warning = small_sample_warning(m)
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    for level in ("frame", "video"):
        if m[level]["note"]:
            console.print(f"note ({level}): {m[level]['note']}")
    source = "reused cached predictions" if evaluation.reused else "predicted"
    console.print(f"{source}; wrote {evaluation.out_dir / 'predictions.csv'} and {evaluation.out_dir / 'metrics.json'}")
