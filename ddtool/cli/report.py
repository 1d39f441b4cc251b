"""`ddtool report`: cross-dataset, intra-dataset and ablation tables with ROC curves."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ddtool.cli.app import app, console, out
from ddtool.cli.options import device_option
from ddtool.evaluate.rules import RULES


@app.command("report")
def report_command(
    more_runs: Optional[List[Path]] = typer.Argument(
        None, metavar="RUNS", help="More run folders or checkpoints: everything after --runs that is no option (so `--runs runs/*` works)."),
    runs: List[Path] = typer.Option([], "--runs", help="Run folder or checkpoint; repeat, or list them after it (shell glob)."),
    cross: Optional[List[str]] = typer.Option(None, "--cross", help="Test set: registered name or face cache; repeat. Without it: each run's own test split."),
    out_dir: Path = typer.Option(Path("report"), "--out", help="Folder for report.md, report.csv, report.html, roc.png."),
    metric: str = typer.Option("auc,bacc", "--metric", help="Comma-separated: auc, bacc, acc, ap, eer, tpr_at_fpr_0.01, tpr_at_fpr_0.001."),
    level: str = typer.Option("video", "--level", help="video (faces aggregated per video) or frame (every face, as the papers)."),
    ablation: bool = typer.Option(False, "--ablation", help="Add one column per setting that differs between the runs."),
    split: str = typer.Option("test", "--split", help="Split of each test cache to score (caches without splits are used whole)."),
    aggregate: str = typer.Option("mean", "--aggregate", help=f"Frame -> video rule: {', '.join(RULES)}."),
    batch: int = typer.Option(64, "--batch", min=1, help="Crops per forward pass."),
    device: str = device_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the table, intervals and sample sizes as one JSON document on stdout."),
) -> None:
    """Evaluate every run on every test set (reusing cached predictions) and write the report."""
    from ddtool.evaluate.report import METRIC_LABELS, SAMPLE_NOTE, build_report, cell_text, parse_metrics, report_document, sample_text

    runs = [*runs, *(more_runs or [])]
    if not runs:
        raise typer.BadParameter("give at least one run folder or checkpoint", param_hint="--runs")
    metrics = parse_metrics(metric)
    with console.status("evaluating") as status:
        report = build_report(
            runs, cross=cross, out=out_dir, metrics=metrics, level=level, split=split, ablation=ablation,
            batch_size=batch, device=device, rule=aggregate,
            on_progress=lambda what: status.update(f"evaluating {what}"),
        )
    names = list(dict.fromkeys(c.rsplit(":", 1)[0] for c in report.best))
    if as_json:
        sys.stdout.write(json.dumps(report_document(report, level), indent=2, default=str) + "\n")
    else:
        headers = [f"{c.rsplit(':', 1)[0]} {METRIC_LABELS[c.rsplit(':', 1)[1]]}" for c in report.best] + [f"{n} n" for n in names]
        table = Table("run", *headers, title=f"{level}-level, %", caption=escape(SAMPLE_NOTE))
        for position, row in report.table.iterrows():
            cells = []
            for column, best_rows in report.best.items():
                text = escape(cell_text(row, column))
                cells.append(f"[bold green]{text}[/]" if position in best_rows else text)
            cells += [escape(sample_text(row, n)) for n in names]
            table.add_row(escape(str(row["run"])), *cells)
        out.print(table)
    console.print("wrote " + ", ".join(str(p) for p in report.files), highlight=False)
