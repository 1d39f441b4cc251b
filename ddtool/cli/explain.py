"""`ddtool explain`: Grad-CAM on a face/video, or AFAM over many fake faces."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ddtool.cli.app import app, console
from ddtool.cli.options import DetectorModel, DetectorName, detector_model_option, detector_option, device_option
from ddtool.errors import ConfigError


def _detectors(models: list[str], weights: list[Path], untrained: bool, device: str) -> list:
    from ddtool.scan.detector import load_detector

    if untrained:
        if weights:
            raise ConfigError("--untrained and --weights exclude each other; drop one")
        if not models:
            raise ConfigError("--untrained needs at least one --model NAME")
        return [load_detector(name, None, True, device) for name in models]
    if not weights:
        return [load_detector(models[0] if models else None, None, False, device)]
    if len(models) > 1 and len(models) != len(weights):
        raise ConfigError(f"{len(models)} --model for {len(weights)} --weights: give one --model per --weights, one for all, or none")
    names = models if len(models) > 1 else [models[0] if models else None] * len(weights)
    return [load_detector(name, w, False, device) for name, w in zip(names, weights)]


@app.command()
def explain(
    afam: List[int] = typer.Option([], "--afam", min=1, help="AFAM over N fake faces; repeat for several N (papers: 4, 8, 16)."),
    gradcam: Optional[Path] = typer.Option(None, "--gradcam", help="Grad-CAM for this image or video (its top-k most suspicious faces)."),
    model: List[str] = typer.Option([], "--model", help="Model name; repeat once per --weights, or once for all."),
    weights: List[Path] = typer.Option([], "--weights", help="Checkpoint(s); several give AFAM grid rows."),
    untrained: bool = typer.Option(False, "--untrained", help="TESTING ONLY: random weights for each --model."),
    data: Optional[Path] = typer.Option(None, "--data", help="For --afam: face cache folder (manifest.csv) or a folder of face images."),
    label: str = typer.Option("fake", "--label", help="For --afam with a cache: which faces (fake or real)."),
    top_k: int = typer.Option(4, "--top-k", min=1, help="For --gradcam on a video: how many of the most suspicious faces."),
    frames: int = typer.Option(32, "--frames", min=1, help="For --gradcam on a video: frames sampled, evenly spaced."),
    detector: DetectorName = detector_option(),
    detector_model: DetectorModel = detector_model_option(),
    seed: int = typer.Option(7, "--seed", help="For --afam: which faces are drawn."),
    device: str = device_option(),
    out_dir: Path = typer.Option(Path("explain"), "--out", help="Folder for the PNGs."),
    json_output: bool = typer.Option(False, "--json", help="Print what was written as JSON on stdout."),
) -> None:
    """Show where a detector looks (Grad-CAM) or where it looks on average (AFAM)."""
    from ddtool.explain.afam import run_afam
    from ddtool.explain.gradcam import explain_media

    if bool(afam) == (gradcam is not None):  # a usage error (exit 2), as for any missing option
        raise typer.BadParameter("give either --afam N (with --data) or --gradcam IMAGE_OR_VIDEO", param_hint="--afam/--gradcam")
    detectors = _detectors(model, weights, untrained, device)
    if any(d.untrained for d in detectors):
        console.print("[bold white on red] WARNING: untrained model(s): these maps show random weights, not evidence [/]")
    if afam:
        if data is None:
            raise ConfigError("--afam needs --data CACHE_OR_FOLDER of face images")
        summary = run_afam(detectors, data, afam, out_dir, label=label, seed=seed)
    else:
        if len(detectors) != 1:
            raise ConfigError("--gradcam explains one model; pass a single --weights")
        summary = {"files": explain_media(gradcam, detectors[0], out_dir, top_k=top_k, frames=frames, face_detector=detector.value, detector_model=detector_model)}
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
    else:
        for item in summary["files"]:
            console.print(f"wrote {item['file'] if isinstance(item, dict) else item}")
