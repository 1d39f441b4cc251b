"""`ddtool models` and `ddtool profile`: what each detector costs."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from ddtool.cli.app import app, console, out
from ddtool.cli.options import device_option


def _human(value: int | float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.2f}{suffix}{unit}"
    return f"{value:g}{unit}"


def _shape(shape) -> str:
    return "x".join(str(s) for s in shape) if shape else "features"


@app.command()
def models(
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON on stdout."),
    no_macs: bool = typer.Option(False, "--no-macs", help="Skip counting MACs (parameters only)."),
) -> None:
    """List every registered model with its size and cost beside the paper's figures."""
    from ddtool.models.summary import summarize_all
    with console.status("counting parameters and MACs"):
        rows = summarize_all(with_macs=not no_macs)
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
        return
    table = Table(title="ddtool models (MACs at the input size, batch 1)")
    for column in ("name", "family", "input", "params", "paper params", "MACs", "paper MACs"):
        table.add_column(column, justify="left" if column in ("name", "family") else "right", no_wrap=column == "name")
    for r in rows:
        table.add_row(
            r.name,
            r.family,
            _shape(r.input_shape),
            _human(r.params),
            _human(r.paper_params),
            _human(r.macs),
            _human(r.paper_macs),
        )
    out.print(table)


@app.command()
def profile(
    model: str = typer.Option(..., "--model", "-m", help="Registered model name (see `ddtool models`)."),
    batch: int = typer.Option(1, "--batch", "-b", min=1, help="Batch size of the timed forward passes."),
    device: str = device_option(),
    size: int = typer.Option(None, "--size", min=8, help="Image side in pixels (default: the model's own input size)."),
    amp: bool = typer.Option(False, "--amp", help="Mixed precision (float16 autocast); CUDA only."),
    runs: int = typer.Option(5, "--runs", min=1, help="Timed runs after 2 warm-up runs; the median is reported."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Parameters, MACs and measured throughput of one model."""
    from ddtool.models.summary import profile as profile_model
    with console.status(f"profiling {model} on {device}"):
        result = profile_model(model, batch=batch, device=device, size=size, amp=amp, runs=runs)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    table = Table(title=f"{result.name} on {result.device}" + (" (AMP)" if result.amp else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("input", f"{result.batch} x {_shape(result.input_shape)}")
    table.add_row("params", f"{result.params:,}")
    table.add_row("MACs per item", _human(result.macs))
    table.add_row("items/s", f"{result.images_per_s:.1f}")
    out.print(table)
