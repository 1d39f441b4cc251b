"""`ddtool scan PATH`: verdict + evidence for a video, an image or a folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ddtool.cli.app import app, console, error
from ddtool.cli.options import DetectorModel, DetectorName, detector_model_option, detector_option
from ddtool.evaluate.rules import RULES


class _RichProgress:
    """Two bars on stderr: files, and frames of the current file."""

    def __init__(self, progress: Progress, total_files: int):
        self.progress = progress
        self.files = progress.add_task("files", total=total_files)
        self.frames = progress.add_task("frames", total=1)

    def start_file(self, path: Path, frames: int) -> None:
        self.progress.reset(self.frames, total=frames, description=f"frames of {path.name}")

    def advance(self, frames: int) -> None:
        self.progress.advance(self.frames, frames)

    def end_file(self, result) -> None:
        self.progress.advance(self.files, 1)


def _result_table(result) -> Table:
    colour = {"fake": "bold red", "real": "bold green"}.get(result.verdict, "bold yellow")
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    table = Table(title=f"{result.path}", title_justify="left", show_header=True)
    table.add_column("verdict")
    table.add_column("score")
    table.add_column("threshold")
    table.add_column("faces")
    table.add_column("tracks (score)")
    table.add_column("segments")
    tracks = ", ".join(f"{t['track_id']}: {t['score']:.3f} ({t['faces']})" for t in result.tracks) or "-"
    segments = ", ".join(f"{s['start']:.1f}-{s['end']:.1f}s" for s in result.segments[:4]) or "-"
    if len(result.segments) > 4:
        segments += f" (+{len(result.segments) - 4})"
    table.add_row(f"[{colour}]{result.verdict.upper()}[/]", score, f"{result.threshold:g}", str(len(result.frames)), tracks, segments)
    return table


@app.command()
def scan(
    path: Path = typer.Argument(..., help="A video, an image, or a folder (every video/image inside, recursively)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name (must match the checkpoint's card)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Checkpoint NAME.safetensors (+ NAME.json). Default: the default shipped model (see `ddtool weights`)."),
    untrained: bool = typer.Option(False, "--untrained", help="TESTING ONLY: random weights for --model; every output carries a warning."),
    frames: int = typer.Option(32, "--frames", min=1, help="Frames per video, evenly spaced."),
    detector: DetectorName = detector_option(),
    detector_model: DetectorModel = detector_model_option(),
    all_faces: bool = typer.Option(False, "--all-faces", help="Score every face in a frame, not only the largest."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Score at or above which an input is judged fake."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
    batch: int = typer.Option(32, "--batch", min=1, help="Face crops per model forward pass."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Write scores.csv, result.json, timeline.png, segments.srt, report.html per input here."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout and nothing else."),
    report: bool = typer.Option(True, "--report/--no-report", help="With --out: also write report.html (Grad-CAM costs a backward pass)."),
    aggregate: str = typer.Option("mean", "--aggregate", help=f"Per-track rule: {', '.join(RULES)}. Video = max over tracks."),
    margin: Optional[float] = typer.Option(
        None, "--margin", min=0.0, max=2.0, help="Border around the face box, as a fraction of it \\[default: as the model's training crops]."
    ),
) -> None:
    """Judge videos/images real or fake and write the evidence.

    Exit codes: 0 all real, 1 any fake, 3 nothing could be scanned (bad input),
    4 inconclusive (no face anywhere).
    """
    from ddtool.scan.detector import load_detector
    from ddtool.scan.outputs import dumps, output_dir_name, results_document, write_outputs
    from ddtool.scan.pipeline import ScanOptions, exit_code_for, list_inputs, scan_path

    options = ScanOptions(
        model=model, weights=weights, untrained=untrained, frames=frames, detector=detector.value, detector_model=detector_model, all_faces=all_faces,
        threshold=threshold, device=device, batch=batch, aggregate=aggregate, margin=margin,
    )
    options.validate()
    total_files = len(list_inputs(path))
    loaded = load_detector(options.model, options.weights, options.untrained, options.device)
    if loaded.untrained:
        console.print(f"[bold white on red] WARNING: {loaded.provenance()['warning']} [/]")
    if loaded.shipped_note:
        console.print(loaded.shipped_note, highlight=False, soft_wrap=True)

    def save_evidence(result) -> None:
        if out_dir is not None:
            folder = out_dir / output_dir_name(result.path, path if path.is_dir() else None)
            write_outputs(result, folder, loaded, report=report and result.scanned)

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        results = scan_path(path, options, loaded, _RichProgress(bar, total_files), on_result=save_evidence)

    for result in results:
        for problem in result.errors:
            error(f"{result.path}: {problem}" if result.scanned else problem)
    if json_output:
        sys.stdout.write(dumps(results_document(results)) + "\n")
        sys.stdout.flush()
    else:
        for result in results:
            if result.scanned:
                console.print(_result_table(result))
        counts = {v: sum(r.verdict == v for r in results) for v in ("fake", "real", "inconclusive", "error")}
        summary = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        console.print(f"[bold]summary:[/] {len(results)} input(s): {summary}" + (f"; evidence in {out_dir}" if out_dir else ""))
        if loaded.untrained:
            console.print("[bold white on red] WARNING: untrained model, these verdicts are meaningless [/]")
    raise typer.Exit(exit_code_for(results))
