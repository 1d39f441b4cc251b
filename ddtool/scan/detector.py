"""A loaded detector ready to score face crops: model, its spec, provenance.

Scan and explain both need the same three things from a checkpoint: the
network in eval mode, the exact preprocessing its spec declares (input size,
mean/std) and where the weights came from (for the report). This module is
that one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ddtool.data.preprocess import Preprocess, as_hw, as_rgb, crops_to_tensor, resolve_preprocess  # noqa: F401 (as_rgb re-exported)
from ddtool.errors import CheckpointError, ConfigError
from ddtool.models.registry import ModelSpec, create_model, get_spec, list_models

# Faces a detector scores eagerly before it is traced and frozen for speed (tracing pays for itself after ~110).
FREEZE_AFTER_FACES = 128

UNTRAINED_WARNING = "UNTRAINED MODEL: random weights, scores are meaningless (testing only)"


@dataclass
class Detector:
    """An image detector plus everything needed to feed it and to cite it."""

    model: nn.Module
    name: str
    spec: ModelSpec
    device: str = "cpu"
    card: dict[str, Any] = field(default_factory=dict)
    weights_path: str | None = None
    untrained: bool = False
    shipped_name: str | None = None  # set when scan fell back to the default shipped model
    label: str | None = None  # the detector's name in a panel when not its weights' stem (e.g. a benchmark's variant)
    # A scorer of its own (onnxruntime: models.clip_probe_scorer): P(fake) of normalised NCHW arrays, no torch.
    # `model` is then built only when something needs the torch network (Grad-CAM): `network()`.
    scorer: Any = None
    # Scoring state: faces scored so far, and the network scoring uses once that passes FREEZE_AFTER_FACES.
    scored: int = field(default=0, init=False, repr=False)
    _frozen: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        # Channels-last (NHWC) runs the convolutions of these image models
        # 1.3x (EfficientNet-Lite0) to 2.4x (Meso4) faster on CPU (docs/scan.md "Speed"); same scores.
        if self.model is not None:
            self.model = self.model.to(memory_format=torch.channels_last)

    def network(self) -> nn.Module:
        """The torch network (Grad-CAM, AFAM): built from the checkpoint on first use when a scorer scores."""
        if self.model is None:
            from ddtool.models.checkpoint import load_checkpoint, read_card

            card_path = Path(self.weights_path).with_name(Path(self.weights_path).name.split(".")[0] + ".json")
            self.model = load_checkpoint(card_path, device=self.device)[0].eval()
        return self.model

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

    def prepare(self, faces: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 crops -> normalised (N, 3, H, W) float tensor on the device."""
        return crops_to_tensor(faces, self.preprocess).to(self.device).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def fake_probability(self, faces: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """P(fake) for each crop: softmax over the two logits, index 1."""
        if batch < 1:
            raise ConfigError("--batch must be at least 1")
        if self.scorer is not None:
            from ddtool.data.preprocess import normalise, resize_face

            pre = self.preprocess
            images = np.stack([normalise(resize_face(as_rgb(f), pre.size, pre.interpolation), pre) for f in faces]) if len(faces) else None
            self.scored += len(faces)
            return self.scorer.fake_probability(images).astype(np.float32) if images is not None else np.zeros(0, np.float32)
        scores = []
        for start in range(0, len(faces), batch):
            x = self.prepare(faces[start : start + batch])
            logits = self._scoring_net(x)(x)
            self.scored += len(x)
            scores.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
        return np.concatenate(scores) if scores else np.zeros(0, np.float32)

    def _scoring_net(self, x: torch.Tensor):
        """The network for scoring only: on CPU, once FREEZE_AFTER_FACES faces were scored, a
        frozen TorchScript trace (batch norm folded into the convolutions, no Python per layer;
        EfficientNet-Lite0 8.4 instead of 12.3 ms per face, docs/scan.md "Speed"), kept only
        where it gives the eager model's logits on that batch. Tracing costs about 0.5 s, more
        than one 32-frame scan saves, so a single short scan stays eager. Grad-CAM and training
        use `model` itself."""
        if self.device != "cpu" or self.untrained or self.scored < FREEZE_AFTER_FACES:
            return self.model
        if self._frozen is None:
            self._frozen = self.model
            try:
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # trace warnings: shapes fixed per input size, which is fixed here
                    frozen = torch.jit.freeze(torch.jit.trace(self.model.eval(), x, check_trace=False))
                    same = torch.allclose(frozen(x), self.model(x), rtol=1e-4, atol=1e-4)
                if same:
                    self._frozen = frozen
            except Exception:  # noqa: BLE001 - a model that cannot be traced is scored eagerly, as before
                self._frozen = self.model
        return self._frozen


def input_hw(spec: ModelSpec) -> tuple[int, int]:
    return as_hw(spec.input_size)


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise ConfigError(f"--device {device!r} is not a device; use cpu, cuda, cuda:N or auto")
    return device


def load_detector(
    model: str | None = None,
    weights: str | Path | None = None,
    untrained: bool = False,
    device: str = "cpu",
    seed: int = 0,
) -> Detector:
    """The detector a scan or explanation should use.

    `weights` given: load that checkpoint (its card names the model; `model`,
    when given too, must agree). No weights: the default shipped model
    (`ddtool.weights.default_weights`), or,
    only with `untrained=True`, a randomly initialised `model` for testing.
    """
    from ddtool.models.checkpoint import load_checkpoint, read_card

    device = resolve_device(device)
    if weights is not None and untrained:
        raise ConfigError("--untrained and --weights exclude each other; drop one")
    shipped_name = None
    if weights is None and not untrained:
        from ddtool.weights import default_weights, shipped_weights_dir

        weights = default_weights()
        if weights is None:
            raise CheckpointError(
                f"no shipped weights exist in {shipped_weights_dir()} yet (none marked default, no ldfnet); pass a checkpoint with --weights PATH "
                "(NAME.safetensors + NAME.json, e.g. from `ddtool train`), or --model NAME --untrained to test the pipeline"
            )
        shipped_name = weights.stem
    if untrained:
        if model is None:
            raise ConfigError(f"--untrained needs --model NAME; image models: {', '.join(list_models('image'))}")
        spec = _image_spec(model)
        torch.manual_seed(seed)
        net = create_model(model).to(device).eval()
        return Detector(net, model, spec, device=device, untrained=True)
    if shipped_name is None:
        from ddtool.weights import resolve_weights

        weights = resolve_weights(weights)
    from ddtool.models.clip_probe_scorer import is_clip_probe

    card = read_card(weights)
    if is_clip_probe(card) and device == "cpu":
        return _clip_probe_detector(weights, card, model, shipped_name)
    net, card = load_checkpoint(weights, device=device)
    if model is not None and card["model"] != model:
        raise CheckpointError(f"{weights} holds model {card['model']!r}, not {model!r}; drop --model or pass matching weights")
    spec = _image_spec(card["model"])
    weights_file = Path(card["_card_path"]).with_name(card["weights_file"])
    card = {k: v for k, v in card.items() if not k.startswith("_")}
    return Detector(net.eval(), card["model"], spec, device=device, card=card, weights_path=str(weights_file), shipped_name=shipped_name)


def _clip_probe_detector(weights, card: dict[str, Any], model: str | None, shipped_name: str | None) -> Detector:
    """A CLIP probe checkpoint scored on onnxruntime (models.clip_probe_scorer); torch only for Grad-CAM."""
    from ddtool.io import sha256_file
    from ddtool.models.clip_probe_scorer import ClipProbeScorer

    if model is not None and card["model"] != model:
        raise CheckpointError(f"{weights} holds model {card['model']!r}, not {model!r}; drop --model or pass matching weights")
    weights_file = Path(card["_card_path"]).with_name(card["weights_file"])
    if not weights_file.is_file():
        raise CheckpointError(f"weights file not found: {weights_file} (its card {card['_card_path']} names it)")
    if card.get("sha256") and sha256_file(weights_file) != card["sha256"]:
        raise CheckpointError(f"{weights_file}: sha256 does not match its card (file changed or corrupt)")
    card = {k: v for k, v in card.items() if not k.startswith("_")}
    scorer = ClipProbeScorer(weights_file, card)
    return Detector(None, card["model"], _image_spec(card["model"]), card=card, weights_path=str(weights_file),
                    shipped_name=shipped_name, scorer=scorer)


def _image_spec(name: str) -> ModelSpec:
    spec = get_spec(name)
    if spec.input_kind != "image":
        raise ConfigError(
            f"model {name!r} takes {spec.input_kind} input, not face images; scan/explain need an image model: "
            f"{', '.join(list_models('image'))}"
        )
    return spec
