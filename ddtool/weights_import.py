"""`ddtool weights import`: turn someone else's trained weights into a ddtool checkpoint.

Two routes:
- "keras-mesonet": the MesoNet authors' Keras 2.1 HDF5 files
  (DariusAf/MesoNet, weights/*.h5) into ddtool's `variant="keras"` MesoNet.
  The conversion facts (../shared/third_party/README.md): Conv2D kernels are
  (kh, kw, in, out); Flatten runs over (h, w, c) so the first dense layer's
  rows are permuted to (c, h, w); Keras BatchNormalization uses epsilon 1e-3
  (folded into the moving variance, so torch's 1e-5 gives the same output);
  the sigmoid output is P(real) (classes numbered alphabetically, df = 0), so
  the last layer is negated to give ddtool's P(fake). Layers are matched by
  creation order, the numeric suffix of their HDF5 group names.
- "state-dict": a plain tensor dictionary (safetensors, or a torch file that
  loads with `weights_only=True`) for any registered ddtool model. Pickled
  objects are refused; missing/unexpected keys and shape mismatches are
  listed in one line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddtool.errors import CheckpointError, ConfigError

FORMATS = ("keras-mesonet", "state-dict")
KERAS_MODELS = ("meso4", "mesoinception4")
KERAS_BN_EPSILON = 1e-3
TORCH_BN_EPSILON = 1e-5  # nn.BatchNorm2d's default, what the ddtool model uses


def detect_format(path: Path) -> str:
    """The import route a file's bytes point to (HDF5 magic -> keras-mesonet)."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return "keras-mesonet"
    return "state-dict"


# --------------------------------------------------------------------------- Keras MesoNet


def _suffix(name: str) -> int:
    match = re.search(r"_(\d+)$", name)
    return int(match.group(1)) if match else 0


def read_keras_layers(path: Path) -> dict[str, list[dict[str, np.ndarray]]]:
    """conv2d / batch_normalization / dense layers of a Keras HDF5 weights file, each in creation order."""
    try:
        import h5py
    except ImportError:
        raise ConfigError("importing Keras HDF5 weights needs h5py: pip install 'ddtool[keras]' (or pip install h5py)") from None
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CheckpointError(f"{path}: not a readable HDF5 file ({exc}); pass the authors' .h5 weights") from None
    layers: dict[str, list[tuple[int, dict[str, np.ndarray]]]] = {"conv2d": [], "batch_normalization": [], "dense": []}
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle  # a full-model save nests the weights
        for group_name in root:
            kind = re.sub(r"_\d+$", "", group_name)
            if kind not in layers:
                continue
            tensors: dict[str, np.ndarray] = {}

            def collect(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    tensors[name.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(obj)

            root[group_name].visititems(collect)
            if tensors:
                layers[kind].append((_suffix(group_name), tensors))
    return {kind: [t for _, t in sorted(found, key=lambda item: item[0])] for kind, found in layers.items()}


def _conv_names(model: torch.nn.Module, inception: bool) -> list[str]:
    """ddtool conv module names in the order the Keras model creates its Conv2D layers."""
    names = []
    blocks = ("layer1", "layer2") if inception else ()
    for block in blocks:
        names.append(f"{block}.pointwise.0")
        for branch in ("dilated1", "dilated2", "dilated3"):
            names += [f"{block}.{branch}.0", f"{block}.{branch}.2"]
    for block in ("layer1", "layer2", "layer3", "layer4")[len(blocks):]:
        names.append(f"{block}.0")
    return names


def keras_mesonet_state(layers: dict[str, list[dict[str, np.ndarray]]], model: torch.nn.Module, inception: bool) -> dict[str, torch.Tensor]:
    """The ddtool keras-variant state dict equivalent to the Keras layers."""
    convs, norms, dense = layers["conv2d"], layers["batch_normalization"], layers["dense"]
    conv_names = _conv_names(model, inception)
    expected = (len(conv_names), 4, 2)
    if (len(convs), len(norms), len(dense)) != expected:
        raise CheckpointError(
            f"the file holds {len(convs)} conv, {len(norms)} batch-norm and {len(dense)} dense layers; "
            f"{'MesoInception4' if inception else 'Meso4'} has {expected[0]}, 4 and 2: pass the matching --model"
        )
    state: dict[str, torch.Tensor] = {}
    for name, layer in zip(conv_names, convs):
        state[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1)))
        state[f"{name}.bias"] = torch.from_numpy(layer["bias"])
    for i, layer in enumerate(norms):
        state[f"norms.{i}.weight"] = torch.from_numpy(layer["gamma"])
        state[f"norms.{i}.bias"] = torch.from_numpy(layer["beta"])
        state[f"norms.{i}.running_mean"] = torch.from_numpy(layer["moving_mean"])
        # (x - m) / sqrt(v + 1e-3) == (x - m) / sqrt((v + 1e-3 - 1e-5) + 1e-5)
        state[f"norms.{i}.running_var"] = torch.from_numpy(layer["moving_variance"] + (KERAS_BN_EPSILON - TORCH_BN_EPSILON))
        state[f"norms.{i}.num_batches_tracked"] = torch.tensor(0)
    hidden, out = dense
    features = model.num_features
    flat = hidden["kernel"].shape[0]
    side = int(round((flat / features) ** 0.5))
    if side * side * features != flat:
        raise CheckpointError(f"first dense layer has {flat} inputs, not {features} x side x side; not a MesoNet file")
    # Keras rows run over (h, w, c); torch's Flatten over (c, h, w).
    kernel = hidden["kernel"].reshape(side, side, features, -1).transpose(2, 0, 1, 3).reshape(flat, -1)
    state["head.2.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.T))
    state["head.2.bias"] = torch.from_numpy(hidden["bias"])
    # Keras' sigmoid gives P(real); negating the logit gives P(fake), ddtool's index 1.
    state["head.5.weight"] = torch.from_numpy(np.ascontiguousarray(-out["kernel"].T))
    state["head.5.bias"] = torch.from_numpy(-out["bias"])
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def build_keras_mesonet(path: Path, model_name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """(model with the converted weights loaded, model_kwargs) from an authors' .h5 file."""
    from ddtool.models import create_model

    if model_name not in KERAS_MODELS:
        raise ConfigError(f"--model {model_name!r}: Keras MesoNet files hold one of {', '.join(KERAS_MODELS)}")
    kwargs = {"variant": "keras", "input_size": 256}
    model = create_model(model_name, **kwargs)
    state = keras_mesonet_state(read_keras_layers(path), model, inception=model_name == "mesoinception4")
    _load_strict(model, state, path, model_name)
    return model.eval(), kwargs


# --------------------------------------------------------------------------- plain state dicts


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file or a plain torch state dict (no pickled objects)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch's unpickler raises many kinds; all mean "not a plain state dict"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused, not a plain state dict loadable with weights_only=True ({first[:200]}); "
            "re-save it as torch.save(model.state_dict(), path) or as safetensors"
        ) from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]  # the common {"state_dict": ...} wrapper
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"{path}: holds {type(loaded).__name__}, not a dict of tensors; pass a state dict")
    return loaded


