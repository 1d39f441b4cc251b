"""The report's evidence faces: which crops are shown, and their pictures from the scan's one decode.

The most and least suspicious EVIDENCE_CROPS faces of an input are kept
with the crop the model scored, the same region at the face's own
resolution and a thumbnail of the frame (report.html, Grad-CAM).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Crops kept per input for the report's "most / least suspicious" galleries.
EVIDENCE_CROPS = 4
# Evidence crops are shown at the face's own resolution, capped so a 4K face stays a small report.
NATIVE_CROP_MAX = 512
THUMB_WIDTH = 480


@dataclass
class FaceEvidence:
    """A scored crop kept for the report (not serialised)."""

    frame_index: int
    timestamp: float
    track_id: int
    score: float
    image: np.ndarray  # the crop the model scored (its input size)
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    native: np.ndarray | None = None  # same region at the face's own resolution (capped at NATIVE_CROP_MAX)
    thumb: np.ndarray | None = None  # the whole frame, THUMB_WIDTH wide at most
    thumb_scale: float = 1.0  # thumb pixels per frame pixel


def pick_evidence(crops: list, view: str | None = None) -> list[FaceEvidence]:
    if not crops:
        return []
    order = sorted(range(len(crops)), key=lambda i: -float(crops[i][1]))
    keep = order[:EVIDENCE_CROPS] + [i for i in order[-EVIDENCE_CROPS:] if i not in order[:EVIDENCE_CROPS]]
    return [
        FaceEvidence(
            crops[i][0].frame_index, float(crops[i][0].timestamp), int(crops[i][0].track_id), float(crops[i][1]),
            crops[i][0].views.get(view, crops[i][0].image),
            box=tuple(float(v) for v in box_tuple(crops[i][0].box)),
        )
        for i in keep
    ]


class EvidenceImages:
    """Native-resolution crops and frame thumbnails for the report, cut during the one decode.

    Faces are numbered in scan order. Once a chunk of scores is back, faces
    that can no longer be among the most or least suspicious EVIDENCE_CROPS
    lose their images, so memory stays bounded by the faces still being scored.
    """

    def __init__(self, margin: float):
        self.margin = margin
        self.kept: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}  # face number -> (native, thumb, scale)
        self.scores: list[float] = []  # panel scores of faces 0, 1, ... as their chunks come back
        self.chunks_read = 0

    def add(self, frame, crops: list, first: int) -> None:
        import cv2

        from ddtool.media.faces import crop_face

        height, width = frame.image.shape[:2]
        scale = min(1.0, THUMB_WIDTH / width)
        thumb = cv2.resize(frame.image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        for k, crop in enumerate(crops):
            side = int(round(max(crop.box.width, crop.box.height) * (1.0 + self.margin)))
            native = crop_face(frame.image, crop.box, margin=self.margin, size=int(min(NATIVE_CROP_MAX, max(8, side))))
            self.kept[first + k] = (native, thumb, scale)

    def prune(self, pending: list) -> None:
        """Drop the images of scored faces outside the current top and bottom EVIDENCE_CROPS.

        `pending` holds the scorer's futures in submission order; only newly finished ones are read.
        """
        before = self.chunks_read
        while self.chunks_read < len(pending) and pending[self.chunks_read].done():
            self.scores += [fused for _, fused in pending[self.chunks_read].result()]
            self.chunks_read += 1
        if self.chunks_read == before or len(self.scores) <= 2 * EVIDENCE_CROPS:
            return
        order = sorted(range(len(self.scores)), key=lambda i: -self.scores[i])
        keep = set(order[:EVIDENCE_CROPS]) | set(order[-EVIDENCE_CROPS:])
        for number in [n for n in self.kept if n < len(self.scores) and n not in keep]:
            del self.kept[number]

    def attach(self, evidence: list[FaceEvidence], face_crops: list) -> None:
        numbers = {(c.frame_index, c.track_id): n for n, c in enumerate(face_crops)}
        for e in evidence:
            found = self.kept.get(numbers.get((e.frame_index, e.track_id), -1))
            if found is not None:
                e.native, e.thumb, e.thumb_scale = found


def box_tuple(box) -> tuple[float, float, float, float]:
    return (box.x0, box.y0, box.x1, box.y1)
