"""The training loop behind `ddtool train`: one function, `train(config) -> RunResult`.

It trains any registered detector on a face cache with the model's paper
defaults, selects the best epoch on validation AUC (never on test rows), and
leaves a run folder (ddtool.train.run_folder: best/last checkpoints, metrics,
curves, the resume state). Its other parts: ddtool.train.distributed (torchrun
ranks, device, seeding), ddtool.train.progress (stderr), ddtool.train.features
(LightGBM, which fits in one call instead of epochs).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ddtool.data.dataset import (
    ArrayDataset,
    EpochSampler,
    FaceCropDataset,
    PairSampler,
    SplitResult,
    crop_margin,
    load_video_arrays,
    noise_inputs_file,
    read_manifest,
    split_train_val,
)
from ddtool.errors import ConfigError
from ddtool.models.checkpoint import save_checkpoint
from ddtool.models.logits import fake_probability
from ddtool.models.registry import HasParameterGroups, ModelSpec, TrainsItself, create_model, get_spec
from ddtool.train.augment import Compose
from ddtool.train.config import TrainConfig, resolve_defaults, save_config
from ddtool.train.distributed import init_distributed, pick_device, seed_everything
from ddtool.train.features import train_features
from ddtool.train.progress import EpochProgress, report_epoch
from ddtool.train.run_folder import (  # noqa: F401 (STATE_FILE, load_state, RunResult: the loop's public names)
    CONFIG_FILE,
    STATE_FILE,
    STATE_FORMAT,
    RunResult,
    load_state,
    prepare_config,
    prepare_run_dir,
    rng_state,
    save_state,
    set_rng_state,
    training_data_record,
    write_curves,
    write_metrics,
)

EpochCallback = Callable[[int, dict], None]


@dataclass
class _ModelPlan:
    """Which model to build and how to feed it, after resolving --did/--backbone."""

    name: str
    kwargs: dict[str, Any]
    input_spec: ModelSpec  # input kind, size and normalisation
    defaults_spec: ModelSpec  # paper training defaults


def _plan_model(config: TrainConfig) -> tuple[str, ModelSpec, ModelSpec]:
    if config.did or config.model == "did":
        backbone = config.backbone or (config.model if config.model != "did" else None)
        if not backbone:
            raise ConfigError("DID training needs a backbone: --model did --backbone NAME, or --model NAME --did")
        backbone_spec = get_spec(backbone)
        if backbone_spec.input_kind != "image":
            raise ConfigError(f"DID wraps image backbones; {backbone!r} takes {backbone_spec.input_kind} input")
        return "did", backbone_spec, get_spec("did")
    spec = get_spec(config.model)
    if config.backbone:
        raise ConfigError("--backbone only applies to DID training (--did or --model did)")
    return config.model, spec, spec


# --------------------------------------------------------------------------- data


def _input_size(config: TrainConfig, spec: ModelSpec):
    return config.size if config.size else spec.input_size


def _image_datasets(config: TrainConfig, spec: ModelSpec, split: SplitResult):
    size = _input_size(config, spec)
    augment = Compose(config.augment) if config.augment else None
    if config.synth:
        from ddtool.data.synth_dataset import SynthesisDataset

        reals_cache, reals = config.data, split.train
        if config.synth_data:  # another cache's real faces are self-blended (all its splits but test)
            from ddtool.data.synth_dataset import synth_source_reals

            reals_cache, reals = config.synth_data, synth_source_reals(config.synth_data, config.seed, config.synth_data_limit)
        train_set = SynthesisDataset(
            reals_cache, reals, size, spec.mean, spec.std, config.synth, config.seed, augment=augment, repeats=config.synth_repeats
        )
        if config.synth_mix is not None:
            from ddtool.data.mixed_dataset import MixedDataset

            labelled = FaceCropDataset(config.data, split.train, size, spec.mean, spec.std, augment=augment)
            train_set = MixedDataset(labelled, train_set)
        if split.val["label"].nunique() == 2:
            # the cache's own forgeries select the model: a check on fakes it never trained on
            val_set = FaceCropDataset(config.data, split.val, size, spec.mean, spec.std, augment=None)
        else:  # a real-only cache (SBI's setting): fixed synthetic fakes of the val reals
            val_set = SynthesisDataset(config.data, split.val, size, spec.mean, spec.std, config.synth, config.seed + 1, fixed_epoch=0)
        return train_set, val_set
    train_set = FaceCropDataset(config.data, split.train, size, spec.mean, spec.std, augment=augment)
    val_set = FaceCropDataset(config.data, split.val, size, spec.mean, spec.std, augment=None)
    return train_set, val_set


def _array_datasets(config: TrainConfig, spec: ModelSpec):
    videos, inputs = load_video_arrays(config.data, spec.input_kind)
    split = split_train_val(videos, config.val_fraction, config.seed, config.holdout_method)
    row_of = {vid: i for i, vid in enumerate(videos["video_id"])}
    train_idx = [row_of[v] for v in split.train["video_id"]]
    val_idx = [row_of[v] for v in split.val["video_id"]]
    train_set = ArrayDataset(inputs[train_idx], split.train["label"].to_numpy(), split.train["domain"].to_numpy())
    val_set = ArrayDataset(inputs[val_idx], split.val["label"].to_numpy(), split.val["domain"].to_numpy())
    return split, train_set, val_set


# --------------------------------------------------------------------------- model step


class _Objective(nn.Module):
    """Forward = the training objective, so DDP's gradient hooks see the whole step.

    Uses the model's own `training_losses` (DID) when it has one, plain
    cross-entropy on the logits otherwise.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, domain: torch.Tensor, progress: float):
        if isinstance(self.model, TrainsItself):
            out = self.model.training_losses(x, y, domain, progress)
            return out["loss"], out["logits"]
        logits = self.model(x)
        return F.cross_entropy(logits.float(), y), logits


