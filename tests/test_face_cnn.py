"""CNN face detectors (BlazeFace, MTCNN): boxes, landmarks, letterboxing, model files, CLI options."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from conftest import FACE_IMAGE, REPO, face_frames, run_cli, scan_and_explain_with_detector
from ddtool.errors import ConfigError
from ddtool.media.face_nets import blazeface_anchors
from ddtool.media.faces import Box, FaceExtractor, create_detector, scan_face_detector
from ddtool.media.video import Frame
from test_scan import checkpoints  # noqa: F401 (fixture)

SHIPPED = REPO / "weights" / "face_detectors"
# The astronaut's face in examples/astronaut.jpg (512x512): HOG's box.
HEAD = Box(175, 76, 266, 167)
CNN_DETECTORS = ("blazeface", "blazeface-back", "blazeface-front", "mtcnn", "centerface")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return cv2.imread(str(FACE_IMAGE))[:, :, ::-1].copy()


@pytest.fixture(scope="module")
def detectors():
    return {name: create_detector(name) for name in ("hog", *CNN_DETECTORS)}


def _holds_face(box: Box, face: Box) -> bool:
    # CNN boxes reach from forehead to chin, HOG's from brows to lip: the
    # box must overlap the face and hold its centre.
    cx, cy = face.center
    return box.iou(face) > 0.4 and box.x0 <= cx <= box.x1 and box.y0 <= cy <= box.y1


@pytest.mark.parametrize("name", ("hog", *CNN_DETECTORS))
def test_every_detector_finds_the_photo_face(name, detectors, astronaut):
    boxes = detectors[name].detect(astronaut)
    assert boxes and _holds_face(boxes[0], HEAD), boxes[:2]


@pytest.mark.parametrize("name", ("hog", "blazeface", "blazeface-back", "mtcnn", "centerface", "scan"))
def test_detectors_find_the_pasted_face_in_video_frames(name, detectors):
    detector = scan_face_detector() if name == "scan" else detectors[name]  # "scan": the default as scan runs it
    # conftest pastes the 200x200 portrait at (40 + i % 20, 20 + i % 10) of a 320x240 frame.
    for i, bgr in enumerate(face_frames(12)[::5]):
        index = 5 * i
        dx, dy = 40 + index % 20, 20 + index % 10
        face = Box(175 * 200 / 512 + dx, 76 * 200 / 512 + dy, 266 * 200 / 512 + dx, 167 * 200 / 512 + dy)
        boxes = detector.detect(bgr[:, :, ::-1].copy())
        assert boxes and _holds_face(boxes[0], face), (index, boxes[:2])


def test_front_model_is_for_close_ups_and_the_cascade_falls_back_to_it(detectors, astronaut, monkeypatch):
    # The 128 px front model misses a 36 px face in a 1280x720 frame...
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[200:400, 500:700] = cv2.resize(astronaut, (200, 200), interpolation=cv2.INTER_AREA)
    assert detectors["blazeface-front"].detect(frame) == []
    # ...and the cascade asks it only when the back model finds nothing.
    cascade = create_detector("blazeface")
    front_calls = []
    monkeypatch.setattr(cascade.front, "_detect_small", lambda rgb: front_calls.append(1) or [Box(1, 2, 30, 40, 0.9)])
    assert cascade.detect(astronaut)[0].iou(HEAD) > 0.4 and front_calls == []
    monkeypatch.setattr(cascade.back, "_detect_small", lambda rgb: [])
    assert cascade.detect(astronaut) == [Box(1, 2, 30, 40, 0.9)] and front_calls == [1]


@pytest.mark.parametrize("name", CNN_DETECTORS)
def test_landmarks_are_named_and_sit_on_the_face(name, detectors, astronaut):
    detector = detectors[name]
    box = detector.detect(astronaut)[0]
    assert box.landmarks is not None and len(box.landmarks) == len(detector.landmark_names)
    points = dict(zip(detector.landmark_names, box.landmarks))
    right_eye, left_eye, nose = points["right_eye"], points["left_eye"], points["nose"]
    # The person's right eye is on the image's left; measured eyes at about (203, 102) and (248, 103).
    assert 190 < right_eye[0] < 215 and 235 < left_eye[0] < 260
    assert all(90 < p[1] < 115 for p in (right_eye, left_eye))
    assert right_eye[1] < nose[1] and abs(nose[0] - 225) < 12
    mouth = [p for n, p in points.items() if n.startswith("mouth")]
    assert mouth and all(nose[1] < p[1] < box.y1 for p in mouth)


def test_hog_gives_no_landmarks(detectors, astronaut):
    assert detectors["hog"].landmark_names == ()
    assert all(b.landmarks is None for b in detectors["hog"].detect(astronaut))


def test_landmarks_map_back_with_the_box(astronaut):
    detector = create_detector("mtcnn", max_side=512)
    small = detector.detect(astronaut)[0]
    big = detector.detect(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC))[0]
    assert big.iou(small.scaled(2.0)) > 0.8
    for (x, y), (bx, by) in zip(small.landmarks, big.landmarks):
        assert abs(bx - 2 * x) < 8 and abs(by - 2 * y) < 8


def test_box_mapping_keeps_landmarks_and_old_callers_work():
    box = Box(1, 2, 11, 22, 0.5, ((3.0, 4.0), (5.0, 6.0)))
    assert box.mapped(2.0, 3.0, dx=1.0).landmarks == ((7.0, 12.0), (11.0, 18.0))
    assert box.scaled(2.0) == Box(2, 4, 22, 44, 0.5, ((6.0, 8.0), (10.0, 12.0)))
    assert Box(0, 0, 10, 20).landmarks is None and Box(0, 0, 10, 20).scaled(2.0) == Box(0, 0, 20, 40)


def test_scan_default_finds_the_face_stretched_to_8k_where_hog_fails(detectors, astronaut):
    # The whole photo stretched to 7680x4320 (16:9): the face is 1.78x too wide.
    frame = cv2.resize(astronaut, (7680, 4320), interpolation=cv2.INTER_LINEAR)
    assert detectors["hog"].detect(frame) == []
    boxes = scan_face_detector().detect(frame)
    assert boxes
    cx, cy = boxes[0].center
    # The head: x 2625..3990, y 641..1409 in the stretched frame.
    assert 2625 < cx < 3990 and 641 < cy < 1409


def test_scan_default_finds_a_face_in_a_letterboxed_wide_frame_at_the_right_place(astronaut):
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    frame[500:1012, 1300:1812] = astronaut
    boxes = scan_face_detector().detect(frame)
    assert boxes and _holds_face(boxes[0], HEAD.mapped(1.0, 1.0, dx=1300, dy=500))


@pytest.mark.parametrize("degrees", (-45, 30))
def test_scan_default_finds_rotated_faces(detectors, astronaut, degrees):
    m = cv2.getRotationMatrix2D((256, 256), degrees, 1.0)
    rotated = cv2.warpAffine(astronaut, m, (512, 512), borderValue=(90, 90, 90))
    cx, cy = m @ np.array([*HEAD.center, 1.0])  # where the head went
    boxes = scan_face_detector().detect(rotated)
    assert boxes and _holds_face(boxes[0], HEAD.mapped(1.0, 1.0, cx - HEAD.center[0], cy - HEAD.center[1]))


def test_scan_default_finds_a_dark_face(detectors, astronaut):
    dark = (255.0 * (astronaut / 255.0) ** 1.6 * 0.12).astype(np.uint8)  # mean brightness about 6 of 255
    boxes = scan_face_detector().detect(dark)
    assert boxes and _holds_face(boxes[0], HEAD)


def test_no_faces_in_noise(detectors):
    noise = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for name in CNN_DETECTORS:
        assert detectors[name].detect(noise) == [], name


def test_extractor_tracks_cnn_boxes(detectors):
    frames = [Frame(i, i / 25, f[:, :, ::-1].copy()) for i, f in enumerate(face_frames(4))]
    timings: dict = {}
    crops = FaceExtractor(detectors["blazeface"], size=64).extract_frames(frames, timings)
    assert [c.frame_index for c in crops] == [0, 1, 2, 3] and {c.track_id for c in crops} == {0}
    assert crops[0].box.landmarks is not None and timings["detect"] > 0 and timings["crop"] > 0


def test_shipped_anchors_and_cards():
    assert blazeface_anchors().shape == (896, 4)
    for card_path in SHIPPED.glob("*.json"):
        card = json.loads(card_path.read_text(encoding="utf-8"))
        assert card["kind"] == "face_detector" and card["licence"] and card["limits"] and card["training_data"]
        assert (SHIPPED / card["weights_file"]).is_file()
        assert card["scores_on_unseen_data"]["results"]
    assert (SHIPPED / "LICENSE.blazeface").is_file() and (SHIPPED / "LICENSE.mtcnn").is_file()


# ---------------------------------------------------------------- model files


def test_missing_and_bad_model_files_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="weights not found"):
        create_detector("blazeface-back", model_path=tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="not a safetensors file") as info:
        create_detector("blazeface-front", model_path=junk)
    assert "\n" not in str(info.value)
    # The right format but another network's tensors.
    with pytest.raises(ConfigError, match="do not fit"):
        create_detector("blazeface-front", model_path=SHIPPED / "blazeface_back.safetensors")
    with pytest.raises(ConfigError, match="folder not found"):
        create_detector("mtcnn", model_path=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="folder not found"):
        create_detector("blazeface", model_path=junk)
    with pytest.raises(ConfigError, match="weights not found"):
        create_detector("mtcnn", model_path=tmp_path)  # a folder without the three files


def test_a_changed_shipped_file_is_refused(tmp_path):
    copy = tmp_path / "fd"
    shutil.copytree(SHIPPED, copy)
    card = json.loads((copy / "mtcnn_rnet.json").read_text())
    card["sha256"] = "0" * 64
    (copy / "mtcnn_rnet.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="sha256 does not match"):
        create_detector("mtcnn", model_path=copy)


def test_a_copied_model_folder_works(tmp_path, astronaut):
    copy = tmp_path / "fd"
    shutil.copytree(SHIPPED, copy)
    assert create_detector("blazeface", model_path=copy).detect(astronaut)
    assert create_detector("blazeface-back", model_path=copy / "blazeface_back.safetensors").detect(astronaut)


# ---------------------------------------------------------------- CLI


def test_scan_and_explain_take_detector_and_detector_model(tmp_path, checkpoints, capsys):  # noqa: F811
    model = tmp_path / "bf.safetensors"
    shutil.copyfile(SHIPPED / "blazeface_back.safetensors", model)
    scan_and_explain_with_detector(
        checkpoints["real"], tmp_path / "x", capsys,
        scan=["--detector", "blazeface-back", "--detector-model", str(model)],
        explain=["--detector", "mtcnn", "--detector-model", str(SHIPPED)],
    )


@pytest.mark.parametrize("command", ("scan", "explain"))
def test_yunet_model_file_reaches_the_detector_in_scan_and_explain(command, tmp_path, checkpoints, capsys):  # noqa: F811
    # No YuNet model ships; a junk file proves --detector-model reaches OpenCV's loader.
    junk = tmp_path / "yunet.onnx"
    junk.write_bytes(b"not onnx")
    args = [command, str(FACE_IMAGE)] if command == "scan" else [command, "--gradcam", str(FACE_IMAGE)]
    code, out, err = run_cli(args + ["--weights", str(checkpoints["real"]), "--detector", "yunet", "--detector-model", str(junk)], capsys)
    assert code == 3
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(junk) in lines[0] and "YuNet" in lines[0]
    assert "Traceback" not in err


def test_extract_rejects_a_missing_detector_model_before_any_video(tmp_path, face_video, capsys):
    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        shutil.copyfile(face_video, data / label / "v.mp4")
    code, out, err = run_cli(
        ["extract", str(data), "--out", str(tmp_path / "cache"), "--layout", "folder", "--detector", "mtcnn",
         "--detector-model", str(tmp_path / "nowhere")], capsys,
    )
    assert code == 3 and "MTCNN model folder not found" in err and "Traceback" not in err
    assert not (tmp_path / "cache" / "crops").exists()


def test_unknown_detector_is_a_usage_error(capsys):
    code, out, err = run_cli(["scan", str(FACE_IMAGE), "--detector", "retinaface"], capsys)
    assert code == 2 and "blazeface" in err


def test_face_detectors_are_found_when_ddtool_weights_points_elsewhere(tmp_path, monkeypatch, astronaut):
    # $DDTOOL_WEIGHTS may hold deepfake models only; the checkout's face detectors still load.
    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))
    assert create_detector("blazeface").detect(astronaut)
