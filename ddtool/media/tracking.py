"""Face tracks across sampled frames: greedy IoU matching of each frame's boxes to the tracks so far.

Incremental (one frame at a time), so scan can track while frames are still
being decoded and detected.
"""

from __future__ import annotations

from ddtool.errors import ConfigError
from ddtool.media.face_box import Box

# Boxes of the same identity in consecutive sampled frames overlap at least
# this much (IoU); see docs/media.md "Tracking".
TRACK_IOU_THRESHOLD = 0.3


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
