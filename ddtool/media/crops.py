"""Crop styles: how a face is cut out of a frame the way a detector learned it.

- "box": ddtool's square around the detector's box, side max(w, h) * (1 + margin)
  (media.faces.crop_face).
- "mesonet_aligned": the MesoNet authors' alignment (their pipeline.py
  `find_coordinates` + `get_aligned_face`, re-implemented): from 68-point
  landmarks, centre C = mean of nose tip and nose bridge; side
  l = int(K * max(|eye1 - eye2|, |mouth - eyes|)) * 1.3 with K = 2.2; the
  face turned upright by the angle of the eyes->mouth line from vertical; the
  l x l square around C, reflected where it leaves the frame. The landmarks
  come from dlib's 68-point predictor (the model face_recognition uses, as
  the authors did) run inside the detector's box.
- "mesonet_aligned5": the same geometry from the face detector's own 5
  landmarks (CenterFace, MTCNN: eyes, nose, mouth corners), no second
  landmark model; 68 points where the detector gives no 5. Close to the
  68-point crop but not close enough for the authors' weights
  (docs/weights.md), so their cards keep "mesonet_aligned".
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ddtool.errors import ConfigError
from ddtool.media.faces import Box, crop_face

CROP_STYLES = ("box", "mesonet_aligned", "mesonet_aligned5")
MESONET_K = 2.2  # side = K * max(eye distance, eyes-mouth distance) ...
MESONET_ZOOM = 1.3  # ... times their `l_factor`
_INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}

# iBUG 68-point indices of the regions face_recognition names (its lip lists repeat some points; kept, so means match).
EYE_A = list(range(36, 42))
EYE_B = list(range(42, 48))
NOSE_BRIDGE = list(range(27, 31))
NOSE_TIP = list(range(31, 36))
TOP_LIP = list(range(48, 55)) + [64, 63, 62, 61, 60]
BOTTOM_LIP = list(range(54, 60)) + [48, 60, 67, 66, 65, 64]


def mesonet_geometry(points: np.ndarray) -> tuple[float, float, float, float]:
    """(centre x, centre y, side, rotation in degrees) of the authors' crop from (68, 2) landmarks."""
    points = np.asarray(points, np.float64)
    if points.shape != (68, 2):
        raise ConfigError(f"the mesonet_aligned crop needs 68 landmarks, got an array of shape {points.shape}")
    e1, e2 = points[EYE_A].mean(0), points[EYE_B].mean(0)
    centre = points[NOSE_TIP].mean(0) / 2 + points[NOSE_BRIDGE].mean(0) / 2
    mouth = (points[TOP_LIP].mean(0) + points[BOTTOM_LIP].mean(0)) / 2
    return _mesonet_square(e1, e2, centre, mouth)


def _mesonet_square(e1: np.ndarray, e2: np.ndarray, centre: np.ndarray, mouth: np.ndarray) -> tuple[float, float, float, float]:
    """The authors' rule from eye centres, centre point and mouth centre: (cx, cy, side, rotation)."""
    eyes = (e1 + e2) / 2
    side = int(max(np.linalg.norm(e1 - e2), np.linalg.norm(mouth - eyes)) * MESONET_K) * MESONET_ZOOM
    dy = mouth[1] - eyes[1]
    # Angle of the eyes->mouth line from the vertical (image y points down).
    rotation = (90.0 if mouth[0] > eyes[0] else -90.0) if dy == 0 else math.degrees(math.atan((mouth[0] - eyes[0]) / dy))
    return float(math.floor(centre[0])), float(math.floor(centre[1])), float(side), float(rotation)


# From 5 detector landmarks (CenterFace/MTCNN order: eyes, nose, mouth corners): the authors'
# centre point and mouth centre as eyes + k * (nose or mouth corners - eyes), k fitted against
# dlib's 68 points on realfaces train photos (benchmarks/mesonet_5pt.py, docs/weights.md).
MESONET_5PT_ALPHA = 0.8716
MESONET_5PT_GAMMA = 1.0521