def strip_prefix(state: dict[str, torch.Tensor], keys: set[str]) -> dict[str, torch.Tensor]:
    """Drop a wrapper prefix ("module." of DataParallel, "model.") when that makes the keys fit."""
    for prefix in ("module.", "model."):
        if state and all(k.startswith(prefix) for k in state) and not (set(state) & keys):
            return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _load_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, model_name: str) -> None:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        def few(items: list[str]) -> str:
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")

        parts = [f"missing keys: {few(missing)}" if missing else "", f"unexpected keys: {few(unexpected)}" if unexpected else "",
                 f"shape mismatches: {few(shapes)}" if shapes else ""]
        raise CheckpointError(f"{path} does not fit model {model_name!r}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=True)


def build_from_state_dict(path: Path, model_name: str, model_kwargs: dict[str, Any] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    from ddtool.models import create_model

    kwargs = dict(model_kwargs or {})
    try:
        model = create_model(model_name, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"--model-kwargs do not fit {model_name!r}: {exc}") from None
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"model {model_name!r} is not a torch model; a state dict cannot be imported into it")
    state = strip_prefix(read_state_dict(path), set(model.state_dict()))
    _load_strict(model, state, path, model_name)
    return model.eval(), kwargs


# --------------------------------------------------------------------------- the command's work


def import_weights(
    source: str | Path,
    out: str | Path,
    model_name: str,
    fmt: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    card_fields: dict[str, Any] | None = None,
) -> Path:
    """Convert `source` and write OUT.safetensors + OUT.json; return the card path.

    `card_fields` (origin, licence, training data, input, ...) go into the card
    as given; the source file's sha256 is always recorded under `origin`.
    """
    from ddtool.io import sha256_file
    from ddtool.models import get_spec, list_models
    from ddtool.models.checkpoint import save_checkpoint

    source = Path(source)
    if not source.is_file():
        raise ConfigError(f"{source}: no such file; pass the weights file to import")
    if model_name not in list_models():
        raise ConfigError(f"--model {model_name!r} is not a registered model; see `ddtool models`")
    fmt = fmt or detect_format(source)
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == "keras-mesonet":
        if model_kwargs:
            raise ConfigError("--model-kwargs does not apply to keras-mesonet (the authors' models are fixed: variant keras, 256 px)")
        model, kwargs = build_keras_mesonet(source, model_name)
    else:
        model, kwargs = build_from_state_dict(source, model_name, model_kwargs)
    spec = get_spec(model_name)
    fields = dict(card_fields or {})
    origin = dict(fields.pop("origin", None) or {})
    origin.update(file=origin.get("file") or source.name, source_sha256=sha256_file(source), format=fmt)
    size = kwargs.get("input_size", spec.input_size)
    fields.setdefault("input", {"kind": "image", "size": size, "mean": list(spec.mean), "std": list(spec.std), "crop": "box", "margin": 0.0})
    fields.setdefault("params", sum(p.numel() for p in model.parameters()))
    out = Path(out)
    card_path = save_checkpoint(model, out, model_name, kwargs, origin=origin, **fields)
    weights_path = card_path.with_name(json.loads(card_path.read_text(encoding="utf-8"))["weights_file"])
    os.chmod(weights_path, 0o644)  # a shipped file is read by everyone, like the card
    return card_path
