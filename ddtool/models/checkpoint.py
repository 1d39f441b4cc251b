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

import time
from pathlib import Path
from typing import Any

import torch.nn as nn

from ddtool import __version__
from ddtool.errors import CheckpointError, ConfigError
from ddtool.io import atomic_path, sha256_file, write_json_atomic  # noqa: F401 (sha256_file re-exported)
from ddtool.models.cards import (  # noqa: F401 (re-exported: the old import path of the card functions)
    CHECKPOINT_IS, MAX_CLIMB, WEIGHT_SUFFIXES, card_path_for, missing_checkpoint_message, portable_path, read_card, strip_machine_paths,
)
from ddtool.models.registry import create_model

CARD_VERSION = 1


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
