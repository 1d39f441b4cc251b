"""`ddtool weights`: what ships in the weights folder, and whether its cards hold up."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from ddtool.cli.app import app, console, error, out
from ddtool.errors import CheckpointError

# card fields worth a machine reader's time; the whole card is one `cat` away
JSON_FIELDS = ("name", "model", "default", "marked_default", "params", "architecture", "training_data", "training_command",
               "benchmark", "statement", "sha256", "sha256_ok", "weights_path", "card_path", "problems")


def _auc(entry: dict) -> str:
    benchmark = entry.get("benchmark")
    auc = benchmark.get("auc") if isinstance(benchmark, dict) else None
    return f"{100 * auc:.1f}" if isinstance(auc, (int, float)) else "-"


def _sha_cell(entry: dict) -> str:
    return {True: "[green]ok[/]", False: "[bold red]MISMATCH[/]"}.get(entry.get("sha256_ok"), "[yellow]not checked[/]")


@app.command()
def weights(
    check: bool = typer.Option(False, "--check", help="Exit 3 if any card is incomplete or any weights file fails its sha256."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
) -> None:
    """List the shipped weights: model, size, training data, offline-benchmark AUC, sha256 check.

    The folder is $DDTOOL_WEIGHTS, else weights/ of the source checkout.
    """
    from ddtool.weights import list_shipped, shipped_weights_dir

    folder = shipped_weights_dir()
    entries = list_shipped(folder)
    if as_json:
        sys.stdout.write(json.dumps([{k: e.get(k) for k in JSON_FIELDS} for e in entries], indent=2, default=str) + "\n")
    elif not entries:
        console.print(f"no shipped weights in {folder} (set DDTOOL_WEIGHTS to use another folder)", highlight=False)
    else:
        table = Table(title=f"shipped weights in {folder}", title_justify="left", pad_edge=False)  # fits 80 columns
        for column in ("name", "model", "params", "real/fake", "AUC", "sha256"):
            table.add_column(column, no_wrap=column != "model")
        for entry in entries:
            params = entry.get("params")
            name = entry["name"] + (" [bold]*[/]" if entry.get("default") else "")
            table.add_row(name, str(entry.get("model", "?")), f"{params:,}" if isinstance(params, int) else "-",
                          _trained_on(entry), _auc(entry), _sha_cell(entry))
        out.print(table)  # the result: stdout, full width in a pipe
        out.print(
            "* scan's default · real/fake: training crops · AUC: offline test split, %\n"
            "training data, commands and metrics in full: `ddtool weights --json`",
            highlight=False,
        )
    problems = [f"{e['name']}: {p}" for e in entries for p in e["problems"]]
    if not as_json:
        for problem in problems:
            error(problem)
    if check and problems:
        raise CheckpointError(f"{len(problems)} problem(s) in {folder}; each is listed by `ddtool weights`; fix the card or re-ship it with `benchmarks/offline.py --ship`")


def _trained_on(entry: dict) -> str:
    """Short table cell: crop counts of the training split (the full sentence is in --json)."""
    from ddtool.weights import training_summary

    data = entry.get("training_data")
    train = data.get("train") if isinstance(data, dict) else None
    if isinstance(train, dict) and {"crops", "real", "fake"} <= set(train):
        return f"{train['real']}/{train['fake']}"
    return training_summary(entry)
