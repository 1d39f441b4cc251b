"""`ddtool weights`: what ships in the weights folder, and whether its cards hold up."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ddtool.cli.app import app, console, error, out
from ddtool.errors import CheckpointError, ConfigError
from ddtool.media.faces import DEFAULT_SCAN_DETECTOR

weights_app = typer.Typer(help="List, import and calibrate the shipped weights.", no_args_is_help=False, invoke_without_command=True)
app.add_typer(weights_app, name="weights")

# card fields worth a machine reader's time; the whole card is one `cat` away
JSON_FIELDS = ("name", "model", "default", "marked_default", "in_panel", "operating_point", "origin", "licence", "input", "params", "architecture", "training_data", "training_command",
               "benchmark", "statement", "sha256", "sha256_ok", "onnx", "weights_path", "card_path", "problems")


def _auc(entry: dict) -> str:
    benchmark = entry.get("benchmark")
    auc = benchmark.get("auc") if isinstance(benchmark, dict) else None
    return f"{100 * auc:.1f}" if isinstance(auc, (int, float)) else "-"


def _sha_cell(entry: dict) -> str:
    return {True: "[green]ok[/]", False: "[bold red]MISMATCH[/]"}.get(entry.get("sha256_ok"), "[yellow]not checked[/]")


@weights_app.callback(invoke_without_command=True)
def weights(
    ctx: typer.Context,
    check: bool = typer.Option(False, "--check", help="Exit 3 if any card is incomplete or any weights file fails its sha256."),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON on stdout."),
) -> None:
    """List the shipped weights: model, size, training data, offline-benchmark AUC, sha256 check.

    The folder is $DDTOOL_WEIGHTS, else weights/ of the source checkout.
    Subcommands: `import` (convert third-party weights), `calibrate` (store an operating point).
    """
    if ctx.invoked_subcommand is not None:
        return
    from ddtool.weights import list_shipped, shipped_weights_dir

    folder = shipped_weights_dir()
    entries = list_shipped(folder)
    if as_json:
        sys.stdout.write(json.dumps([{k: e.get(k) for k in JSON_FIELDS} for e in entries], indent=2, default=str) + "\n")
    elif not entries:
        console.print(f"no shipped weights in {folder} (set DDTOOL_WEIGHTS to use another folder)", highlight=False)
    else:
        table = Table(title=f"shipped weights in {folder}", title_justify="left", pad_edge=False)  # fits 80 columns
        for column in ("name", "model", "params", "real/fake", "AUC", "5% FPR at", "sha256"):
            table.add_column(column, no_wrap=column != "model")
        for entry in entries:
            params = entry.get("params")
            name = entry["name"] + (" [bold]*[/]" if entry.get("default") else "") + (" [bold]+[/]" if entry.get("in_panel") else "")
            table.add_row(name, str(entry.get("model", "?")), f"{params:,}" if isinstance(params, int) else "-",
                          _trained_on(entry), _auc(entry), _operating_point(entry), _sha_cell(entry))
        out.print(table)  # the result: stdout, full width in a pipe
        out.print(
            "* default single model (explain; scan without panel.txt) · +: scan's default panel · real/fake: training crops · AUC: the card's benchmark, % · "
            "5% FPR at: P(fake) flagging 5% of real reference faces (`ddtool weights calibrate`)\n"
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
    summary = training_summary(entry)
    return summary if len(summary) <= 24 else "see --json"


def _operating_point(entry: dict) -> str:
    point = entry.get("operating_point")
    return f"{point['threshold']:.3f}" if isinstance(point, dict) and isinstance(point.get("threshold"), (int, float)) else "-"


@weights_app.command("import")
def import_(
    source: Path = typer.Argument(..., help="Weights file: the MesoNet authors' Keras .h5, or a plain state dict (.safetensors, or a torch file)."),
    out_path: Path = typer.Option(..., "--out", help="Output checkpoint stem: writes OUT.safetensors + OUT.json (e.g. weights/meso4_df)."),
    model: str = typer.Option(..., "--model", help="Registered ddtool model the weights are for (keras-mesonet: meso4 or mesoinception4)."),
    fmt: Optional[str] = typer.Option(None, "--format", help="keras-mesonet or state-dict \\[default: detected from the file]."),
    model_kwargs: Optional[str] = typer.Option(None, "--model-kwargs", help='state-dict only: JSON object of model arguments, e.g. \'{"input_size": 128}\'.'),
    card: Optional[Path] = typer.Option(None, "--card", help="JSON file of card fields to add (origin, licence, training_data, input, ...)."),
) -> None:
    """Convert third-party weights into a ddtool checkpoint (safetensors + card).

    Pickled objects are refused: a torch file must load with weights_only=True.
    """
    from ddtool.weights_import import import_weights

    kwargs = _json_object(model_kwargs, "--model-kwargs") if model_kwargs else None
    fields = _json_object(card.read_text(encoding="utf-8") if card and card.is_file() else None, f"--card {card}") if card else None
    card_path = import_weights(source, out_path, model, fmt=fmt, model_kwargs=kwargs, card_fields=fields)
    console.print(f"wrote {card_path} and its weights; check it with `ddtool weights --check` (DDTOOL_WEIGHTS={card_path.parent})", highlight=False, soft_wrap=True)


def _json_object(text: str | None, what: str) -> dict:
    if text is None:
        raise ConfigError(f"{what}: file not found; pass a JSON file of card fields")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{what}: must be a JSON object")
    return value


@weights_app.command("calibrate")
def calibrate(
    names: List[str] = typer.Argument(..., help="Shipped weights names (see `ddtool weights`) or checkpoint paths; faces are found once for all."),
    reference: List[Path] = typer.Option(..., "--reference", help="Real-only media: a folder, a file, or a CSV with a `path` column (repeatable)."),
    split: Optional[str] = typer.Option(None, "--split", help="With a CSV reference: keep only rows whose `split` column is this (e.g. test = held-out identities)."),
    label: Optional[str] = typer.Option(None, "--label", help="Name of the reference set stored in the card \\[default: the --reference file or folder names]."),
    target_fpr: float = typer.Option(0.05, "--fpr", min=0.001, max=0.5, help="Share of real reference faces the operating point may flag."),
    frames: int = typer.Option(8, "--frames", min=1, help="Frames per reference video."),
    detector: str = typer.Option(DEFAULT_SCAN_DETECTOR, "--detector", help="Face detector used on the reference media (as scan's --detector; calibrate with the one scan will use)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use at most this many reference inputs (evenly spread)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the operating point; do not write the card."),
    save_scores: Optional[Path] = typer.Option(None, "--save-scores", help="Also write every reference face's P(fake) per detector to this JSON file."),
) -> None:
    """Score real reference faces and store the threshold flagging --fpr of them in the card (operating_point).

    Calibrate on real media none of the panel's detectors trained on; scan's
    verdicts and "more unusual than N% of real faces" read from it.
    """
    from ddtool.scan.calibrate import calibrate_weights

    points = calibrate_weights(names, reference, split=split, label=label, target_fpr=target_fpr, frames=frames,
                               face_detector=detector, limit=limit, write=not dry_run, progress=console, save_scores=save_scores)
    for name, point in points.items():
        out.print(
            f"{name}: threshold {point['threshold']:.4f} flags {100 * point['measured_fpr']:.1f}% of {point['n_faces']} real reference faces "
            f"({point['n_inputs']} inputs with a face){'' if dry_run else '; stored in the card'}", highlight=False, soft_wrap=True,
        )


@weights_app.command("export-onnx")
def export_onnx(
    names: List[str] = typer.Argument(..., help="Shipped weights names (see `ddtool weights`) or checkpoint paths (NAME.json / NAME.safetensors)."),
) -> None:
    """Export each checkpoint to NAME.onnx beside it and record it in its card (sha256, graph input/output, source weights).

    scan then scores it on onnxruntime, without torch. The export is checked against torch on random faces
    (P(fake) within 1e-4) before the card names it. Re-run it whenever the weights change; until then scan scores
    those weights with torch and says so.
    """
    from ddtool.models.onnx_export import export_onnx as export
    from ddtool.weights import resolve_weights

    for name in names:
        done = export(resolve_weights(name))
        if done.onnx_path is None:
            out.print(f"{name}: a CLIP probe runs on its encoder file already; recorded its model facts in {done.card_path}", highlight=False, soft_wrap=True)
        else:
            size = done.onnx_path.stat().st_size / 2**20
            out.print(f"{name}: wrote {done.onnx_path} ({size:.1f} MiB; P(fake) within {done.max_difference:.1g} of torch) and its card {done.card_path}",
                      highlight=False, soft_wrap=True)
