"""`ddtool extract`: a face cache from a dataset, or (`--merge`) one cache from shard caches."""

from __future__ import annotations

import dataclasses
import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ddtool.cli.app import app, console
from ddtool.cli.options import DetectorModel, DetectorName, detector_model_option, detector_option
from ddtool.errors import NoFaceError


EXTRACT_SCHEMA = "ddtool.extract/1"


class LayoutChoice(str, Enum):
    auto = "auto"
    ffpp = "ffpp"
    celebdf = "celebdf"
    dfdc = "dfdc"
    hff = "hff"
    folder = "folder"
    csv = "csv"


class PresetChoice(str, Enum):
    ffpp = "ffpp"
    dfdc = "dfdc"
    celebdf = "celebdf"
    seed = "seed"


class CompressionChoice(str, Enum):
    raw = "raw"
    c23 = "c23"
    c40 = "c40"


@app.command()
def extract(
    sources: list[Path] = typer.Argument(
        ..., help="Dataset folder or CSV list (path,label[,method,split]); with --merge, the shard caches."),
    out: Path = typer.Option(..., "--out", "-o", help="Face cache folder (created; an existing one is resumed)."),
    merge: bool = typer.Option(False, "--merge", help="Combine the caches of `--shard I/N` jobs into --out."),
    layout: LayoutChoice = typer.Option(LayoutChoice.auto, help="Dataset layout; auto detects it."),
    compression: CompressionChoice = typer.Option(CompressionChoice.c23, help="FF++ quality folder to read."),
    preset: PresetChoice | None = typer.Option(
        None, help="Per-class frame sampling of a paper protocol (default: the dataset's own, if any)."),
    frames: int | None = typer.Option(None, min=1, help="Frames per video (overrides the preset)."),
    interval: int | None = typer.Option(None, min=1, help="Take every K-th frame (overrides the preset)."),
    # hog by default: the papers' face_recognition crops (scan's default is a CNN).
    detector: DetectorName = detector_option("hog"),
    detector_model: DetectorModel = detector_model_option(),
    size: int = typer.Option(256, min=16, help="Side of the square face crops in pixels."),
    margin: float = typer.Option(0.0, min=0.0, max=2.0, help="Extra border around the face box, as a fraction of it."),
    crop: str = typer.Option("box", "--crop", help="Crop style: box (face box + --margin), mesonet_aligned (the MesoNet authors' landmark-aligned square from 68-point landmarks) or mesonet_aligned5 (the same from the face detector's 5 landmarks: centerface, mtcnn)."),
    all_faces: bool = typer.Option(False, "--all-faces", help="Keep every face, not only the largest per frame."),
    workers: int = typer.Option(1, min=1, help="Parallel processes (each builds its own detector)."),
    shard: str | None = typer.Option(None, help="I/N: process only shard I (0-based) of N, for job arrays."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Try again the videos an earlier run failed on."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON document on stdout."),
) -> None:
    """Detect and crop faces of a dataset into a resumable face cache with manifest.csv."""
    if merge:
        _merge(sources, out, as_json)
        return
    if len(sources) != 1:
        raise typer.BadParameter("give one dataset folder or CSV list (several paths only with --merge)")
    source = sources[0]
    from ddtool.data.extract import ExtractOptions, extract as extract_dataset
    from ddtool.data.shards import parse_shard

    options = ExtractOptions(
        preset=preset.value if preset else None, frames=frames, interval=interval, detector=detector.value,
        detector_model=str(detector_model) if detector_model else None, size=size, margin=margin, all_faces=all_faces, crop=crop,
    )
    with Progress(TextColumn("extract"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[last]}"), console=console, transient=True) as progress:
        task = progress.add_task("extract", total=None, last="")

        def show(outcome, done, total):
            status = "skipped" if outcome.skipped else ("failed" if outcome.error else f"{outcome.n_crops} faces")
            progress.update(task, completed=done, total=total, last=f"{outcome.video_id}: {status}")

        summary = extract_dataset(
            source, out, layout=layout.value, compression=compression.value, options=options, workers=workers,
            shard=parse_shard(shard) if shard else None, retry_failed=retry_failed, on_video_done=show,
        )
    if as_json:
        _print_json({"schema": EXTRACT_SCHEMA, **_plain(summary), "manifest": str(summary.manifest_path)})
    console.print(
        f"{summary.n_crops} face crops from {summary.n_videos_with_faces} of {summary.n_items} videos "
        f"({summary.n_skipped} already done) -> {summary.manifest_path}"
    )
    if summary.n_failed:
        console.print(f"[yellow]{summary.n_failed} failed[/] (see {summary.errors_path})", highlight=False)
    if summary.n_items == 0 and shard:
        # Hash sharding can leave a shard of a small dataset empty: not an error.
        console.print(f"shard {shard} holds none of this dataset's videos; nothing to do")
        return
    if summary.n_crops == 0:
        raise NoFaceError(f"nothing could be extracted: all {summary.n_items} videos failed; see {summary.errors_path}")


def _plain(summary) -> dict:
    fields = dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else dict(vars(summary))
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()}


def _print_json(document: dict) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _merge(shards: list[Path], out: Path, as_json: bool = False) -> None:
    from ddtool.data.extract import merge_caches

    summary = merge_caches(shards, out)
    if as_json:
        _print_json({"schema": EXTRACT_SCHEMA, "merged": True, "cache": str(out), **_plain(summary)})
    console.print(
        f"merged {summary.n_shards} shards: {summary.n_crops} face crops from {summary.n_videos} videos, "
        f"{summary.n_failed} failures -> {summary.cache}"
    )
