"""A loaded detector ready to score face crops: its scorer, its preprocessing, where it came from.

Scan and explain both need the same three things from a checkpoint: a scorer
(models.loader: onnxruntime when the card allows, else torch), the exact
preprocessing its card and spec declare (input size, mean/std, crop) and
where the weights came from (for the report). This module is that one place;
the torch network is built only when something needs it (Grad-CAM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ddtool.data.preprocess import Preprocess, as_hw, as_rgb, crops_to_array, resolve_preprocess  # noqa: F401 (as_rgb re-exported)
from ddtool.errors import CheckpointError, ConfigError

UNTRAINED_WARNING = "UNTRAINED MODEL: random weights, scores are meaningless (testing only)"


@dataclass
class Detector:
    """A scorer plus everything needed to feed it and to cite it."""

    scorer: Any  # fake_probability(normalised (N, 3, H, W) float32) -> (N,) P(fake): models.onnx_scorer / clip_probe_scorer / torch_scorer
    name: str
    spec: Any  # models.ModelSpec, or the facts the card recorded of it (models.cards.RecordedSpec)
    device: str = "cpu"
    card: dict[str, Any] = field(default_factory=dict)
    weights_path: str | None = None
    untrained: bool = False
    shipped_name: str | None = None  # set when scan fell back to the default shipped model
    label: str | None = None  # the detector's name in a panel when not its weights' stem (e.g. a benchmark's variant)
    engine: str = "torch"  # what scores: "onnxruntime" or "torch"
    engine_file: str | None = None  # the file the engine runs when it is not weights_path (the ONNX export)
    note: str | None = None  # why torch scores a checkpoint onnxruntime could not (scan prints it once)
    loaded: Any = field(default=None, repr=False)  # the models.loader.LoadedModel, which builds the torch network on demand

    @property
    def model(self):
        """The torch network when torch scores (or once `network()` built it), else None."""
        model = getattr(self.scorer, "model", None)
        if model is None and self.loaded is not None:
            model = self.loaded._network
        return model

    def network(self):
        """The torch network (Grad-CAM, AFAM): the scorer's own under torch, else built from the checkpoint on first use."""
        if self.loaded is not None:
            return self.loaded.network()
        return self.scorer.model

    @property
    def shipped_note(self) -> str | None:
        """The line scan prints when it chose shipped weights by itself."""
        if self.shipped_name is None:
            return None
        from ddtool.weights import training_summary

        return f"using shipped weights {self.shipped_name} (sha256 {(self.weights_sha256 or '?')[:12]}..., trained on {training_summary(self.card)})"

    @property
    def preprocess(self) -> Preprocess:
        """Input size, mean/std, interpolation, crop style and margin: the card's, else the spec's."""
        return resolve_preprocess(self.spec, self.card)

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.preprocess.size

    @property
    def crop_margin(self) -> float:
        """Margin around the face box the model's training crops had (0: the box itself, the papers' crop)."""
        return self.preprocess.margin

    @property
    def crop_style(self) -> str:
        return self.preprocess.crop

    @property
    def key(self) -> str:
        """The detector's name in a panel: its weights file's stem (the shipped name), else the model name."""
        if self.label:
            return self.label
        return Path(self.weights_path).name.split(".")[0] if self.weights_path else self.name

    @property
    def operating_point(self) -> dict[str, Any] | None:
        """The card's calibration on real reference faces (scan.calibration), if any."""
        point = self.card.get("operating_point")
        return point if isinstance(point, dict) and isinstance(point.get("threshold"), (int, float)) and point.get("quantiles") else None

    @property
    def weights_sha256(self) -> str | None:
        return self.card.get("sha256")

    def provenance(self) -> dict[str, Any]:
        """What the report and JSON say about the model (never the raw card path)."""
        return {
            "model": self.name,
            "weights": self.weights_path,
            "weights_sha256": self.weights_sha256,
            "untrained": self.untrained,
            "warning": UNTRAINED_WARNING if self.untrained else None,
            "training_data": self.card.get("training_data"),
            "metrics": self.card.get("metrics"),
            "created": self.card.get("created"),
            "ddtool_version": self.card.get("ddtool_version"),
            "paper": self.spec.paper,
        }

    def prepare(self, faces: Sequence[np.ndarray]):
        """RGB uint8 crops -> normalised (N, 3, H, W) torch tensor where the network is (Grad-CAM's input)."""
        import torch

        device = next(self.network().parameters()).device
        return torch.from_numpy(crops_to_array(faces, self.preprocess)).to(device).contiguous(memory_format=torch.channels_last)

    def fake_probability(self, faces: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """P(fake) for each crop (softmax over the two logits, index 1), `batch` crops per call of the scorer."""
        if batch < 1:
            raise ConfigError("--batch must be at least 1")
        pre = self.preprocess
        scores = [self.scorer.fake_probability(crops_to_array(faces[start : start + batch], pre)) for start in range(0, len(faces), batch)]
        return np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32)


