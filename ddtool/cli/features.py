"""`ddtool features ...`: feature files computed from a face cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ddtool.cli.app import app, console
from ddtool.features import DEFAULT_FRAMES, DEFAULT_SIGMA, RESIDUAL_SIZE

features_app = typer.Typer(help="Compute feature files from a face cache.", no_args_is_help=True)
app.add_typer(features_app, name="features")


@features_app.command("noise")
def noise(
    cache: Path = typer.Argument(..., help="Face cache folder with manifest.csv (from `ddtool extract`)."),
    sigma: float = typer.Option(DEFAULT_SIGMA, min=0.01, help="Gaussian blur sigma of the residual."),
    ksize: int | None = typer.Option(None, min=1, help="Odd blur kernel size (default 2*ceil(3*sigma)+1)."),
    frames: int = typer.Option(DEFAULT_FRAMES, min=1, help="Faces per video in the residual volume."),
    size: int = typer.Option(RESIDUAL_SIZE, min=8, help="Side the faces are resized to before the residual."),
) -> None:
    """Gaussian-residual volumes per video and residual statistics per crop (noise_volumes.npz, noise_stats.csv)."""
    from ddtool.features.noise import compute_noise_features
    with Progress(TextColumn("noise"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("noise", total=None)
        summary = compute_noise_features(
            cache, sigma=sigma, ksize=ksize, frames=frames, size=size,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"{summary.n_videos} videos -> {summary.volumes_path}; {summary.n_crops} crops -> {summary.stats_path}")
    if summary.unreadable:
        console.print(f"[yellow]{len(summary.unreadable)} crops could not be read and were skipped[/]", highlight=False)
