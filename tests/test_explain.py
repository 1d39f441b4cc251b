"""Grad-CAM and AFAM: maps match direct computations, every image model works, CLI writes PNGs."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ddtool.cli.app import main
from ddtool.explain.afam import average_forgery_attention_map, forgery_attention_maps, load_faces
from ddtool.explain.gradcam import gradcam, last_feature_layer, overlay_heatmap, resolve_layer
from ddtool.models.registry import ModelSpec, create_model, get_spec, list_models, register_model
from ddtool.scan.detector import load_detector

TINY = "tiny_test_detector"


class TinyDetector(nn.Module):
    """Smallest model honouring the image-detector contract (logits (N, 2), forward_features)."""

    num_features = 6

    def __init__(self, fake_bias: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Linear(6, 2)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, fake_bias]))

    def forward_features(self, x):
        return self.features(x)

    def forward(self, x):
        return self.head(self.forward_features(x).mean(dim=(2, 3)))


def register_tiny() -> str:
    """Register TINY for the running test (tests/conftest.py restores the registry after it); idempotent within a test."""
    if TINY not in list_models():
        register_model(ModelSpec(TINY, TinyDetector, "test-only tiny detector", "test", input_size=32, gradcam_layer="features.2"))
    return TINY


@pytest.fixture()
def tiny():
    torch.manual_seed(0)
    register_tiny()
    return TinyDetector().eval()


def direct_afam(model, x):
    """AFAM written out image by image, straight from the RFM recipe."""
    maps = []
    for image in x:
        image = image[None].clone().requires_grad_(True)
        logits = model(image)
        (logits[0, 1] - logits[0, 0]).backward()
        fam = image.grad.abs().max(dim=1, keepdim=True).values
        h, w = fam.shape[-2:]
        fam = F.interpolate(F.interpolate(fam, size=(h // 2, w // 2), mode="bilinear"), size=(h, w), mode="bilinear")[0, 0]
        fam = fam.numpy()
        maps.append((fam - fam.min()) / (fam.max() - fam.min()))
    mean = np.mean(maps, axis=0)
    return (mean - mean.min()) / (mean.max() - mean.min())


def test_afam_equals_direct_computation(tiny):
    x = torch.randn(5, 3, 32, 32)
    expected = direct_afam(tiny, x)
    got = average_forgery_attention_map(tiny, x)
    assert got.shape == (32, 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got.min() == pytest.approx(0.0) and got.max() == pytest.approx(1.0)


def test_fams_batched_equal_single(tiny):
    x = torch.randn(4, 3, 32, 32)
    together = forgery_attention_maps(tiny, x, batch=4)
    alone = torch.cat([forgery_attention_maps(tiny, x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_gradcam_matches_formula_and_range(tiny):
    x = torch.randn(3, 3, 32, 32)
    layer = resolve_layer(tiny, "features.2")
    cam = gradcam(tiny, x, layer)
    assert cam.shape == (3, 32, 32) and cam.dtype == np.float32
    # per-image min-max: each map spans exactly [0, 1]
    np.testing.assert_allclose(cam.reshape(3, -1).min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(cam.reshape(3, -1).max(axis=1), 1.0, atol=1e-6)
    # The same map by hand: activations and their gradient from a split forward pass.
    acts = tiny.features[:3](x).detach().requires_grad_(True)
    logits = tiny.head(F.relu(acts).mean(dim=(2, 3)))
    (logits[:, 1] - logits[:, 0]).sum().backward()
    manual = F.relu((acts.grad.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    manual = F.interpolate(manual, size=(32, 32), mode="bilinear")[:, 0].detach().numpy()
    for got, want in zip(cam, manual):
        if want.max() > want.min():
            np.testing.assert_allclose(got, (want - want.min()) / (want.max() - want.min()), atol=1e-5)
        else:
            assert not got.any()


def test_gradcam_finds_a_layer_when_none_registered(tiny):
    assert last_feature_layer(tiny) is tiny.features[3]
    assert resolve_layer(tiny, None) is tiny.features[3]


def test_overlay_is_rgb_uint8_of_image_size():
    rgb = np.full((40, 50, 3), 128, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[:4] = 1.0
    blended = overlay_heatmap(rgb, heat)
    assert blended.shape == (40, 50, 3) and blended.dtype == np.uint8
    # JET: hot = red in the top half, cold = blue in the bottom half (RGB order).
    assert blended[5, 25, 0] > blended[5, 25, 2] and blended[35, 25, 2] > blended[35, 25, 0]


def _representatives() -> list[str]:
    """The smallest registered image model of each family, plus each SFIConv variant family."""
    chosen: dict[tuple[str, bool], str] = {}
    for name in list_models(input_kind="image"):
        spec = get_spec(name)
        if spec.family == "test":  # probes other test modules register
            continue
        key = (spec.family, name.startswith("sfic_"))
        best = chosen.get(key)
        size = spec.paper_params or float("inf")
        if best is None or size < (get_spec(best).paper_params or float("inf")):
            chosen[key] = name
    return sorted(chosen.values())


@pytest.mark.parametrize("name", _representatives())
def test_every_image_model_family_explains(name):
    torch.manual_seed(0)
    spec = get_spec(name)
    # DID wraps any backbone; the tiny one keeps the test fast and still runs DID's own layers.
    kwargs = {"backbone": TinyDetector()} if spec.family == "did" else {}
    model = create_model(name, **kwargs).eval()
    own_side = spec.input_size if isinstance(spec.input_size, int) else spec.input_size[-1]
    usable = False
    for side in (64, own_side):
        x = torch.randn(2, 3, side, side)
        try:
            with torch.no_grad():
                logits = model(x)
        except RuntimeError:  # fixed-size heads (Meso) need their own input size
            continue
        usable = not torch.allclose(logits[0], logits[1])
        break
    assert usable, f"{name}: a fresh model must respond to its input"
    cam = gradcam(model, x, resolve_layer(model, spec.gradcam_layer))
    # (a fresh model's Grad-CAM may be all zero: ReLU of a negative class evidence; AFAM below must span [0, 1])
    assert cam.shape == (2, side, side) and np.isfinite(cam).all()
    fam = average_forgery_attention_map(model, x)
    assert fam.shape == (side, side) and np.isfinite(fam).all()
    assert fam.min() == pytest.approx(0.0) and fam.max() == pytest.approx(1.0)


def _write_faces(folder, face_image, n):
    face = cv2.resize(cv2.imread(str(face_image)), (64, 64))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"face_{i:02d}.png"), np.roll(face, i * 3, axis=1))
    return folder


def test_load_faces_from_cache_filters_label_and_spreads_videos(tmp_path, face_image):
    crops = _write_faces(tmp_path / "crops", face_image, 6)
    rows = [
        {"crop_path": f"crops/face_{i:02d}.png", "video_id": f"ds/m/v{i // 2}", "label": 1 if i < 4 else 0} for i in range(6)
    ]
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["crop_path", "video_id", "label"])
        writer.writeheader()
        writer.writerows(rows)
    assert crops.is_dir()
    fakes = load_faces(tmp_path, "fake")
    assert len(fakes) == 4 and fakes[0].shape == (64, 64, 3)
    assert len(load_faces(tmp_path, "real")) == 2
    # Two fake videos of two faces: the first two faces come from different videos.
    first_two = load_faces(tmp_path, "fake", limit=2)
    originals = {i: cv2.cvtColor(cv2.imread(str(crops / f"face_{i:02d}.png")), cv2.COLOR_BGR2RGB) for i in range(4)}
    which = [next(i for i, img in originals.items() if np.array_equal(img, face)) for face in first_two]
    assert {w // 2 for w in which} == {0, 1}


def test_cli_afam_writes_heatmaps_and_grid(tmp_path, face_image, capsys):
    register_tiny()
    data = _write_faces(tmp_path / "faces", face_image, 4)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--afam", "2", "--afam", "4", "--model", TINY, "--untrained", "--data", str(data), "--out", str(out), "--json"])
    assert exit_info.value.code in (0, None)
    written = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert "afam_grid.png" in names
    assert sum(n.endswith("_heatmap.png") for n in names) == 2 and sum(n.endswith("_overlay.png") for n in names) == 2
    assert written["counts"] == [2, 4]
    overlay = cv2.imread(str(next(out.glob("*_n4_overlay.png"))))
    assert overlay.shape == (32, 32, 3)


def test_cli_afam_needs_enough_faces(tmp_path, face_image, capsys):
    register_tiny()
    data = _write_faces(tmp_path / "faces", face_image, 2)
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--afam", "8", "--model", TINY, "--untrained", "--data", str(data), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 3
    assert "needs 8 face images" in capsys.readouterr().err


def test_cli_gradcam_on_image_and_noface(tmp_path, face_image, noface_video, capsys):
    register_tiny()
    out = tmp_path / "cam"
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--gradcam", str(face_image), "--model", TINY, "--untrained", "--out", str(out)])
    assert exit_info.value.code in (0, None)
    saved = list(out.glob("gradcam_01_*.png"))
    # face and overlay side by side (32 px each, enlarged 8x whole pixels), a caption band below
    assert len(saved) == 1 and cv2.imread(str(saved[0])).shape[1:] == (512, 3) and cv2.imread(str(saved[0])).shape[0] > 256
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "--gradcam", str(noface_video), "--model", TINY, "--untrained", "--frames", "3", "--out", str(out)])
    assert exit_info.value.code == 3
    assert "no face found" in capsys.readouterr().err


def test_detector_without_weights_says_none_are_shipped(tmp_path, monkeypatch):
    from ddtool.errors import CheckpointError

    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))  # an empty weights folder

    with pytest.raises(CheckpointError, match="no shipped weights"):
        load_detector("resnet26")