def build_model(name: str, kwargs: dict[str, Any], size: int | None, pretrained: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Build the model; with --size, tell models that bake the size into their layers (MesoNet's dense head).

    Returns the kwargs actually used, which the checkpoint card records so the
    model can be rebuilt for evaluation. `pretrained` (ImageNet start) is left
    out of them: a trained checkpoint's own weights replace it, so rebuilding
    for evaluation need not load ImageNet weights again.
    """
    build_extra = {"pretrained": True} if pretrained and get_spec(name).pretrained and "pretrained" not in kwargs else {}
    if size and "input_size" not in kwargs:
        try:
            return create_model(name, **kwargs, **build_extra, input_size=size), {**kwargs, "input_size": size}
        except TypeError as exc:
            if "input_size" not in str(exc):
                raise ConfigError(f"model_kwargs do not fit {name!r}: {exc}") from None
    try:
        return create_model(name, **kwargs, **build_extra), kwargs
    except TypeError as exc:
        raise ConfigError(f"model_kwargs do not fit {name!r}: {exc}") from None


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # Models that want per-part learning rates (DID: heads at 10x the backbone) say so themselves.
    params = model.parameter_groups(config.lr) if isinstance(model, HasParameterGroups) else [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay)


def make_train_loader(train_set, sampler, batch_size: int, workers: int, pin_memory: bool) -> DataLoader:
    """The training DataLoader.

    A dataset with per-epoch state (`set_epoch`: --synth's fresh forgeries) lives
    in each worker process as a copy; persistent workers would keep the copy made
    in epoch 1 and repeat its forgeries every epoch. Such a dataset gets fresh
    workers each epoch, which copy it after `set_epoch`.
    """
    persistent = workers > 0 and not hasattr(train_set, "set_epoch")
    return DataLoader(
        train_set, batch_size=batch_size, sampler=sampler, drop_last=len(sampler) > batch_size,
        num_workers=workers, pin_memory=pin_memory, persistent_workers=persistent,
    )


def _check_model_accepts_input(model: nn.Module, sample: torch.Tensor, name: str, device: torch.device) -> None:
    """One eval-mode forward on two samples, so a size the model cannot take fails early and clearly."""
    model.eval()
    try:
        with torch.no_grad():
            logits = model(sample.to(device))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ConfigError(f"model {name!r} cannot take input of shape {tuple(sample.shape[1:])}: {first}; use its own --size") from None
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ConfigError(f"model {name!r} returned shape {tuple(logits.shape)}; the training loop needs (N, 2) logits")


@torch.no_grad()
def _validate(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool, channels_last: bool) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    model.eval()
    losses, scores, labels = [], [], []
    for x, y, _domain, _index in loader:
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=amp):
            logits = model(x)
        logits = logits.float()
        losses.append(F.cross_entropy(logits, y, reduction="sum").item())
        scores.append(fake_probability(logits).cpu())
        labels.append(y.cpu())
    score = torch.cat(scores).numpy()
    label = torch.cat(labels).numpy()
    return {
        "val_loss": float(sum(losses) / len(label)),
        "val_auc": float(roc_auc_score(label, score)),
        "val_acc": float(((score >= 0.5).astype(np.int64) == label).mean()),
    }


# --------------------------------------------------------------------------- public entry


def train(config: TrainConfig, on_epoch_end: EpochCallback | None = None) -> RunResult:
    """Train `config.model` on the face cache `config.data`; return where the results are.

    `on_epoch_end(epoch, row)` is called after each epoch's files are written
    (epoch is 1-based; row is that epoch's metrics).
    """
    config = prepare_config(config)
    model_name, input_spec, defaults_spec = _plan_model(config)
    if config.synth and input_spec.input_kind != "image":
        raise ConfigError(f"--synth makes forged face crops, so it needs an image model; {model_name!r} takes {input_spec.input_kind} input")
    if input_spec.input_kind == "features":
        return train_features(config, input_spec, prepare_run_dir(config, model_name))
    if input_spec.family == "clip_vit":  # a frozen tower: encode once, fit the linear probe
        from ddtool.train.probe import train_probe

        return train_probe(config, input_spec, prepare_run_dir(config, model_name))
    config = resolve_defaults(config, defaults_spec.train)

    dist_info = init_distributed(config.device)
    device = pick_device(config.device, dist_info)
    run_dir = prepare_run_dir(config, model_name)
    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(dataclasses.replace(config, out=str(run_dir), resume=False), run_dir / CONFIG_FILE)

    # ---- data
    inputs_file = None
    if input_spec.input_kind == "image":
        split = split_train_val(read_manifest(config.data), config.val_fraction, config.seed, config.holdout_method, need_fakes=not config.synth)
        train_set, val_set = _image_datasets(config, input_spec, split)
    else:
        split, train_set, val_set = _array_datasets(config, input_spec)
        inputs_file = noise_inputs_file(config.data, input_spec.input_kind)
    training_data = training_data_record(config, split, inputs_file)
    if config.synth and config.synth_mix is not None:  # the cache's crops and (real, forgery) pairs in every batch
        from ddtool.data.mixed_dataset import MixedSampler

        training_data["synth"] = {**train_set.describe(), "synth_mix": config.synth_mix,
                                  "self_blended_from": "the training cache" if not config.synth_data else Path(config.synth_data).name}
        sampler = MixedSampler(train_set, config.batch_size, config.synth_mix, config.seed, dist_info.rank, dist_info.world_size)
    elif config.synth:  # what the model really saw; whole (real, forgery) pairs per batch, as SBI trains
        training_data["synth"] = train_set.describe()
        training_data["train"] = {**training_data["train"], "real": len(train_set) // 2, "fake": len(train_set) // 2,
                                  "crops": len(train_set), "videos": int(train_set.reals["video_id"].nunique()),
                                  "fake_made_on_the_fly": True}
        sampler = PairSampler(len(train_set), config.seed, dist_info.rank, dist_info.world_size)
    else:
        sampler = EpochSampler(train_set.labels, config.seed, config.balance == "weighted", dist_info.rank, dist_info.world_size)
    on_cuda = device.type == "cuda"
    loader_args = dict(num_workers=config.workers, pin_memory=on_cuda, persistent_workers=config.workers > 0)
    train_loader = make_train_loader(train_set, sampler, config.batch_size, config.workers, on_cuda)
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False, **loader_args)

    # ---- model (the seed makes the initial weights the paper's "same initialisation")
    seed_everything(config.seed)
    model_kwargs = dict(config.model_kwargs)
    if model_name == "did":
        model_kwargs = {"backbone": input_spec.name, "num_domains": len(split.domains), **model_kwargs}
    model, model_kwargs = build_model(model_name, model_kwargs, config.size, pretrained=config.pretrained and not config.resume)
    model.to(device)
    channels_last = on_cuda and input_spec.input_kind == "image"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    _check_model_accepts_input(model, torch.stack([train_set[0][0], val_set[0][0]]), model_name, device)

    amp = bool(config.amp) and on_cuda
    optimizer = _make_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    start_epoch, history, best_auc, best_epoch = 0, [], -math.inf, 0
    if config.resume:
        state = load_state(run_dir)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, history = int(state["epoch"]), list(state["history"])
        best_auc, best_epoch = float(state["best_auc"]), int(state["best_epoch"])
        set_rng_state(state["rng"])
        if start_epoch >= config.epochs:
            raise ConfigError(f"{run_dir} already finished {start_epoch} epoch(s); give --epochs larger than that to train further")

    objective: nn.Module = _Objective(model)
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        objective = DistributedDataParallel(objective, device_ids=[device.index] if on_cuda else None)
    step_fn = torch.compile(objective) if config.compile else objective

    card_common = {
        "config": dataclasses.replace(config, out=str(run_dir), resume=False).to_dict(),
        "training_data": training_data,
        "input": {"kind": input_spec.input_kind, "size": _input_size(config, input_spec), "mean": list(input_spec.mean), "std": list(input_spec.std)},
    }
    margin = crop_margin(config.data)
    if margin is not None:  # scan and explain cut faces with the same margin
        card_common["input"]["margin"] = margin
    best_card = run_dir / "best.json"
    last_card = run_dir / "last.json"
    steps_per_epoch = len(train_loader) if config.max_steps is None else min(len(train_loader), config.max_steps)

    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)  # fresh forgeries each epoch (--synth)
        model.train()
        lr = optimizer.param_groups[0]["lr"]
        loss_sum, seen, started = 0.0, 0, time.perf_counter()
        with EpochProgress(f"epoch {epoch + 1}/{config.epochs}", steps_per_epoch, enabled=dist_info.is_main) as progress:
            for step, (x, y, domain, _index) in enumerate(train_loader):
                if step >= steps_per_epoch:
                    break
                x = x.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = y.to(device, non_blocking=True)
                domain = domain.to(device, non_blocking=True)
                fraction = (epoch + step / steps_per_epoch) / config.epochs
                with torch.autocast(device.type, enabled=amp):
                    loss, _logits = step_fn(x, y, domain, fraction)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                loss_sum += float(loss.detach()) * len(y)
                seen += len(y)
                progress.advance(seen / max(time.perf_counter() - started, 1e-9), loss_sum / seen)
        train_seconds = time.perf_counter() - started
        scheduler.step()

        if dist_info.is_main:
            val = _validate(model, val_loader, device, amp, channels_last)
            row = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(seen, 1),
                **val,
                "lr": float(lr),
                "images_per_s": seen * dist_info.world_size / max(train_seconds, 1e-9),
                "seconds": time.perf_counter() - started,
            }
            history.append(row)
            metrics = {k: row[k] for k in ("epoch", "val_auc", "val_acc", "val_loss", "train_loss")}
            if row["val_auc"] > best_auc:
                best_auc, best_epoch = row["val_auc"], epoch + 1
                save_checkpoint(model, best_card, model_name, model_kwargs, metrics=metrics, selected_on="val_auc", **card_common)
            save_checkpoint(model, last_card, model_name, model_kwargs, metrics=metrics, **card_common)
            if config.keep_epochs:
                save_checkpoint(model, run_dir / f"epoch_{epoch + 1:03d}.json", model_name, model_kwargs, metrics=metrics, **card_common)
            write_metrics(run_dir, history)
            write_curves(run_dir, history, f"{model_name} on {Path(config.data).name}")
            save_state(
                run_dir,
                {
                    "format": STATE_FORMAT,
                    "epoch": epoch + 1,
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if amp else {},
                    "rng": rng_state(),
                    "best_auc": best_auc,
                    "best_epoch": best_epoch,
                    "history": history,
                },
            )
            report_epoch(row)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
        if dist_info.enabled:
            torch.distributed.barrier()

    return RunResult(run_dir, best_card, last_card, best_epoch, best_auc, history, config, is_main=dist_info.is_main)
