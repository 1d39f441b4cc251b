"""Face detection, crops and tracks (ddtool.media.faces)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import FACE_IMAGE
from ddtool.errors import ConfigError, InputError
from ddtool.media.faces import Box, FaceDetector, FaceExtractor, IoUTracker, create_detector, crop_face
from ddtool.media.video import Frame, read_frames

# The astronaut's head in examples/astronaut.jpg (512x512), without the
# mission patch on her chest, which HOG takes for a weak face.
HEAD = (120, 20, 320, 220)


@pytest.fixture(scope="module")
def hog():
    return create_detector("hog")


@pytest.fixture(scope="module")
def head_rgb() -> np.ndarray:
    x0, y0, x1, y1 = HEAD
    return cv2.imread(str(FACE_IMAGE))[y0:y1, x0:x1, ::-1].copy()


# ---------------------------------------------------------------- Box


def test_box_geometry_and_iou():
    a = Box(0, 0, 10, 20, 0.9)
    b = Box(5, 0, 15, 20)
    assert (a.width, a.height, a.area, a.center) == (10, 20, 200, (5, 10))
    assert a.iou(b) == pytest.approx(100 / 300)
    assert a.iou(a) == 1.0 and a.iou(Box(50, 50, 60, 60)) == 0.0
    assert a.scaled(2.0) == Box(0, 0, 20, 40, 0.9)
    assert Box(-5, -5, 30, 8).clipped(20, 10) == Box(0, 0, 20, 8)


# ---------------------------------------------------------------- crops


def _marked_frame() -> tuple[np.ndarray, Box]:
    """100x120 black frame with a white 20x40 'face' whose box touches the left edge."""
    rgb = np.full((100, 120, 3), 60, np.uint8)
    rgb[30:70, 0:20] = 255
    return rgb, Box(0, 30, 20, 70)


def test_crop_without_margin_is_the_face_square_padded_at_the_edge():
    rgb, box = _marked_frame()
    crop = crop_face(rgb, box, size=40)
    # side = 40 centred on x=10: columns -10..30, 10 padded black columns on the left.
    assert crop.shape == (40, 40, 3) and crop.dtype == np.uint8
    assert (crop[:, :10] == 0).all()
    assert (crop[:, 10:30] == 255).all()
    assert (crop[:, 30:] == 60).all()


def test_crop_margin_widens_the_square():
    rgb, box = _marked_frame()
    crop = crop_face(rgb, box, margin=1.0, size=80)  # side 80: columns -30..50, rows 10..90
    assert crop.shape == (80, 80, 3)
    assert (crop[:, :30] == 0).all()
    assert (crop[20:60, 30:50] == 255).all()
    assert (crop[:20, 30:50] == 60).all() and (crop[60:, 30:50] == 60).all()


def test_crop_replicate_border_and_resize():
    rgb, box = _marked_frame()
    crop = crop_face(rgb, box, size=256, border="replicate")
    assert crop.shape == (256, 256, 3)
    assert crop[128, 5].tolist() == [255, 255, 255]  # the edge column repeated, not black


def test_crop_box_fully_outside_frame_is_all_padding():
    crop = crop_face(np.full((50, 50, 3), 200, np.uint8), Box(100, 100, 120, 120), size=16)
    assert crop.shape == (16, 16, 3) and (crop == 0).all()


@pytest.mark.parametrize("kwargs", [dict(margin=-0.1), dict(size=0), dict(border="wrap")])
def test_crop_bad_options_are_config_errors(kwargs):
    rgb, box = _marked_frame()
    with pytest.raises(ConfigError):
        crop_face(rgb, box, **kwargs)


# ---------------------------------------------------------------- detectors


def test_hog_finds_the_face_in_every_frame_of_face_video(face_video, hog):
    for frame in read_frames(face_video, [0, 14, 29]):
        boxes = hog.detect(frame.image)
        assert boxes, f"no face in frame {frame.index}"
        best = boxes[0]
        # conftest pastes the 200x200 portrait at (40 + i % 20, 20 + i % 10); the
        # face sits about (109..146, 50..87) inside it for frame 0.
        dx, dy = frame.index % 20, frame.index % 10
        assert best.iou(Box(109 + dx, 50 + dy, 146 + dx, 87 + dy)) > 0.5


def test_hog_finds_nothing_in_noise(noface_video, hog):
    for frame in read_frames(noface_video, [0, 10, 19]):
        assert hog.detect(frame.image) == []


def test_boxes_from_downscaled_frame_map_back_to_full_resolution(face_image):
    rgb = cv2.imread(str(face_image))[:, :, ::-1]
    big = cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    full = create_detector("hog", max_side=None, upsample=0, min_score=0.5).detect(big)
    small = create_detector("hog", max_side=400, upsample=1, min_score=0.5).detect(big)
    assert len(full) == 1 and len(small) == 1
    assert full[0].iou(small[0]) > 0.6
    # The full-res head box lies in the top half of the image, and so must the mapped one.
    assert 300 < small[0].center[0] < 560 and 100 < small[0].center[1] < 400


def test_8k_frame_is_downscaled_and_detected(head_rgb):
    frame = np.full((4320, 7680, 3), 90, np.uint8)
    frame[1000:3000, 3000:5000] = cv2.resize(head_rgb, (2000, 2000), interpolation=cv2.INTER_LINEAR)
    boxes = create_detector("hog", max_side=640).detect(frame)
    assert boxes
    x, y = boxes[0].center
    assert 3000 < x < 5000 and 1000 < y < 3000


def test_detect_rejects_non_rgb_input(hog):
    with pytest.raises(InputError, match="RGB uint8"):
        hog.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="RGB uint8"):
        hog.detect(np.zeros((10, 10, 3), np.float32))


def test_detector_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="unknown face detector"):
        create_detector("retinaface")
    with pytest.raises(ConfigError, match="max_side"):
        create_detector("hog", max_side=8)
    with pytest.raises(ConfigError, match="upsample"):
        create_detector("hog", upsample=9)
    with pytest.raises(ConfigError, match="no model file"):
        create_detector("hog", model_path=tmp_path / "x.dat")


def test_cnn_detector_loads_default_model_and_rejects_bad_paths(tmp_path):
    assert create_detector("cnn").model_path.is_file()
    with pytest.raises(ConfigError, match="not found"):
        create_detector("cnn", model_path=tmp_path / "missing.dat")
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="not a dlib MMOD model"):
        create_detector("cnn", model_path=junk)


def test_yunet_without_model_file_explains_where_to_get_one(tmp_path):
    with pytest.raises(ConfigError, match="opencv_zoo"):
        create_detector("yunet")
    with pytest.raises(ConfigError, match="not found.*opencv_zoo"):
        create_detector("yunet", model_path=tmp_path / "yunet.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(ConfigError, match="cannot load"):
        create_detector("yunet", model_path=junk)


# ---------------------------------------------------------------- tracking and extraction


def test_tracker_matches_by_iou_and_opens_new_tracks():
    tracker = IoUTracker(iou_threshold=0.3)
    assert tracker.assign([Box(0, 0, 10, 10), Box(100, 0, 110, 10)]) == [0, 1]
    # Same faces, listed in the other order and moved a little.
    assert tracker.assign([Box(102, 1, 112, 11), Box(1, 1, 11, 11)]) == [1, 0]
    # A face far from both tracks starts track 2; track 0 is simply not seen.
    assert tracker.assign([Box(50, 50, 60, 60), Box(103, 2, 113, 12)]) == [2, 1]
    # Track 0 did not expire.
    assert tracker.assign([Box(0, 0, 10, 10)]) == [0]


def _two_faces(n: int, head_rgb: np.ndarray) -> list[Frame]:
    frames = []
    for i in range(n):
        canvas = np.full((240, 480, 3), 90, np.uint8)
        canvas[20 + i : 220 + i, 10 + 2 * i : 210 + 2 * i] = head_rgb
        canvas[30 - i : 230 - i, 260 - 2 * i : 460 - 2 * i] = head_rgb
        frames.append(Frame(i, i / 25.0, canvas))
    return frames


def test_track_ids_stable_for_two_faces_side_by_side(hog, head_rgb):
    extractor = FaceExtractor(hog, size=64, all_faces=True)
    crops = extractor.extract_frames(_two_faces(5, head_rgb))
    assert len(crops) == 10
    left = {c.track_id for c in crops if c.box.center[0] < 240}
    right = {c.track_id for c in crops if c.box.center[0] >= 240}
    assert len(left) == 1 and len(right) == 1 and left != right
    assert all(c.image.shape == (64, 64, 3) for c in crops)
    assert sorted({c.frame_index for c in crops}) == [0, 1, 2, 3, 4]


def test_default_keeps_only_the_largest_face(hog, head_rgb):
    canvas = np.full((300, 520, 3), 90, np.uint8)
    canvas[20:220, 10:210] = head_rgb
    canvas[20:300, 230:510] = cv2.resize(head_rgb, (280, 280))
    crops = FaceExtractor(hog, size=32).extract_frames([Frame(0, 0.0, canvas)])
    assert len(crops) == 1 and crops[0].box.center[0] > 230 and crops[0].track_id == 0


def test_extract_from_video_file(face_video, hog):
    with pytest.warns(UserWarning, match="past the end"):
        crops = FaceExtractor(hog, size=128, margin=0.3).extract(face_video, [0, 15, 29, 40])
    assert [c.frame_index for c in crops] == [0, 15, 29]
    assert {c.track_id for c in crops} == {0}
    assert crops[1].timestamp == pytest.approx(15 / 25.0)
    for crop in crops:
        assert crop.image.shape == (128, 128, 3) and crop.image.dtype == np.uint8


def test_extract_from_video_without_faces_is_empty(noface_video, hog):
    assert FaceExtractor(hog).extract(noface_video, [0, 5]) == []


def test_extract_from_image(face_image):
    detector = create_detector("hog", min_score=0.5)
    crops = FaceExtractor(detector, size=256).extract(face_image, [0])
    assert len(crops) == 1 and crops[0].frame_index == 0
    assert crops[0].box.iou(Box(175, 76, 266, 167)) > 0.7


def test_extractor_validates_its_options(hog):
    with pytest.raises(ConfigError):
        FaceExtractor(hog, size=2)
    with pytest.raises(ConfigError):
        FaceExtractor("hog")


class _SizeRecorder(FaceDetector):
    """Finds a face only in detection images at least `needs` px long, and records the sizes it was given."""

    name = "recorder"

    def __init__(self, needs: int, max_side: int | None = 640):
        super().__init__(max_side=max_side)
        self.needs, self.seen = needs, []

    def _detect_small(self, rgb):
        self.seen.append(max(rgb.shape[:2]))
        return [Box(10, 10, 40, 40, 1.0)] if max(rgb.shape[:2]) >= self.needs else []


def test_coarse_first_tries_the_small_size_and_falls_back_to_the_full_search():
    frame = np.zeros((720, 1280, 3), np.uint8)
    found_small = _SizeRecorder(needs=0).coarse_first(320)
    boxes = found_small.detect(frame)
    assert found_small.seen == [320] and boxes and boxes[0].x0 == pytest.approx(40.0)  # mapped back by 1280 / 320
    needs_full = _SizeRecorder(needs=640).coarse_first(320)
    assert needs_full.detect(frame) and needs_full.seen == [320, 640]
    nothing = _SizeRecorder(needs=10_000).coarse_first(320)
    assert nothing.detect(frame) == [] and nothing.seen == [320, 640]
    small = _SizeRecorder(needs=10_000).coarse_first(320)  # a frame no bigger than the coarse size: one search
    assert small.detect(np.zeros((240, 320, 3), np.uint8)) == [] and small.seen == [320]
    # Off: one search at max_side; a coarse side at or above max_side is no coarse pass.
    assert _SizeRecorder(needs=0).coarse_first(None).first_side is None
    assert _SizeRecorder(needs=0, max_side=320).coarse_first(480).first_side is None
    with pytest.raises(ConfigError, match="coarse side"):
        _SizeRecorder(needs=0).coarse_first(8)


def test_scan_detector_is_coarse_first_only_when_one_face_per_frame_is_kept():
    from ddtool.media.faces import SCAN_COARSE_SIDE, scan_face_detector

    assert scan_face_detector("centerface").first_side == SCAN_COARSE_SIDE
    assert scan_face_detector("centerface", all_faces=True).first_side is None
    assert scan_face_detector("blazeface").first_side is None  # letterboxes to its own input: no coarse pass
    assert scan_face_detector("hog").first_side is None  # the papers' search, unchanged
