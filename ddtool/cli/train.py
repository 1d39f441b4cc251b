"""`ddtool train`: build a TrainConfig from options (and a YAML file), run the training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ddtool.cli.app import app, comma_list, console
from ddtool.train.config import DEFAULT_PROBE_C


@app.command()
def train(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Registered model name (see `ddtool models`)."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="Face cache folder (with manifest.csv)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file with any of these options; options given here win."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs \\[default: the model's paper value]."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Batch size \\[default: paper value]."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Initial learning rate \\[default: paper value]."),
    lr_decay: Optional[float] = typer.Option(None, "--lr-decay", help="Multiply the lr by this after every epoch \\[default: paper value]."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for weights, split and sampling \\[default: paper value]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto (the GPU when torch sees one, else the CPU), cpu, cuda or cuda:N \\[default: auto]."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes \\[default: 0]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder \\[default: a new folder in runs/ named after the model and the start time]."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out exactly where it stopped."),
    size: Optional[int] = typer.Option(None, "--size", help="Input size in pixels \\[default: the model's]."),
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help="Share of videos held out for validation when the manifest has no val split \\[default: 0.2]."),
    holdout_method: Optional[str] = typer.Option(None, "--holdout-method", help="Leave this manipulation out of training (unseen-method protocol)."),
    did: Optional[bool] = typer.Option(None, "--did", help="Train with the DID objective around --model as backbone."),
    backbone: Optional[str] = typer.Option(None, "--backbone", help="DID backbone when --model did."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="Mixed precision on CUDA \\[default: on]."),
    compile_model: Optional[bool] = typer.Option(None, "--compile", help="torch.compile the training step."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop each epoch after N steps (smoke runs)."),
    synth: Optional[str] = typer.Option(
        None, "--synth", help="Train on the cache's real crops + forgeries made on the fly: comma list from self_blend, face_swap, resample, smooth, double_jpeg (SBI-style)."
    ),
    synth_repeats: Optional[int] = typer.Option(None, "--synth-repeats", min=1, help="With --synth: show each real crop this many times per epoch \\[default: 1]."),
    synth_mix: Optional[float] = typer.Option(
        None, "--synth-mix", min=0.0, max=1.0,
        help="With --synth on a cache of real and fake crops: this share of every batch is (real, forgery) pairs, the rest the cache's own crops.",
    ),
    synth_data: Optional[Path] = typer.Option(
        None, "--synth-data", metavar="CACHE", help="With --synth: make the forgeries from this face cache's real crops (default: the training cache's).",
    ),
    synth_data_limit: Optional[int] = typer.Option(
        None, "--synth-limit", min=1, help="With --synth-data: use at most this many of its real crops (a seeded draw).",
    ),
    probe_c: Optional[float] = typer.Option(
        None, "--probe-c", min=1e-6, help=f"clip_vit_b16: C of the probe's logistic regression (smaller: stronger L2) \\[default: {DEFAULT_PROBE_C:g}].",
    ),
    augment: Optional[str] = typer.Option(
        None, "--augment", help="Comma list from hflip, rotate10, zoom, jpeg, jpeg20, h264, blur, downscale, compress, colour \\[default: the paper's hflip,rotate10]."
    ),
    pretrained: Optional[bool] = typer.Option(
        None, "--pretrained/--no-pretrained", help="Start from ImageNet weights where the model has them (the efficientnet_lite models) \\[default: on]."
    ),
    keep_epochs: Optional[bool] = typer.Option(None, "--keep-epochs", help="Also keep every epoch's checkpoint as epoch_NNN.json (to choose on outside data)."),
) -> None:
    """Train a detector on a face cache; writes checkpoints, metrics and curves to a run folder."""
    from ddtool.train.config import build_config
    from ddtool.train.loop import train as run_training

    resolved = build_config(
        config,
        model=model,
        data=str(data) if data else None,
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        lr_decay=lr_decay,
        seed=seed,
        device=device,
        workers=workers,
        out=str(out) if out else None,
        resume=resume or None,
        size=size,
        val_fraction=val_fraction,
        holdout_method=holdout_method,
        did=did,
        backbone=backbone,
        amp=amp,
        compile=compile_model,
        max_steps=max_steps,
        augment=comma_list(augment),
        synth=comma_list(synth),
        synth_repeats=synth_repeats,
        synth_mix=synth_mix,
        synth_data_limit=synth_data_limit,
        probe_c=probe_c,
        synth_data=str(synth_data) if synth_data else None,
        pretrained=pretrained,
        keep_epochs=keep_epochs,
    )
    result = run_training(resolved)
    if not result.is_main:
        return  # torchrun: rank 0 prints the summary, the other ranks have none
    console.print(
        f"best epoch {result.best_epoch}: val AUC {result.best_val_auc:.4f}; checkpoint {result.best_checkpoint}; run folder {result.run_dir}",
        highlight=False,
    )
