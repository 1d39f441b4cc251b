"""Model cards: find a checkpoint's card, read it, and keep machine paths out of it (no torch here).

A checkpoint named NAME is NAME.safetensors (or NAME.lgbm.txt) + NAME.json,
the card; an ONNX export of the same weights is NAME.onnx, described in the
card's `onnx` block (models.onnx_scorer). Reading a card needs only json, so
scan can learn what it loads (and which engine runs it) before deciding
whether torch is needed at all; building and filling a torch model is
models.checkpoint. A card may also record its model's spec facts
(`model_spec`, written by `ddtool weights export-onnx`): what scan needs of
the registered ModelSpec without importing the model's code (and torch).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddtool.errors import CheckpointError

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


@dataclass(frozen=True)
class RecordedSpec:
    """The facts of a registered ModelSpec that a card recorded (same attribute names, so it stands in for one)."""

    name: str
    description: str = ""
    paper: str = ""
    input_size: Any = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    gradcam_layer: str | None = None
    input_kind: str = "image"
    heavy_per_face: bool = False


def spec_block(spec: Any) -> dict[str, Any]:
    """What a card records of a ModelSpec (read back by `recorded_spec`)."""
    size = spec.input_size if isinstance(spec.input_size, int) else list(spec.input_size)
    return {"name": spec.name, "description": spec.description, "paper": spec.paper, "input_size": size, "mean": list(spec.mean),
            "std": list(spec.std), "gradcam_layer": spec.gradcam_layer, "input_kind": spec.input_kind,
            "heavy_per_face": bool(getattr(spec, "heavy_per_face", False))}


def recorded_spec(card: dict[str, Any]) -> RecordedSpec | None:
    """The card's `model_spec` as a spec, or None when it records none (ask the registry then)."""
    block = card.get("model_spec")
    if not isinstance(block, dict):
        return None
    if block.get("name") != card.get("model"):
        raise CheckpointError(f"{card.get('_card_path') or 'model card'}: model_spec is of {block.get('name')!r}, the card's model is "
                              f"{card.get('model')!r}; re-record it with `ddtool weights export-onnx`")
    fields = {k: v for k, v in block.items() if k in RecordedSpec.__dataclass_fields__}
    for key in ("mean", "std"):
        if key in fields:
            fields[key] = tuple(float(v) for v in fields[key])
    return RecordedSpec(**fields)
