"""Training configuration: one dataclass, filled from paper defaults, a YAML file and the command line.

Precedence, lowest first: the model's paper defaults (`ModelSpec.train`), the
YAML config file, explicit keyword overrides (the command line). The resolved
config is what the run folder's config.yaml records, so a run can be repeated
from that file alone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ddtool.errors import ConfigError

# The CLIP probe's L2 strength (inverse), chosen by the cross-source rule (docs/benchmark-results/cross-source).
DEFAULT_PROBE_C = 0.002

DEVICES = ("auto", "cpu", "cuda")
BALANCE_MODES = ("weighted", "none")
OPTIMIZERS = ("adam", "adamw", "sgd")
AUGMENTS = ("hflip", "rotate10", "zoom", "jpeg", "jpeg20", "h264", "blur", "downscale", "compress", "colour")  # names in ddtool.train.augment.AUGMENTATIONS


@dataclass
class TrainConfig:
    """Everything a training run needs. `None` means "take the model's paper default"."""

    model: str
    data: str
    out: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_decay: float | None = None
    weight_decay: float | None = None
    optimizer: str | None = None
    seed: int | None = None
    augment: list[str] | None = None
    synth: list[str] | None = None  # train on real crops + forgeries made on the fly (ddtool.data.synth_dataset)
    synth_repeats: int = 1  # with synth: each real shown this many times per epoch, each with another forgery
    # With synth and a cache of real and fake crops: this share of every batch is (real, forgery) pairs, the rest
    # the cache's own crops (ddtool.data.mixed_dataset); None: the cache's reals and their forgeries only.
    synth_mix: float | None = None
    synth_data: str | None = None  # with synth: self-blend the real crops of this face cache (default: the training cache's)
    synth_data_limit: int | None = None  # with synth_data: use at most this many of its real crops (a seeded draw)
    probe_c: float | None = None  # CLIP probe (clip_vit_b16): C of its logistic regression (DEFAULT_PROBE_C when None)
    size: int | None = None
    device: str = "auto"
    workers: int = 0
    val_fraction: float = 0.2
    holdout_method: str | None = None
    did: bool = False
    backbone: str | None = None
    balance: str = "weighted"
    amp: bool = True
    compile: bool = False
    max_steps: int | None = None
    resume: bool = False
    pretrained: bool = True  # start from ImageNet weights where the model has them (ModelSpec.pretrained)
    keep_epochs: bool = False  # also keep every epoch's checkpoint (epoch_NNN.json), for selection on outside data
    model_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict of TrainConfig keys (unknown keys are an error)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must be a mapping of option: value, got {type(values).__name__}")
    # The CLI spells it --batch; accept the same spelling in the file.
    if "batch" in values and "batch_size" not in values:
        values["batch_size"] = values.pop("batch")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    _check_keys(values, f"config file {path}")
    return values


def _check_keys(values: dict[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(config_keys()))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(config_keys())}")


def build_config(config_file: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Merge a config file with overrides (None values do not override) and validate."""
    values: dict[str, Any] = load_config_file(config_file) if config_file else {}
    _check_keys(overrides, "options")
    values.update({k: v for k, v in overrides.items() if v is not None})
    for required in ("model", "data"):
        if not values.get(required):
            if values.get("resume"):
                values[required] = ""  # taken from the run folder's config.yaml
                continue
            raise ConfigError(f"'{required}' is required (give --{required} or set it in the config file)")
    try:
        config = TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid training config: {exc}") from None
    validate(config)
    return config


def _positive(name: str, value: Any, kind: type) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value <= 0:
        raise ConfigError(f"{name} must be a positive {kind.__name__}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Check types and ranges; raise ConfigError naming the bad key and what is allowed."""
    for name in ("epochs", "batch_size", "size", "max_steps"):
        _positive(name, getattr(config, name), int)
    for name in ("lr",):
        _positive(name, getattr(config, name), float)
    if config.seed is not None and (isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0):
        raise ConfigError(f"seed must be a non-negative integer, got {config.seed!r}")
    if config.lr_decay is not None and not (isinstance(config.lr_decay, (int, float)) and 0 < config.lr_decay <= 1):
        raise ConfigError(f"lr_decay must be in (0, 1] (1 = constant lr), got {config.lr_decay!r}")
    if config.weight_decay is not None and not (isinstance(config.weight_decay, (int, float)) and config.weight_decay >= 0):
        raise ConfigError(f"weight_decay must be >= 0, got {config.weight_decay!r}")
    if not isinstance(config.workers, int) or isinstance(config.workers, bool) or config.workers < 0:
        raise ConfigError(f"workers must be an integer >= 0, got {config.workers!r}")
    if not isinstance(config.val_fraction, (int, float)) or not 0 < config.val_fraction < 1:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {config.val_fraction!r}")
    device = str(config.device)
    if device not in DEVICES and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {config.device!r}")
    if config.optimizer is not None and config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    if config.balance not in BALANCE_MODES:
        raise ConfigError(f"balance must be one of {', '.join(BALANCE_MODES)}, got {config.balance!r}")
    if config.augment is not None:
        if isinstance(config.augment, str) or not isinstance(config.augment, (list, tuple)):
            raise ConfigError(f"augment must be a list drawn from {', '.join(AUGMENTS)}, got {config.augment!r}")
        bad = [a for a in config.augment if a not in AUGMENTS]
        if bad:
            raise ConfigError(f"unknown augmentation(s) {', '.join(map(str, bad))}; available: {', '.join(AUGMENTS)}")
        config.augment = list(config.augment)
    if config.synth is not None:
        from ddtool.data.synth_dataset import check_methods

        if isinstance(config.synth, str) or not isinstance(config.synth, (list, tuple)):
            raise ConfigError(f"synth must be a list of forgery methods, got {config.synth!r}")
        config.synth = check_methods(config.synth)
        _positive("synth_repeats", config.synth_repeats, int)
        if config.did or config.model == "did":
            raise ConfigError("--synth and DID do not combine: DID's domain head needs the cache's fixed forgery domains")
        if config.synth_mix is not None and not 0.0 < float(config.synth_mix) < 1.0:
            raise ConfigError(f"synth_mix {config.synth_mix} must be between 0 and 1 (the share of each batch that is forgery pairs)")
        if config.synth_data is not None and not (Path(config.synth_data) / "manifest.csv").is_file():
            raise ConfigError(f"synth_data {config.synth_data} is not a face cache (no manifest.csv); build it with `ddtool extract`")
        if config.synth_data_limit is not None:
            _positive("synth_data_limit", config.synth_data_limit, int)
    elif config.synth_mix is not None or config.synth_data is not None or config.synth_data_limit is not None:
        raise ConfigError("synth_mix, synth_data and synth_data_limit need --synth (the forgery methods to make)")
    if not isinstance(config.model_kwargs, dict):
        raise ConfigError(f"model_kwargs must be a mapping, got {config.model_kwargs!r}")


def resolve_defaults(config: TrainConfig, defaults: Any) -> TrainConfig:
    """Fill every None hyper-parameter from the model's TrainDefaults (paper values)."""
    filled = dataclasses.replace(config)
    for name, default_name in (
        ("epochs", "epochs"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("lr_decay", "lr_decay"),
        ("weight_decay", "weight_decay"),
        ("optimizer", "optimizer"),
        ("seed", "seed"),
    ):
        if getattr(filled, name) is None:
            setattr(filled, name, getattr(defaults, default_name))
    if filled.augment is None:
        filled.augment = list(defaults.augment)
    validate(filled)
    return filled


def save_config(config: TrainConfig, path: str | Path) -> None:
    from ddtool.io import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
