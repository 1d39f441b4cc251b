"""Model registry: every detector ddtool knows, built by name.

Contract for every registered model (see docs/architecture.md):
- `create_model(name, **kwargs)` returns an `nn.Module`.
- Image detectors take float tensors (N, 3, H, W), already normalised with the
  spec's mean/std, and return logits of shape (N, 2); index 1 = fake.
- Temporal models take their own input (`input_kind`): "volume" (N, T, H, W)
  residual volumes, "sequence" (N, T, 1) mean-residual sequences. They also
  return (N, 2) logits.
- "features" models (LightGBM) are not nn.Modules; they expose
  fit / predict_proba / save / load and are registered the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ddtool.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class TrainDefaults:
    """Training hyper-parameters from the model's paper."""

    optimizer: str = "adam"
    lr: float = 1e-4
    lr_decay: float = 0.5  # multiply lr by this after every epoch
    epochs: int = 20
    batch_size: int = 64
    seed: int = 7
    weight_decay: float = 0.0
    augment: tuple[str, ...] = ("hflip", "rotate10")


@dataclass(frozen=True)
class ModelSpec:
    """What ddtool needs to know about a model besides its code."""

    name: str
    builder: Callable[..., Any]
    description: str
    family: str
    input_kind: str = "image"  # image | volume | sequence | features
    input_size: int | tuple[int, ...] = 256
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    train: TrainDefaults = field(default_factory=TrainDefaults)
    gradcam_layer: str | None = None  # dotted module path inside the model
    paper: str = ""
    paper_params: int | None = None  # parameter count the paper reports
    paper_macs: int | None = None  # MACs at input_size the paper reports
    default_kwargs: dict[str, Any] = field(default_factory=dict)
    # The builder takes pretrained=True (ImageNet weights from an installed package); training asks for it by default.
    pretrained: bool = False


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(input_kind: str | None = None) -> list[str]:
    return sorted(n for n, s in _REGISTRY.items() if input_kind is None or s.input_kind == input_kind)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any):
    spec = get_spec(name)
    return spec.builder(**{**spec.default_kwargs, **kwargs})
