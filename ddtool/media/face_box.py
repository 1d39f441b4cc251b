"""The face detector contract: a face box (with optional landmarks), the detector base class, and where shipped detector weights live.

A module of its own so every detector family (dlib and OpenCV ones in
ddtool.media.faces, CenterFace in ddtool.media.centerface) builds on it
without importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ddtool.errors import ConfigError, InputError


@dataclass(frozen=True)
class Box:
    """Face box in pixel coordinates (x1, y1 exclusive) with the detector's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    # (x, y) points in the same coordinates, named by the detector's
    # `landmark_names`; None when the detector gives none (hog, cnn).
    landmarks: tuple[tuple[float, float], ...] | None = None

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
        return self.mapped(factor, factor)

    def mapped(self, scale_x: float, scale_y: float, dx: float = 0.0, dy: float = 0.0) -> "Box":
        """The box (and its landmarks) in another image: x * scale_x + dx, y * scale_y + dy."""
        points = None
        if self.landmarks is not None:
            points = tuple((x * scale_x + dx, y * scale_y + dy) for x, y in self.landmarks)
        return replace(
            self, x0=self.x0 * scale_x + dx, y0=self.y0 * scale_y + dy, x1=self.x1 * scale_x + dx,
            y1=self.y1 * scale_y + dy, landmarks=points,
        )

    def clipped(self, width: int, height: int) -> "Box":
        """The part of the box inside a width x height frame (dlib boxes can stick out); landmarks are kept."""
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
    # Names of the points in Box.landmarks, in order ("right"/"left" = the
    # person's own, so "right_eye" is on the image's left); empty: no landmarks.
    landmark_names: tuple[str, ...] = ()

    def __init__(self, max_side: int | None = 640, min_score: float = 0.0):
        if not isinstance(min_score, (int, float)) or isinstance(min_score, bool):
            raise ConfigError(f"min_score must be a number, got {min_score!r}")
        self.min_score = float(min_score)
        if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 32):
            raise ConfigError(f"max_side must be an integer >= 32 (or None for full resolution), got {max_side!r}")
        self.max_side = max_side

    # Set by `coarse_first`: detect at this longer side first and at max_side only where it finds nothing.
    first_side: int | None = None
    # False for detectors that letterbox to their own input size (BlazeFace): coarse_first does nothing.
    downscales = True

    def coarse_first(self, side: int | None) -> "FaceDetector":
        """Detect at `side` first, at max_side only where that finds no face (None: off).

        For callers that keep the largest face of a frame (scan): a face big
        enough to matter is found at the small size for a fraction of the
        cost, and a frame of small faces still gets the full search. Not for
        collecting every face: a small face beside a big one is missed.
        """
        if side is not None and (isinstance(side, bool) or not isinstance(side, int) or side < 32):
            raise ConfigError(f"coarse side must be an integer >= 32 (or None), got {side!r}")
        wanted = side is not None and self.downscales and (self.max_side is None or side < self.max_side)
        self.first_side = side if wanted else None
        return self

    def detect(self, rgb: np.ndarray) -> list[Box]:
        """Faces in an RGB uint8 frame, full-frame coordinates, highest score first."""
        rgb = _check_rgb(rgb)
        if self.first_side is not None:
            boxes = self._detect_at(rgb, self.first_side)
            # A frame no bigger than the coarse size was already searched at full resolution.
            if boxes or max(rgb.shape[:2]) <= self.first_side:
                return boxes
        return self._detect_at(rgb, self.max_side)

    def _detect_at(self, rgb: np.ndarray, max_side: int | None) -> list[Box]:
        height, width = rgb.shape[:2]
        longer = max(height, width)
        scale = 1.0
        small = rgb
        if max_side is not None and longer > max_side:
            scale = max_side / longer
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            # INTER_AREA averages pixels: no aliasing that could hide faces.
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            scale_x, scale_y = width / size[0], height / size[1]
        boxes = self._detect_small(np.ascontiguousarray(small))
        if scale != 1.0:
            boxes = [b.mapped(scale_x, scale_y) for b in boxes]
        boxes = [b.clipped(width, height) for b in boxes]
        boxes = [b for b in boxes if b.area > 0 and b.score >= self.min_score]
        return sorted(boxes, key=lambda b: b.score, reverse=True)

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        raise NotImplementedError


def face_detector_weights_dir() -> Path:
    """Where the shipped CNN face detector weights live: `face_detectors/` of the weights folder.

    A subfolder, so `ddtool weights` (which reads the folder's own cards)
    never takes a face detector for a deepfake detector.
    """
    # Lazy: ddtool.weights only needs errors/io at import time; this reuses
    # its one rule for where the weights folder is ($DDTOOL_WEIGHTS, checkout, prefix).
    from ddtool.locations import shipped_weights_dir

    folder = shipped_weights_dir() / "face_detectors"
    # A $DDTOOL_WEIGHTS folder of deepfake models only: the checkout's face detectors still serve.
    checkout = Path(__file__).resolve().parents[2] / "weights" / "face_detectors"
    return folder if folder.is_dir() or not checkout.is_dir() else checkout


def _check_card_sha256(path: Path) -> None:
    """A shipped weights file has a card NAME.json beside it: its sha256 must match (a changed file is refused)."""
    import json

    from ddtool.io import sha256_file

    card = path.with_suffix(".json")
    if not (path.is_file() and card.is_file()):
        return
    try:
        expected = json.loads(card.read_text(encoding="utf-8")).get("sha256")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise ConfigError(f"{card}: the card beside {path.name} is not readable JSON; restore it from the repository") from None
    if expected and sha256_file(path) != expected:
        raise ConfigError(f"{path}: sha256 does not match {card.name} (file changed or corrupt); restore it from the repository")


def box_iou(box: np.ndarray, boxes: np.ndarray, mode: str = "union") -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of `boxes` ("min": over the smaller area)."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = max(box[2] - box[0], 0) * max(box[3] - box[1], 0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    denom = np.minimum(area, areas) if mode == "min" else area + areas - inter
    return inter / np.maximum(denom, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        order = order[1:][box_iou(boxes[i], boxes[order[1:]], mode) <= threshold]
    return np.asarray(keep, dtype=np.int64)