def mesonet_geometry_5(points: np.ndarray, alpha: float | None = None, gamma: float | None = None) -> tuple[float, float, float, float]:
    """mesonet_geometry from 5 landmarks (right_eye, left_eye, nose, mouth_right, mouth_left) instead of 68."""
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2):
        raise ConfigError(f"the 5-point mesonet geometry needs 5 landmarks, got an array of shape {points.shape}")
    alpha = MESONET_5PT_ALPHA if alpha is None else alpha
    gamma = MESONET_5PT_GAMMA if gamma is None else gamma
    e1, e2 = points[0], points[1]
    eyes = (e1 + e2) / 2
    return _mesonet_square(e1, e2, eyes + alpha * (points[2] - eyes), eyes + gamma * ((points[3] + points[4]) / 2 - eyes))


def aligned_crop(rgb: np.ndarray, points: np.ndarray, size: int, interpolation: str = "nearest") -> np.ndarray:
    """The authors' upright square face crop, resized to size x size (from 68 landmarks, or 5: mesonet_geometry_5)."""
    cx, cy, side, rotation = mesonet_geometry_5(points) if len(points) == 5 else mesonet_geometry(points)
    native = max(2, 2 * int(side // 2))
    # Rotate the frame about C by -rotation (upright) and move C to the centre of a native x native square.
    matrix = cv2.getRotationMatrix2D((cx, cy), -rotation, 1.0)
    matrix[:, 2] += (native / 2.0 - cx, native / 2.0 - cy)
    if interpolation == "nearest" and native > size:
        # Warp then nearest-resize, in one pass: the nearest resize keeps native pixel
        # floor(i * native / size) for output pixel i, so only those are warped
        # (3x to 7x fewer pixels than the native square at 720p-1080p; values within 1 of the two-step result).
        return _warp_nearest(rgb, matrix, native, size)
    face = cv2.warpAffine(rgb, matrix, (native, native), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    if native == size:
        return face
    flag = _INTERPOLATION.get(interpolation, cv2.INTER_AREA if native > size else cv2.INTER_CUBIC)
    return cv2.resize(face, (size, size), interpolation=flag)


def _warp_nearest(rgb: np.ndarray, matrix: np.ndarray, native: int, size: int) -> np.ndarray:
    """cv2.warpAffine to native x native, then cv2.resize INTER_NEAREST to size x size, computed at size x size."""
    # OpenCV's nearest resize: source index floor(i * native / size), capped at native - 1.
    picks = np.minimum(np.floor(np.arange(size) * (native / size)), native - 1).astype(np.float32)
    inverse = cv2.invertAffineTransform(matrix)  # output (native) pixel -> frame pixel
    px, py = np.meshgrid(picks, picks)
    map_x = (inverse[0, 0] * px + inverse[0, 1] * py + inverse[0, 2]).astype(np.float32)
    map_y = (inverse[1, 0] * px + inverse[1, 1] * py + inverse[1, 2]).astype(np.float32)
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def crop_in_style(rgb: np.ndarray, box: Box, style: str, margin: float, size: int, interpolation: str = "auto") -> np.ndarray:
    """A face crop cut in `style` (see CROP_STYLES)."""
    if style == "box":
        return crop_face(rgb, box, margin=margin, size=size)
    if style == "mesonet_aligned5" and box.landmarks is not None and len(box.landmarks) == 5:
        return aligned_crop(rgb, np.asarray(box.landmarks, np.float64), size, interpolation)
    if style in ("mesonet_aligned", "mesonet_aligned5"):  # aligned5 without the detector's 5 points: the 68-point model
        from ddtool.media.landmarks import landmarks_68

        points = landmarks_68(rgb, (box.x0, box.y0, box.x1, box.y1))
        return aligned_crop(rgb, points, size, interpolation)
    raise ConfigError(f"crop style {style!r} unknown; choose one of {', '.join(CROP_STYLES)}")


def view_cropper(view: tuple[str, float, int, str]):
    """A (rgb, box) -> crop function for a Preprocess.view (style, margin, size, interpolation)."""
    style, margin, size, interpolation = view
    if style not in CROP_STYLES:
        raise ConfigError(f"crop style {style!r} unknown; choose one of {', '.join(CROP_STYLES)}")
    if style in ("mesonet_aligned", "mesonet_aligned5"):
        from ddtool.media.landmarks import preload_predictor

        preload_predictor()  # aligned crops need the 68-point model (aligned5 when the detector gives no 5 points)

    def crop(rgb: np.ndarray, box: Box) -> np.ndarray:
        return crop_in_style(rgb, box, style, margin, size, interpolation)

    return crop
