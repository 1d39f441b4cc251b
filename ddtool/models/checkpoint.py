"""Checkpoints: weights in a safe format plus a JSON model card.

A checkpoint named NAME is two files side by side:
  NAME.safetensors  tensors only (no pickle; a hostile file cannot run code)
  NAME.json         the card: model name and kwargs, sha256 of the weights,
                    ddtool version, config, training data, metrics
Non-torch models (LightGBM) store their own text format under the card's
`weights_file` and implement `save(path)` / `load(path)`.
Loading checks the card, the sha256 and that every tensor fits the model.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import torch.nn as nn

from ddtool import __version__
from ddtool.errors import CheckpointError, ConfigError
from ddtool.io import atomic_path, sha256_file, write_json_atomic  # noqa: F401 (sha256_file re-exported)
from ddtool.models.registry import create_model

CARD_VERSION = 1
WEIGHT_SUFFIXES = (".safetensors", ".lgbm.txt")
# What every "checkpoint not found" message teaches, so a user knows what to pass.
CHECKPOINT_IS = (
    "a checkpoint is NAME.safetensors with its NAME.json card beside it (as `ddtool train` writes them), "
    "or the name of a shipped model listed by `ddtool weights`"
)

# An absolute POSIX or Windows path inside any card string (a value, or a word of a command line).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\-])(?:/|[A-Za-z]:\\)(?:[\w.+@%=,-]+[/\\])*[\w.+@%=,-]+")


MAX_CLIMB = 3  # runs/MODEL/NAME/best.json -> ../../../cache stays relative


def portable_path(path: str, base: str | Path | None = None) -> str:
    """An absolute path as a card may keep it: relative to `base` (the card's folder) when it is at most
    MAX_CLIMB folders up, else its last two parts (a label such as `offline_cache2/cache`; the manifest sha256 identifies
    the data exactly). A card handed to someone else must not expose the training machine's layout."""
    if base is not None:
        try:
            relative = Path(os.path.relpath(path, base)).as_posix()
        except ValueError:  # another drive on Windows
            relative = None
        # A path that climbs to the root is the absolute path in disguise; only nearby ones stay relative.
        if relative is not None and relative.split("/").count("..") <= MAX_CLIMB:
            return relative
    parts = [p for p in re.split(r"[/\\]", path) if p and not p.endswith(":")]
    return "/".join(parts[-2:]) or "."


def strip_machine_paths(value: Any, base: str | Path | None = None) -> Any:
    """`value` (a card, recursively) with every absolute path made portable (see `portable_path`)."""
    if isinstance(value, dict):
        return {k: strip_machine_paths(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strip_machine_paths(v, base) for v in value]
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(lambda m: portable_path(m.group(0), base), value)
    return value


def card_path_for(path: str | Path) -> Path:
    """The card of a checkpoint given either file (or the stem)."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    name = path.name
    for suffix in WEIGHT_SUFFIXES:
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_name(name + ".json")


def save_checkpoint(
    model: Any,
    path: str | Path,
    model_name: str,
    model_kwargs: dict[str, Any] | None = None,
    **card_fields: Any,
) -> Path:
    """Write NAME.safetensors (or the model's own format) and NAME.json atomically.

    `path` is the weights path or the stem; returns the card path. Extra keyword
    arguments (config, training_data, metrics, ...) go into the card.
    """
    card_path = card_path_for(path)
    stem = card_path.with_suffix("")
    if isinstance(model, nn.Module):
        from safetensors.torch import save_model

        weights_path = stem.with_name(stem.name + ".safetensors")
        with atomic_path(weights_path) as tmp:
            save_model(model, str(tmp))
        fmt = "safetensors"
    else:
        weights_path = stem.with_name(stem.name + getattr(model, "weights_suffix", ".lgbm.txt"))
        with atomic_path(weights_path) as tmp:
            model.save(tmp)
        fmt = getattr(model, "weights_format", "lightgbm")
    card = {
        "card_version": CARD_VERSION,
        "model": model_name,
        "model_kwargs": model_kwargs or {},
        "weights_file": weights_path.name,
        "format": fmt,
        "sha256": sha256_file(weights_path),
        "ddtool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **card_fields,
    }
    # Paths are stored relative to the card's folder, never as the training machine's absolute paths.
    write_json_atomic(card_path, strip_machine_paths(card, base=card_path.resolve().parent))
    return card_path


def missing_checkpoint_message(path: str | Path) -> str:
    """Why `path` (whose card does not exist) is no checkpoint: what is missing, and what a checkpoint is."""
    path = Path(path)
    card_path = card_path_for(path)
    if any(path.name.endswith(suffix) for suffix in WEIGHT_SUFFIXES):
        if path.is_file():
            return f"{path} has no model card: {card_path} is missing; {CHECKPOINT_IS}"
        return f"no checkpoint at {path}: neither the weights file nor its card {card_path} exists; {CHECKPOINT_IS}"
    if path.suffix == ".json":
        return f"checkpoint card not found: {path}; {CHECKPOINT_IS}"
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint (for a `ddtool train` run folder use its best.json); {CHECKPOINT_IS}"
    if path.exists():
        return f"{path} is not a checkpoint file; {CHECKPOINT_IS}"
    return f"no checkpoint named {path}: neither {path}.safetensors nor {card_path} exists; {CHECKPOINT_IS}"


def read_card(path: str | Path) -> dict[str, Any]:
    card_path = card_path_for(path)
    if not card_path.is_file():
        raise CheckpointError(missing_checkpoint_message(path))
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"model card {card_path} is not valid JSON: {exc}") from None
    if not isinstance(card, dict) or not isinstance(card.get("model"), str) or not isinstance(card.get("weights_file"), str):
        raise CheckpointError(f"model card {card_path} lacks 'model' or 'weights_file'")
    if Path(card["weights_file"]).name != card["weights_file"]:
        raise CheckpointError(f"model card {card_path}: weights_file must be a file name beside the card, not a path")
    card["_card_path"] = str(card_path)
    return card


def load_checkpoint(path: str | Path, device: str = "cpu", verify: bool = True) -> tuple[Any, dict[str, Any]]:
    """Build the model named in the card and load its weights; return (model, card).

    Raises CheckpointError for a missing, corrupt, tampered or mismatching checkpoint.
    """
    card = read_card(path)
    weights_path = Path(card["_card_path"]).with_name(card["weights_file"])
    if not weights_path.is_file():
        raise CheckpointError(f"weights file not found: {weights_path} (its card {card['_card_path']} names it); {CHECKPOINT_IS}")
    if verify and card.get("sha256") and sha256_file(weights_path) != card["sha256"]:
        raise CheckpointError(f"{weights_path}: sha256 does not match its card (file changed or corrupt)")
    kwargs = card.get("model_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"model card {card['_card_path']}: model_kwargs must be an object")
    try:
        model = create_model(card["model"], **kwargs)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {weights_path.name}: {exc}") from None
    except TypeError as exc:
        raise CheckpointError(f"checkpoint {weights_path.name}: model_kwargs do not fit {card['model']!r}: {exc}") from None
    if isinstance(model, nn.Module):
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        try:
            load_model(model, str(weights_path), strict=True, device=device)
        except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"{weights_path} does not fit model {card['model']!r}: {first}") from None
        model.to(device).eval()
    else:
        try:
            model.load(weights_path)
        except Exception as exc:  # the model's own parser: any failure means a bad file
            raise CheckpointError(f"{weights_path} is not a valid {card['model']} model file: {exc}") from None
    return model, card
