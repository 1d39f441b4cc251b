"""Model registry: every detector ddtool knows, built by name, and the contract they keep.

Contract for every registered model (see docs/architecture.md; the
`ImageDetector`, `TrainsItself`, `HasParameterGroups` and `FeaturesDetector`
protocols below spell it out, and tests/test_model_contract.py checks every
registered model against it):
- `create_model(name, **kwargs)` returns an `nn.Module`.
- Image detectors take float tensors (N, 3, H, W), already normalised with the
  spec's mean/std, and return logits of shape (N, 2); index 1 = fake. They
  expose their last feature map (`forward_features`, `num_features`) and name
  the layer Grad-CAM explains (`ModelSpec.gradcam_layer`).
- Temporal models take their own input (`input_kind`): "volume" (N, T, H, W)
  residual volumes, "sequence" (N, T, 1) mean-residual sequences. They also
  return (N, 2) logits.
- "features" models (LightGBM) are not nn.Modules; they expose
  fit / predict_proba / save / load and are registered the same way.

Importing this module imports the `ddtool.models` package first (Python
imports parents before children); the package hands the registry a function
that imports every family, which runs on the first lookup (`get_spec`,
`list_models`, `create_model`), so the registry is full before any name is
looked up, and a torch-free module of ddtool.models (cards, the onnxruntime
scorers) can be imported without torch.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

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
    # One face costs more CPU than decoding and detecting a frame (a foundation tower): a scan gives its scorer
    # every core (ddtool.device.scoring_threads).
    heavy_per_face: bool = False


@runtime_checkable
class ImageDetector(Protocol):
    """An image detector: normalised (N, 3, H, W) in, (N, 2) logits out (index 1 = fake)."""

    num_features: int  # channels of forward_features' map

    def forward(self, x: Any) -> Any: ...

    def forward_features(self, x: Any) -> Any:
        """The last feature map before pooling: (N, num_features, h, w). DID and Grad-CAM wrap any backbone through it."""
        ...


@runtime_checkable
class TrainsItself(Protocol):
    """Optional: a model with its own objective (DID); the training loop uses it instead of cross-entropy."""

    def training_losses(self, x: Any, y: Any, domain: Any, progress: float) -> dict[str, Any]:
        """At least `loss` (scalar to backpropagate) and `logits` (N, 2); progress = epoch / max_epochs in [0, 1]."""
        ...


@runtime_checkable
class HasParameterGroups(Protocol):
    """Optional: a model that wants per-part learning rates (DID: heads at 10x the backbone)."""

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]: ...


@runtime_checkable
class FeaturesDetector(Protocol):
    """A "features" model (LightGBM): a scikit-learn style classifier stored in its own format."""

    def fit(self, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any: ...

    def predict_proba(self, X: Any) -> Any: ...

    def save(self, path: Any) -> Any: ...

    def load(self, path: Any) -> Any: ...


_REGISTRY: dict[str, ModelSpec] = {}
# Imports every family module (set by the ddtool.models package, which lists them). Run on the first lookup, not when
# the package is imported: the torch-free parts of ddtool.models (cards, the onnxruntime scorers) must not import torch.
_family_loader: Callable[[], None] | None = None


def set_family_loader(loader: Callable[[], None]) -> None:
    global _family_loader
    _family_loader = loader


def _full_registry() -> dict[str, ModelSpec]:
    """The registry with every family registered (the families are imported on the first call)."""
    global _family_loader
    if _family_loader is not None:
        loader, _family_loader = _family_loader, None
        loader()
    return _REGISTRY


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} registered twice")
    _REGISTRY[spec.name] = spec
    return spec


@contextmanager
def registry_restored() -> Iterator[None]:
    """Models registered inside the with-block are gone after it (tests register their tiny models this way)."""
    before = dict(_full_registry())
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(before)


def list_models(input_kind: str | None = None) -> list[str]:
    return sorted(n for n, s in _full_registry().items() if input_kind is None or s.input_kind == input_kind)


def get_spec(name: str) -> ModelSpec:
    try:
        return _full_registry()[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any):
    spec = get_spec(name)
    return spec.builder(**{**spec.default_kwargs, **kwargs})
