"""Every registered model keeps the detector contract (ddtool.models.registry).

One test per model in `list_models()`, in the spirit of scikit-learn's
`parametrize_with_checks`: it builds, returns (N, 2) logits, exposes its
last feature map, its Grad-CAM layer resolves and receives gradients, its
optional training hooks work, its checkpoint (weights + card) round-trips,
and its spec names a preprocessing a loader can use. Tests register their own
tiny models only inside fixtures, so this list is the shipped registry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ddtool.models import get_spec, list_models
from ddtool.models.checkpoint import load_checkpoint, save_checkpoint
from ddtool.models.registry import FeaturesDetector, HasParameterGroups, ImageDetector, TrainsItself
from ddtool.train.loop import build_model

INPUT_KINDS = ("image", "volume", "sequence", "features")
IMAGE_SIDE = 64  # the smallest side every image family takes; tiny keeps the 25 builds fast


pytestmark = pytest.mark.usefixtures("single_thread")


def example_input(spec, n: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    if spec.input_kind == "image":
        return torch.randn(n, 3, IMAGE_SIDE, IMAGE_SIDE)
    return torch.randn(n, *spec.input_size)


def check_preprocessing(spec) -> None:
    """What a loader needs from the spec to turn faces into this model's input."""
    assert spec.input_kind in INPUT_KINDS
    if spec.input_kind == "image":
        assert isinstance(spec.input_size, int) and spec.input_size >= 32
        assert len(spec.mean) == 3 and len(spec.std) == 3 and min(spec.std) > 0
    elif spec.input_kind in ("volume", "sequence"):
        assert isinstance(spec.input_size, tuple) and all(isinstance(v, int) and v > 0 for v in spec.input_size)


def check_gradcam_layer(model, spec, x: torch.Tensor) -> None:
    """The named layer exists, yields an (N, C, h, w) map during forward and gets a gradient from the fake logit."""
    assert spec.gradcam_layer, f"image model {spec.name} names no Grad-CAM layer"
    layer = model.get_submodule(spec.gradcam_layer)
    seen = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        seen["map"] = output

    handle = layer.register_forward_hook(keep)
    try:
        logits = model(x)
        (logits[:, 1] - logits[:, 0]).sum().backward()
    finally:
        handle.remove()
    activation = seen["map"]
    assert activation.ndim == 4 and activation.shape[0] == len(x)
    assert activation.grad is not None and float(activation.grad.abs().sum()) > 0


def check_training_hooks(model, x: torch.Tensor) -> None:
    if isinstance(model, TrainsItself):
        model.train()
        out = model.training_losses(x, torch.tensor([0, 1]), torch.tensor([0, 1]), progress=0.5)
        assert out["loss"].ndim == 0 and math.isfinite(float(out["loss"].detach())) and out["logits"].shape == (len(x), 2)
        out["loss"].backward()
        model.eval()
    if isinstance(model, HasParameterGroups):
        grouped = [id(p) for group in model.parameter_groups(1e-3) for p in group["params"]]
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        assert len(grouped) == len(set(grouped)), "a parameter in two groups would be stepped twice"
        assert trainable <= set(grouped), "a trainable parameter in no group would never be trained"


def check_round_trip(model, name: str, kwargs: dict, folder, run) -> None:
    """save_checkpoint -> load_checkpoint gives the same model (same outputs) and the same card facts."""
    card_path = save_checkpoint(model, folder / name, name, kwargs, input={"kind": get_spec(name).input_kind})
    restored, card = load_checkpoint(card_path)
    assert card["model"] == name and card["model_kwargs"] == kwargs
    np.testing.assert_allclose(run(restored), run(model), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list_models())
def test_model_keeps_the_detector_contract(name, tmp_path):
    spec = get_spec(name)
    assert spec.name == name and spec.family
    check_preprocessing(spec)
    if spec.input_kind == "features":
        model, kwargs = build_model(name, {"n_estimators": 5, "n_jobs": 1}, None)
        assert isinstance(model, FeaturesDetector)
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(40, 6)), np.tile([0, 1], 20)
        X[y == 1] += 1.0
        proba = model.fit(X, y).predict_proba(X)
        assert proba.shape == (40, 2) and np.allclose(proba.sum(axis=1), 1.0)
        check_round_trip(model, name, kwargs, tmp_path, lambda m: m.predict_proba(X))
        return

    torch.manual_seed(0)
    model, kwargs = build_model(name, {}, IMAGE_SIDE if spec.input_kind == "image" else None)
    model.eval()
    x = example_input(spec)
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    if spec.input_kind == "image":
        assert isinstance(model, ImageDetector) and isinstance(model.num_features, int)
        with torch.no_grad():
            features = model.forward_features(x)
        assert features.ndim == 4 and features.shape[:2] == (2, model.num_features)
        check_gradcam_layer(model, spec, x)
    check_training_hooks(model, x)
    model.zero_grad(set_to_none=True)

    def run(m):
        with torch.no_grad():
            return m.eval()(x).numpy()

    check_round_trip(model, name, kwargs, tmp_path, run)


def test_the_registry_holds_every_family():
    # The contract test above only sees what is registered: a family that stopped registering must fail here.
    families = {get_spec(name).family for name in list_models()}
    assert {"resnet", "vgg", "mobilenet", "ldfnet", "meso", "did", "efficientnet_lite"} <= families
    assert {"gru", "cnn3d", "lgbm_noise"} <= set(list_models())
