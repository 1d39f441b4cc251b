"""One loader for every model format a card names: which engine scores a checkpoint, and its scorer.

    open_model(card_path, device="auto", threads=None) -> LoadedModel

Every scorer has one method, `fake_probability(images) -> P(fake)`, on
normalised (N, 3, H, W) float32 numpy faces, so scan feeds them all the same
way. In order of preference:

1. a CLIP probe checkpoint (models.clip_probe_scorer): the encoder file on
   onnxruntime, the probe in numpy;
2. a checkpoint whose card has an ONNX export of these weights
   (models.onnx_scorer, `ddtool weights export-onnx NAME`): onnxruntime;
3. anything else, or a device onnxruntime cannot drive here: the torch
   network (models.torch_scorer), with `note` saying why in one line.

Only the third imports torch. Grad-CAM needs the torch network whatever
scores: `LoadedModel.network()` builds it from the checkpoint on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddtool.errors import CheckpointError, ConfigError
from ddtool.io import sha256_file
from ddtool.models.cards import CHECKPOINT_IS, read_card, recorded_spec

ENGINES = ("auto", "onnxruntime", "torch")


@dataclass
class LoadedModel:
    scorer: Any  # fake_probability(normalised (N, 3, H, W) float32) -> (N,) float32 P(fake)
    card: dict[str, Any]  # the card without the reader's private keys
    card_path: Path
    weights_path: Path  # the checkpoint's weights (the file its card's sha256 names), whatever engine scores
    spec: Any  # the registered models.ModelSpec, or the facts an ONNX export recorded of it (onnx_scorer.RecordedSpec)
    engine: str  # "onnxruntime" | "torch"
    device: str  # where it scores, as --device spells it (cpu, cuda:0)
    note: str | None = None  # why torch scores a checkpoint onnxruntime could not (one clause), else None
    engine_file: Path | None = None  # the file the engine runs when it is not weights_path (the ONNX export)
    _network: Any = field(default=None, repr=False)

    def network(self):
        """The torch network (Grad-CAM, AFAM): the scorer's own under torch, else built from the checkpoint once."""
        model = getattr(self.scorer, "model", None)
        if model is not None:
            return model
        if self._network is None:
            from ddtool.models.checkpoint import load_checkpoint

            self._network = load_checkpoint(self.card_path, device=_torch_device(self.device))[0].eval()
        return self._network


def open_model(path: str | Path, device: str = "auto", threads: int | None = None, engine: str = "auto") -> LoadedModel:
    """The checkpoint (card or weights path) ready to score; see the module docstring for which engine.

    `engine` "onnxruntime" or "torch" forces one (benchmarks, tests); a forced onnxruntime that cannot run is a
    CheckpointError. `threads`: the engine's intra-op threads (None: its default).
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r}: use one of {', '.join(ENGINES)}")
    card = read_card(path)
    card_path = Path(card["_card_path"])
    weights_path = card_path.with_name(card["weights_file"])
    why_not = None
    if engine != "torch":
        providers, why_not = _providers(device)
        if providers is not None:
            loaded, why_not = _open_on_onnxruntime(card, card_path, weights_path, providers, threads)
            if loaded is not None:
                return loaded
        if engine == "onnxruntime":
            raise CheckpointError(f"{card_path.stem}: cannot score on onnxruntime: {why_not}")
    return _open_on_torch(path, device, threads, note=why_not)


def _providers(device: str) -> tuple[list | None, str | None]:
    from ddtool.device import onnx_providers
    from ddtool.onnx_session import available_providers

    try:
        available = available_providers()
    except CheckpointError as exc:  # onnxruntime not installed: torch scores everything
        return None, str(exc)
    providers = onnx_providers(device, available)
    if providers is None:
        return None, f"onnxruntime here cannot run on --device {device} (it offers {', '.join(available)}; onnxruntime-gpu adds CUDA)"
    return providers, None


def _open_on_onnxruntime(card, card_path: Path, weights_path: Path, providers, threads) -> tuple[LoadedModel | None, str | None]:
    from ddtool.models.clip_probe_scorer import ClipProbeScorer, is_clip_probe
    from ddtool.models.onnx_scorer import ONNX_BLOCK, OnnxScorer, onnx_status

    public = {k: v for k, v in card.items() if not k.startswith("_")}
    if is_clip_probe(card):
        _check_weights(card, weights_path)
        scorer = ClipProbeScorer(weights_path, public, threads=threads, providers=providers)
        return LoadedModel(scorer, public, card_path, weights_path, spec_of(card), "onnxruntime", scorer.device), None
    onnx_path, why_not = onnx_status(card)
    if onnx_path is None:
        return None, why_not
    scorer = OnnxScorer(onnx_path, card[ONNX_BLOCK], providers, threads)
    return LoadedModel(scorer, public, card_path, weights_path, spec_of(card), "onnxruntime", scorer.device, engine_file=onnx_path), None


def spec_of(card: dict[str, Any]):
    """The spec the card recorded (no model code, no torch), else the registered one (imports the model families)."""
    recorded = recorded_spec(card)
    if recorded is not None:
        return recorded
    from ddtool.models.registry import get_spec

    return get_spec(card["model"])


def _open_on_torch(path, device: str, threads: int | None, note: str | None) -> LoadedModel:
    from ddtool.device import resolve_device
    from ddtool.models.checkpoint import load_checkpoint
    from ddtool.models.registry import get_spec
    from ddtool.models.torch_scorer import TorchScorer

    torch_device = str(resolve_device(device))
    net, card = load_checkpoint(path, device=torch_device)
    card_path = Path(card["_card_path"])
    public = {k: v for k, v in card.items() if not k.startswith("_")}
    scorer = TorchScorer(net, torch_device)
    return LoadedModel(scorer, public, card_path, card_path.with_name(card["weights_file"]), get_spec(card["model"]), "torch",
                       torch_device, note=note)


def _check_weights(card: dict[str, Any], weights_path: Path) -> None:
    if not weights_path.is_file():
        raise CheckpointError(f"weights file not found: {weights_path} (its card {card['_card_path']} names it); {CHECKPOINT_IS}")
    if card.get("sha256") and sha256_file(weights_path) != card["sha256"]:
        raise CheckpointError(f"{weights_path}: sha256 does not match its card (file changed or corrupt)")


def _torch_device(device: str) -> str:
    """Where Grad-CAM's network goes when onnxruntime scored: the same GPU if torch has one, else the CPU."""
    if device == "cpu":
        return "cpu"
    import torch

    return device if torch.cuda.is_available() else "cpu"
