"""`ddtool scan PATH`: verdict + evidence for a video, an image or a folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ddtool.cli.app import app, console
from ddtool.cli.options import DetectorModel, DetectorName, detector_model_option, detector_option, device_option
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


def _headline_line(result) -> str:
    """The input and its headline on one line (never wrapped, so it can be read and grepped whole)."""
    from ddtool.scan.verdict import claim_of
    from ddtool.scan.wording import headline

    level = result.strength()["level"]
    colour = {"manipulated": "bold red", "review": "bold yellow", "no_strong_evidence": "bold green"}.get(claim_of(result.verdict, level), "bold")
    return f"{escape(result.path)}: [{colour}]{escape(headline(result.verdict, level))}[/]"


def _result_table(result) -> Table:
    from ddtool.scan.calibration import band_words

    score = "n/a" if result.score is None else f"{result.score:.3f}"
    table = Table(show_header=True)
    table.add_column("panel score" if result.score_kind == "panel" else "P(fake)")
    table.add_column("threshold")
    table.add_column("faces")
    table.add_column("tracks (score)")
    table.add_column("segments")
    tracks = ", ".join(f"{t['track_id']}: {t['score']:.3f} ({t['faces']})" for t in result.tracks) or "-"
    segments = ", ".join(f"{s['start']:.1f}s" if s["end"] <= s["start"] else f"{s['start']:.1f}-{s['end']:.1f}s" for s in result.segments[:4]) or "-"
    if len(result.segments) > 4:
        segments += f" (+{len(result.segments) - 4})"
    table.add_row(score, f"{result.threshold:g}", str(len(result.frames)), tracks, segments)
    if result.score_kind == "panel":
        table.caption = (f"score: panel score, mean over detectors of the share of real reference faces each finds less unusual; "
                         f"{band_words(result.band, result.kind)}. Detectors: "
                         + "; ".join(f"{p['name']} P(fake) {p['score']:.3f}, {p['meaning']}" for p in result.panel if p.get("score") is not None))
        table.caption_justify = "left"
    return table


@app.command()
def scan(
    path: Path = typer.Argument(..., help="A video, an image, or a folder (every video/image inside, recursively)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name (must match the checkpoint's card)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="One model: checkpoint NAME.safetensors (+ NAME.json) or a shipped name. Default: the detector panel."),
    panel: Optional[str] = typer.Option(None, "--panel", help="Comma-separated shipped weights names scoring every face \\[default: weights/panel.txt, see `ddtool weights`]."),
    untrained: bool = typer.Option(False, "--untrained", help="TESTING ONLY: random weights for --model; every output carries a warning."),
    frames: int = typer.Option(32, "--frames", min=1, help="Frames per video, evenly spaced."),
    detector: DetectorName = detector_option(),
    detector_model: DetectorModel = detector_model_option(),
    all_faces: bool = typer.Option(False, "--all-faces", help="Score every face in a frame, not only the largest."),
    threshold: float = typer.Option(0.5, "--threshold", min=0.0, max=1.0, help="Only for one uncalibrated model: P(fake) at or above which an input is judged fake (calibrated detectors use their cards' operating points)."),
    device: str = device_option(),
    batch: int = typer.Option(32, "--batch", min=1, help="Face crops per model forward pass."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for detection and for scoring each \\[default: (cores - 1) // 2, at least 1, and every core for scoring with a model heavy per face such as the CLIP probe; decoding runs beside them; give 1 to jobs sharing a machine]."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Evidence folder: per input result.json, scores.csv, timeline.png, segments.srt, report.html, manifest.sha256; a folder scan adds index.html + summary.csv."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON document on stdout and nothing else."),
    report: bool = typer.Option(True, "--report/--no-report", help="With --out: also write report.html (Grad-CAM costs a backward pass)."),
    aggregate: str = typer.Option("mean", "--aggregate", help=f"Per-track rule: {', '.join(RULES)}. Video = max over tracks."),
    margin: Optional[float] = typer.Option(
        None, "--margin", min=0.0, max=2.0, help="Border around the face box, as a fraction of it \\[default: as the model's training crops]."
    ),
    case: Optional[str] = typer.Option(None, "--case", help="Case ID, printed at the top of the report and stored in result.json."),
    examiner: Optional[str] = typer.Option(None, "--examiner", help="Examiner name, printed in the report and stored in result.json."),
    note: Optional[str] = typer.Option(None, "--note", help="Free-text note, printed in the report and stored in result.json."),
    resume: bool = typer.Option(False, "--resume", help="With --out: keep inputs whose evidence folder is complete and verifies, scan the rest, rebuild the index."),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: with a folder and --out, scan only shard I of N (e.g. a Slurm array task); `ddtool index OUT` then writes the one index over all shards."),
) -> None:
    """Look for signs of manipulation in videos/images and write the evidence.

    Every face is scored by the detector panel (each detector cuts the face as
    its card says); the verdict is fake / real / uncertain from the mean of the
    detectors' reference percentiles (docs/scan.md "Verdicts"), and the headline
    and exit code never claim more than the detectors' measured accuracy supports.

    Exit codes: 0 no strong evidence of manipulation (not a finding of authenticity),
    1 at least one input manipulated (a fake verdict at high confidence), 8 none manipulated
    but some need review (uncertain, or fake at low confidence), 3 nothing could be scanned,
    4 inconclusive (no face anywhere), 6 some inputs failed (none of the others manipulated),
    7 some inputs failed and another was judged manipulated.
    """
    # Inputs and output folder are checked before torch or the model load (seconds), so a typo fails at once.
    from ddtool.scan.inputs import find_inputs, prepare_out_dir

    if resume and out_dir is None:
        raise typer.BadParameter("--resume continues an evidence folder; give it with --out DIR", param_hint="--resume")
    if shard is not None and out_dir is None:
        raise typer.BadParameter("--shard writes its share into an evidence folder; give it with --out DIR", param_hint="--shard")
    from ddtool.data.shards import parse_shard

    split = parse_shard(shard) if shard is not None else None
    inputs = find_inputs(path, exclude=(out_dir,) if out_dir is not None else ())
    if split is not None:
        from ddtool.scan.inputs import Inputs
        from ddtool.scan.shards import select_inputs

        inputs = Inputs(select_inputs(inputs.files, path, split), inputs.skipped)
    if out_dir is not None:
        prepare_out_dir(out_dir)
    elif not json_output and not path.is_dir():
        # One file, nothing to record: an unreadable file is its one-line error before the detectors load (seconds).
        # (With --json or --out its error becomes the input's document and evidence record, as in a batch.)
        from ddtool.media.video import probe

        probe(path, count_frames=False)  # the scan probes again, counting frames where it must
    for folder, why in inputs.skipped:
        console.print(f"note: left out {folder}: {why}", highlight=False, soft_wrap=True)

    from ddtool.cli.app import command_line
    from ddtool.cli.app import comma_list
    from ddtool.scan.panel import panel_for
    from ddtool.scan.outputs import dumps
    from ddtool.scan.pipeline import ScanOptions, exit_code_for_verdicts, scan_iter
    from ddtool.scan.provenance import case_fields, session_facts

    options = ScanOptions(
        model=model, weights=weights, panel=comma_list(panel), untrained=untrained, frames=frames, detector=detector.value, detector_model=detector_model, all_faces=all_faces,
        threshold=threshold, device=device, batch=batch, aggregate=aggregate, margin=margin,
        evidence_images=out_dir is not None and report,
        threads=threads,
    )
    options.validate()
    loaded = panel_for(options)
    options.device = loaded.device  # result.json records the device used, not "auto"
    for line in loaded.notes():
        console.print(f"note: {line}", highlight=False, soft_wrap=True)
    if loaded.untrained:
        console.print(f"[bold white on red] WARNING: {loaded.provenance()['warning']} [/]")
    shipped = [f"{m.key} {(m.weights_sha256 or '?')[:8]}" for m in loaded.members if m.shipped_note]
    if shipped:  # one short line: what each was trained on is in `ddtool weights` and every report
        console.print(f"detectors: {', '.join(shipped)} (shipped weights, sha256 prefix; see `ddtool weights`)", highlight=False, soft_wrap=True)
    if not loaded.calibrated:
        console.print(f"note: {loaded.members[0].key} has no operating point in its card: its P(fake) is cut at --threshold {threshold:g}, "
                      "a cut never measured on real media (`ddtool weights calibrate` stores one)", highlight=False, soft_wrap=True)
    session = session_facts(options, command_line(), case_fields(case, examiner, note))
    folder_scan = path.is_dir()

    # Only small rows are kept per input (and the JSON objects with --json); evidence is written and dropped.
    verdicts: list[str] = []
    levels: list[str | None] = []
    documents: list[dict] = []
    kept = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        def show(result, document, from_earlier_run: bool) -> None:
            nonlocal kept
            verdicts.append(document.get("verdict"))
            levels.append((document.get("strength") or {}).get("level"))
            if json_output:
                documents.append(document)
            if from_earlier_run:
                kept += 1
                bar.console.print(f"kept: {document.get('path')}: complete evidence folder from an earlier run (verified)", highlight=False, soft_wrap=True)
                return
            for problem in result.errors:
                bar.console.print(f"[bold red]error:[/] {escape(result.path)}: {escape(problem)}" if result.scanned else f"[bold red]error:[/] {escape(problem)}",
                                  highlight=False, soft_wrap=True)
            if result.scanned and not json_output:
                bar.console.print(_headline_line(result), highlight=False, soft_wrap=True)
                bar.console.print(_result_table(result))

        progress = _RichProgress(bar, len(inputs.files))
        if out_dir is not None:
            from ddtool.scan.batch import scan_to_folder

            scan_to_folder(path, out_dir, options, loaded, session, report=report, resume=resume, progress=progress, on_result=show, inputs=inputs,
                           shard=split)
        else:
            for result in scan_iter(path, options, loaded, progress, session=session, inputs=inputs.files):
                show(result, result.to_dict(), False)
                result.evidence = []

    exit_code = exit_code_for_verdicts(verdicts, levels)
    if json_output:
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v] = counts.get(v, 0) + 1
        document = {"schema": "ddtool.scan/1", "exit_code": exit_code, "summary": counts, "scan": session, "inputs": documents}
        sys.stdout.write(dumps(document) + "\n")
        sys.stdout.flush()
    else:
        from ddtool.scan.wording import claim_words

        claims = [claim_words(v, level) for v, level in zip(verdicts, levels)]
        summary = ", ".join(f"{claims.count(c)} {c}" for c in dict.fromkeys(sorted(claims)))
        resumed = f" ({kept} kept from an earlier run)" if kept else ""
        part = f" of shard {split[0]}/{split[1]}" if split else ""
        console.print(f"[bold]summary:[/] {len(verdicts)} input(s){part}{resumed}: {summary}" + (f"; evidence in {escape(str(out_dir))}" if out_dir else ""),
                      highlight=False)
        if loaded.untrained:
            console.print("[bold white on red] WARNING: untrained model, these verdicts are meaningless [/]")
    if split is not None:
        console.print(f"shard {split[0]}/{split[1]} done; once every shard is: ddtool index {escape(str(out_dir))}", highlight=False, soft_wrap=True)
    elif out_dir is not None:
        from ddtool.scan.naming import evidence_name

        print_manifest_hash(out_dir if folder_scan else out_dir / evidence_name(path).name)
    raise typer.Exit(exit_code)


def print_manifest_hash(folder: Path | None) -> None:
    """The manifest's own sha256, for the analyst's case notes: it pins every file of the evidence folder."""
    import shlex

    from ddtool.io import sha256_file
    from ddtool.scan.manifest import MANIFEST

    if folder is not None and (folder / MANIFEST).is_file():
        manifest = folder / MANIFEST
        console.print(f"evidence manifest {manifest} sha256 {sha256_file(manifest)} (check with: ddtool verify {shlex.quote(str(folder))})",
                      highlight=False, soft_wrap=True, markup=False)
