"""One preprocessing path: the resolver, the same face giving the same tensor through training, eval and scan,
and crop styles honoured by scan, explain and eval."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from ddtool.data.preprocess import Preprocess, crops_to_tensor, resolve_preprocess
from ddtool.errors import CheckpointError, ConfigError
from ddtool.models import get_spec
from ddtool.models.checkpoint import save_checkpoint
from test_explain import TinyDetector, register_tiny

CARD_INPUT = {"kind": "image", "size": 40, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "margin": 0.3, "interpolation": "auto"}


def test_resolver_prefers_the_card_then_the_run_config_then_the_spec():
    spec = get_spec("meso4")
    assert resolve_preprocess(spec).size == (256, 256) and resolve_preprocess(spec).crop == "box"
    assert resolve_preprocess(spec, {"config": {"size": 128}}).size == (128, 128)
    pre = resolve_preprocess(spec, {"config": {"size": 128}, "input": {**CARD_INPUT, "crop": "mesonet_aligned", "interpolation": "nearest"}})
    assert pre.size == (40, 40) and pre.mean == (0.5, 0.4, 0.3) and pre.margin == 0.3
    assert pre.crop == "mesonet_aligned" and pre.interpolation == "nearest"
    with pytest.raises(ConfigError, match="crop style"):
        resolve_preprocess(spec, {"input": {"crop": "oval"}})


def test_a_card_margin_out_of_range_is_an_error_not_repaired():
    """A model must never see faces cut differently from its training crops without being told: 0 only when the card is silent."""
    spec = get_spec("meso4")
    assert resolve_preprocess(spec, {"input": {"size": 64}}).margin == 0.0
    for bad in (-0.1, 2.5, "0.3", True):
        with pytest.raises(CheckpointError, match=r"runs/x/best.json: input.margin .* is not a number from 0 to 2"):
            resolve_preprocess(spec, {"_card_path": "runs/x/best.json", "input": {"margin": bad}})


def test_shrinking_a_wide_crop_uses_area_whatever_its_height():
    # The old dataset path looked at the height only: a wide, short crop was enlarged with INTER_LINEAR.
    face = np.random.default_rng(0).integers(0, 255, (32, 96, 3), np.uint8)
    pre = Preprocess(size=(40, 40))
    expected = cv2.resize(face, (40, 40), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    np.testing.assert_allclose(crops_to_tensor([face], pre)[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_same_face_same_tensor_through_training_eval_and_scan(tmp_path):
    """A crop becomes the identical tensor in the training dataset, in `ddtool eval` and in `ddtool scan`."""
    from ddtool.data.dataset import FaceCropDataset
    from ddtool.evaluate.predict import predict_images
    from ddtool.scan.detector import load_detector

    name = register_tiny()
    face = np.random.default_rng(1).integers(0, 255, (57, 61, 3), np.uint8)  # not the input size: every path resizes
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    torch.manual_seed(0)
    card_path = save_checkpoint(TinyDetector(), tmp_path / "tiny", name, {}, input=CARD_INPUT, config={"size": 40})
    card = __import__("json").loads(card_path.read_text())
    spec = get_spec(name)
    pre = resolve_preprocess(spec, card)

    # training: the dataset the train loop builds, with the resolved preprocessing
    rows = pd.DataFrame({"crop_path": ["face.png"], "label": [0], "domain": [0]})
    train_tensor = FaceCropDataset(tmp_path, rows, pre.size, pre.mean, pre.std, preprocess=pre)[0][0]

    # eval: what predict_images feeds the model (captured by a forward hook)
    seen = []
    model = TinyDetector().eval()
    model.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    predict_images(model, spec, card, tmp_path, ["face.png"], device="cpu")

    # scan: what the loaded detector hands its scorer (any engine takes this array), and Grad-CAM's tensor
    detector = load_detector(weights=str(card_path))
    scored = []
    score = detector.scorer.fake_probability
    detector.scorer.fake_probability = lambda images: scored.append(images.copy()) or score(images)
    detector.fake_probability([face])
    scan_tensor = detector.prepare([face])[0]

    assert train_tensor.shape == (3, 40, 40)
    torch.testing.assert_close(train_tensor, seen[0][0], rtol=0, atol=0)
    torch.testing.assert_close(train_tensor, torch.from_numpy(scored[0][0]), rtol=0, atol=0)
    torch.testing.assert_close(train_tensor, scan_tensor, rtol=0, atol=0)


# ----------------------------------------------------------------- the MesoNet aligned crop


def _landmarks(cx: float, cy: float, scale: float, angle_deg: float) -> np.ndarray:
    """68 points of an upright face (eyes at y=-1, nose 0, mouth +1, in units of `scale`), rotated by angle."""
    points = np.zeros((68, 2))
    points[36:42] = (-1.0, -1.0)
    points[42:48] = (1.0, -1.0)
    points[27:31] = (0.0, -0.2)
    points[31:36] = (0.0, 0.2)
    points[48:68] = (0.0, 1.0)
    theta = math.radians(angle_deg)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return points * scale @ rotation.T + (cx, cy)


def test_mesonet_geometry_follows_the_authors_rule():
    from ddtool.media.crops import mesonet_geometry

    cx, cy, side, rotation = mesonet_geometry(_landmarks(100.0, 80.0, 10.0, 0.0))
    assert (cx, cy) == (100.0, 80.0) and rotation == pytest.approx(0.0)
    # eye distance 20, eyes-mouth 20: side = int(2.2 * 20) * 1.3
    assert side == pytest.approx(44 * 1.3)
    # A head turned 20 degrees (mouth pushed to the left of the eyes in image terms) is measured as turned.
    assert mesonet_geometry(_landmarks(100.0, 80.0, 10.0, 20.0))[3] == pytest.approx(-20.0, abs=1e-6)


def test_aligned_crop_makes_a_tilted_face_upright():
    from ddtool.media.crops import aligned_crop

    canvas = np.zeros((200, 200, 3), np.uint8)
    cv2.rectangle(canvas, (95, 40), (105, 160), (255, 255, 255), -1)  # a vertical bar through the face centre
    tilt = cv2.getRotationMatrix2D((100.0, 100.0), 25.0, 1.0)  # the whole picture turned 25 degrees
    tilted = cv2.warpAffine(canvas, tilt, (200, 200))
    points = _landmarks(100.0, 100.0, 20.0, -25.0)  # its landmarks, turned with it
    upright = aligned_crop(tilted, points, 64, "nearest")
    columns = np.flatnonzero(upright[:, :, 0].mean(axis=0) > 127)
    assert columns.size and abs(columns.mean() - 31.5) < 3 and columns.size < 10  # one narrow vertical bar, centred


def test_crop_style_is_honoured_by_scan_explain_and_eval(tmp_path, face_image, monkeypatch):
    """A card saying crop=mesonet_aligned makes scan and explain cut that way; eval refuses a cache cut otherwise."""
    import ddtool.media.crops as crops
    from ddtool.explain.gradcam import explain_media
    from ddtool.scan.detector import load_detector
    from ddtool.scan.pipeline import ScanOptions, scan_file

    name = register_tiny()
    torch.manual_seed(0)
    card_path = save_checkpoint(TinyDetector(), tmp_path / "aligned", name, {},
                                input={"kind": "image", "size": 32, "crop": "mesonet_aligned", "interpolation": "nearest"})
    calls = []
    real = crops.crop_in_style

    def spy(rgb, box, style, margin, size, interpolation="auto"):
        calls.append((style, size, interpolation))
        return real(rgb, box, style, margin, size, interpolation)

    monkeypatch.setattr(crops, "crop_in_style", spy)
    detector = load_detector(weights=str(card_path))
    result = scan_file(face_image, ScanOptions(frames=1, detector="hog"), detector)
    assert result.frames and ("mesonet_aligned", 32, "nearest") in calls
    calls.clear()
    explain_media(face_image, detector, tmp_path / "explain", top_k=1)
    assert ("mesonet_aligned", 32, "nearest") in calls

    from ddtool.evaluate.predict import check_cache_crop

    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "extract_config.json").write_text('{"margin": 0.3}')
    with pytest.raises(ConfigError, match="mesonet_aligned"):
        check_cache_crop(tmp_path / "cache", detector.card)


def test_aligned_crop_from_the_detectors_5_points_matches_the_68_point_crop():
    """mesonet_aligned5: the authors' crop from CenterFace's eyes, nose and mouth corners
    (no second landmark model) lands on the same face region as the 68-point crop."""
    from conftest import FACE_IMAGE
    from ddtool.media.crops import mesonet_geometry, mesonet_geometry_5, view_cropper
    from ddtool.media.faces import scan_face_detector
    from ddtool.media.landmarks import landmarks_68

    rgb = np.ascontiguousarray(cv2.imread(str(FACE_IMAGE))[:, :, ::-1])
    box = scan_face_detector("centerface").detect(rgb)[0]
    assert box.landmarks is not None and len(box.landmarks) == 5
    cx, cy, side, rotation = mesonet_geometry(landmarks_68(rgb, (box.x0, box.y0, box.x1, box.y1)))
    cx5, cy5, side5, rotation5 = mesonet_geometry_5(box.landmarks)
    assert math.hypot(cx5 - cx, cy5 - cy) < 0.06 * side and 0.85 < side5 / side < 1.15 and abs(rotation5 - rotation) < 8
    crop5 = view_cropper(("mesonet_aligned5", 0.0, 256, "nearest"))(rgb, box)
    crop68 = view_cropper(("mesonet_aligned", 0.0, 256, "nearest"))(rgb, box)
    assert crop5.shape == crop68.shape == (256, 256, 3)
    assert np.corrcoef(crop5.astype(float).ravel(), crop68.astype(float).ravel())[0, 1] > 0.8
    # A tilted face: the 5-point geometry turns it upright the same way round.
    tilt = cv2.getRotationMatrix2D((256, 256), 20, 1.0)
    points = np.array(box.landmarks) @ tilt[:, :2].T + tilt[:, 2]
    assert mesonet_geometry_5(points)[3] == pytest.approx(rotation5 + 20, abs=1.0)  # cv2 turns +20 deg counter-clockwise
    with pytest.raises(ConfigError, match="5 landmarks"):
        mesonet_geometry_5(np.zeros((6, 2)))