def input_hw(spec: Any) -> tuple[int, int]:
    return as_hw(spec.input_size)


def load_detector(
    model: str | None = None,
    weights: str | Path | None = None,
    untrained: bool = False,
    device: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
    engine: str = "auto",
    pipelined: bool = False,
) -> Detector:
    """The detector a scan or explanation should use.

    `weights` given: load that checkpoint (its card names the model; `model`,
    when given too, must agree) through models.loader (onnxruntime when its
    card has an export, else torch). No weights: the default shipped model
    (`ddtool.weights.default_weights`), or, only with `untrained=True`, a
    randomly initialised `model` for testing (torch). `threads`: the engine's
    intra-op threads; `engine` forces one ("onnxruntime", "torch"). `pipelined`: the detector scores in a scan's
    pipeline, beside decoding and face detection: `threads` is --threads (None: ddtool.device.scoring_threads
    chooses by the model's cost per face).
    """
    if weights is not None and untrained:
        raise ConfigError("--untrained and --weights exclude each other; drop one")
    if untrained:
        return _untrained_detector(model, device, seed)
    shipped_name = None
    if weights is None:
        from ddtool.weights import default_weights, shipped_weights_dir

        weights = default_weights()
        if weights is None:
            raise CheckpointError(
                f"no shipped weights exist in {shipped_weights_dir()} yet (none marked default, no ldfnet); pass a checkpoint with --weights PATH "
                "(NAME.safetensors + NAME.json, e.g. from `ddtool train`), or --model NAME --untrained to test the pipeline"
            )
        shipped_name = weights.stem
    else:
        from ddtool.weights import resolve_weights

        weights = resolve_weights(weights)
    from ddtool.models.cards import read_card
    from ddtool.models.loader import open_model

    card = read_card(weights)  # the model name is checked before anything loads
    if model is not None and card["model"] != model:
        raise CheckpointError(f"{weights} holds model {card['model']!r}, not {model!r}; drop --model or pass matching weights")
    if pipelined:
        from ddtool.device import scoring_threads
        from ddtool.models.loader import spec_of

        threads = scoring_threads(threads, spec_of(card).heavy_per_face)
    loaded = open_model(weights, device=device, threads=threads, engine=engine)
    if getattr(loaded.spec, "input_kind", "image") != "image":
        raise ConfigError(_not_an_image_model(loaded.card["model"], loaded.spec.input_kind))
    return Detector(loaded.scorer, loaded.card["model"], loaded.spec, device=loaded.device, card=loaded.card, weights_path=str(loaded.weights_path),
                    shipped_name=shipped_name, engine=loaded.engine, engine_file=str(loaded.engine_file) if loaded.engine_file else None,
                    note=loaded.note, loaded=loaded)


def _untrained_detector(model: str | None, device: str, seed: int) -> Detector:
    """Random weights for --model (testing the pipeline only): always torch."""
    import torch

    from ddtool.device import resolve_device
    from ddtool.models.registry import create_model, get_spec, list_models
    from ddtool.models.torch_scorer import TorchScorer

    if model is None:
        raise ConfigError(f"--untrained needs --model NAME; image models: {', '.join(list_models('image'))}")
    spec = get_spec(model)
    if spec.input_kind != "image":
        raise ConfigError(_not_an_image_model(model, spec.input_kind))
    target = str(resolve_device(device))
    torch.manual_seed(seed)
    scorer = TorchScorer(create_model(model).to(target).eval(), target, freeze=False)
    return Detector(scorer, model, spec, device=target, untrained=True)


def _not_an_image_model(name: str, kind: str) -> str:
    from ddtool.models.registry import list_models

    return (f"model {name!r} takes {kind} input, not face images; scan/explain need an image model: "
            f"{', '.join(list_models('image'))}")
