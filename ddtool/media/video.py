"""Probe videos and images, choose frame indices, decode only those frames.

Everything returned is RGB uint8 (H, W, 3); OpenCV's BGR stays inside this
module. Images are inputs too: a one-frame "video".
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

# FFmpeg's own log lines about a corrupt file ("moov atom not found") would
# clutter stderr; ddtool reports such files as one-line errors. A user can
# still set the variable to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

from ddtool.errors import ConfigError, InputError
from ddtool.media.native_stderr import captured_native_stderr

# Gaps (in frames) up to this size are crossed with grab() instead of a seek.
# A seek makes FFmpeg flush the decoder and decode forward from the previous
# keyframe, so it only pays off when the gap is longer than the typical
# keyframe distance; benchmarks/media_speed.py measures both paths.
SEEK_MIN_GAP = 48

# CAP_PROP_FRAME_COUNT above this is treated as bogus (some containers report
# garbage such as 2**63 or negative values); we count by grabbing instead.
_MAX_PLAUSIBLE_FRAMES = 50_000_000


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int
    fps: float  # 0.0 when the container does not say; timestamps are then NaN
    duration: float  # seconds; 0.0 for images and when fps is unknown
    width: int
    height: int
    is_image: bool
    # True when CAP_PROP_FRAME_COUNT was unusable and frames were counted by grabbing.
    counted_by_grabbing: bool = False


@dataclass(frozen=True)
class Frame:
    index: int
    timestamp: float  # seconds from the start (index / fps); NaN when fps is unknown
    image: np.ndarray  # RGB uint8 (H, W, 3)


# ---------------------------------------------------------------- sampling

# (interval, frames) per dataset and class, from the papers' protocols:
# SFIConv / LDFnet sec. IV-A (N_iter, N_frames) and the DFDC student study
# (20 faces per video; see docs/media.md for why it is evenly spaced).
# interval None = `frames` evenly spaced over the whole video.
PRESETS: dict[str, dict[str, tuple[int | None, int]]] = {
    "ffpp": {"real": (2, 50), "fake": (2, 16)},
    "dfdc": {"real": (2, 35), "fake": (10, 5)},
    "celebdf": {"real": (2, 100), "fake": (2, 16)},
    "dfdc-seed": {"real": (None, 20), "fake": (None, 20)},
}

_LABEL_NAMES = {0: "real", 1: "fake", "real": "real", "fake": "fake"}


def preset_sampling(preset: str, label: int | str) -> tuple[int | None, int]:
    """(interval, frames) of a dataset protocol for one class (label 0/1 or "real"/"fake")."""
    key = preset.lower().replace("_", "-").replace("++", "pp")
    if key not in PRESETS:
        raise ConfigError(f"unknown sampling preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if label not in _LABEL_NAMES:
        raise ConfigError(f"unknown label {label!r} for preset {preset!r}; use 0/'real' or 1/'fake'")
    return PRESETS[key][_LABEL_NAMES[label]]


def sample_indices(frame_count: int, frames: int | None = None, interval: int | None = None) -> list[int]:
    """Frame indices to decode.

    - `frames` only: that many indices evenly spaced over the whole video
      (first and last frame included), rounded, duplicates removed.
    - `interval` and `frames`: 0, interval, 2*interval, ... `frames` of them,
      truncated where the video ends.
    - `interval` only: every interval-th frame of the whole video.
    - neither: every frame.
    """
    if isinstance(frame_count, bool) or not isinstance(frame_count, (int, np.integer)) or frame_count < 0:
        raise ConfigError(f"frame_count must be a non-negative integer, got {frame_count!r}")
    for name, value in (("frames", frames), ("interval", interval)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    frame_count = int(frame_count)
    if frame_count == 0:
        return []
    if interval is None and frames is None:
        return list(range(frame_count))
    if interval is None:
        if frames >= frame_count:
            return list(range(frame_count))
        return sorted({int(round(x)) for x in np.linspace(0, frame_count - 1, int(frames))})
    indices = range(0, frame_count, int(interval))
    return list(indices if frames is None else indices[: int(frames)])


# ---------------------------------------------------------------- probing

_IMAGE_SIGNATURES = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),
    (0, b"BM"),
    (0, b"II*\x00"),  # TIFF little-endian
    (0, b"MM\x00*"),  # TIFF big-endian
)


def _sniff_image(head: bytes) -> bool:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return any(head[offset : offset + len(sig)] == sig for offset, sig in _IMAGE_SIGNATURES)


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_file(path: Path) -> bytes:
    """Return the file's first bytes, or raise InputError saying why it cannot be used."""
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a video or image file")
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror}); check its permissions") from None
    if not head:
        raise InputError(f"{path}: the file is empty (0 bytes); re-copy or re-download it")
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        # OpenCV's binding crashes the process (segfault) on a name that is not valid UTF-8: refuse it here instead.
        shown = str(path).encode("utf-8", "backslashreplace").decode("ascii", "replace")
        raise InputError(f"{shown}: the file name is not valid UTF-8, which the decoder cannot open; copy or rename it "
                         "to a UTF-8 name and scan the copy (its sha256 stays the same)") from None
    return head


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any OpenCV-decoded BGR image (gray, BGRA, 16-bit, float) as RGB uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        # Float images (HDR, some TIFFs) are 0..1 by convention.
        image = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"unsupported pixel type {image.dtype}; convert the image to 8- or 16-bit")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 4:
        # Alpha is dropped: a face detector needs the colour, not the mask.
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8; InputError when it is truncated or corrupt.

    The decoder's own complaints (libjpeg's "Premature end of JPEG file",
    written from C to fd 2) become part of that error instead of a stray
    terminal line: a partly decoded image is grey where data is missing, and
    scoring it would judge the damage, not the face.
    """
    path = Path(path)
    # imdecode on the bytes (not imread on the name) so the decision is made
    # on content, and non-ASCII paths work on every OS. ANYCOLOR|ANYDEPTH
    # keeps 16-bit depth for a correct down-conversion and applies EXIF rotation.
    data = np.fromfile(str(path), dtype=np.uint8)
    with captured_native_stderr() as decoder:
        image = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    said = "; ".join(dict.fromkeys(decoder.lines))
    if image is None or image.size == 0 or said:
        detail = f" (decoder: {said})" if said else ""
        raise InputError(f"{path}: looks like an image but cannot be decoded whole: truncated or corrupt{detail}; re-copy the original file")
    return to_rgb_uint8(image)



def _usable_fps(value: float) -> float:
    return float(value) if math.isfinite(value) and 0.0 < value < 1000.0 else 0.0


def _count_by_grabbing(capture: cv2.VideoCapture) -> int:
    count = 0
    while capture.grab():
        count += 1
    return count


def _open_capture(path: Path, head: bytes | None = None) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        _raise_undecodable(path, head, "not a video or image OpenCV can open; convert it (e.g. ffmpeg -i IN OUT.mp4)")
    return capture


def _raise_undecodable(path: Path, head: bytes | None, fallback: str) -> None:
    """A known container header that yields nothing is a damaged file, not a format to convert."""
    from ddtool.media.container import diagnose_unopenable

    if head is None:
        with open(path, "rb") as handle:
            head = handle.read(64)
    raise InputError(f"{path}: {diagnose_unopenable(path, head) or fallback}")


def probe(path: str | os.PathLike, count_frames: bool = True) -> VideoInfo:
    """Frame count, fps, size of a video or image; InputError when it cannot be used.

    The kind is decided by the file's content (magic bytes), not its
    extension. A video must decode at least its first frame. When the
    container's frame count is missing or implausible, frames are counted by
    grabbing through the file once (slow for long videos, but exact);
    `count_frames=False` skips that (only checking the file can be used: its
    frame_count is then at least 1, not exact).
    """
    path = Path(path)
    head = _check_file(path)
    if _sniff_image(head):
        image = read_image(path)
        height, width = image.shape[:2]
        return VideoInfo(path, 1, 0.0, 0.0, width, height, is_image=True)
    if _looks_like_text(head):
        raise InputError(f"{path}: is a text file, not a video or image")

    capture = _open_capture(path, head)
    try:
        ok, first = capture.read()
        if not ok or first is None:
            _raise_undecodable(path, head, "no frame can be decoded; the file is corrupt or uses an unsupported codec")
        height, width = first.shape[:2]
        fps = _usable_fps(capture.get(cv2.CAP_PROP_FPS))
        reported = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        counted = False
        if math.isfinite(reported) and 1 <= reported <= _MAX_PLAUSIBLE_FRAMES:
            frame_count = int(reported)
        elif not count_frames:
            frame_count = 1
        else:
            frame_count = 1 + _count_by_grabbing(capture)
            counted = True
    finally:
        capture.release()
    duration = frame_count / fps if fps else 0.0
    return VideoInfo(path, frame_count, fps, duration, width, height, is_image=False, counted_by_grabbing=counted)


# ---------------------------------------------------------------- decoding


class FrameReader:
    """Iterator over the requested frames, ascending, decoded on demand.

    Holds one frame at a time, so memory does not depend on the video's
    length. Indices past the end of the video are not an error: they are
    collected in `skipped` (and a warning is issued at the end).

    Short gaps are crossed with grab() (decode without colour conversion);
    long gaps with a seek. Each seek is verified through CAP_PROP_POS_FRAMES;
    if the container does not land where asked, the reader reopens the file
    and falls back to sequential grabbing for the rest of the iteration
    (`seek_fallback` becomes True).
    """

    def __init__(self, path: str | os.PathLike, indices: Iterable[int], seek_min_gap: int = SEEK_MIN_GAP):
        self.path = Path(path)
        wanted = []
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
                raise ConfigError(f"frame indices must be non-negative integers, got {index!r}")
            wanted.append(int(index))
        self.indices = sorted(set(wanted))
        self.seek_min_gap = seek_min_gap
        self.skipped: list[int] = []
        self.seek_fallback = False
        self.info = probe(self.path)
        self._frames = self._generate()

    def __iter__(self) -> "FrameReader":
        return self

    def __next__(self) -> Frame:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()

    def _timestamp(self, index: int) -> float:
        if self.info.is_image:
            return 0.0
        return index / self.info.fps if self.info.fps else float("nan")

    def _generate(self) -> Iterator[Frame]:
        try:
            if self.info.is_image:
                yield from self._image_frames()
            else:
                yield from self._video_frames()
        finally:
            if self.skipped:
                warnings.warn(
                    f"{self.path}: {len(self.skipped)} requested frame(s) lie past the end "
                    f"({self.info.frame_count} frames) and were skipped",
                    stacklevel=2,
                )

    def _image_frames(self) -> Iterator[Frame]:
        if not self.indices:
            return
        self.skipped = [i for i in self.indices if i != 0]
        if self.indices[0] == 0:
            yield Frame(0, 0.0, read_image(self.path))

    def _video_frames(self) -> Iterator[Frame]:
        capture = _open_capture(self.path)
        position = 0  # index of the frame the next read() returns
        try:
            for n, target in enumerate(self.indices):
                gap = target - position
                if gap < 0 or (gap >= self.seek_min_gap and not self.seek_fallback):
                    if not self._seek(capture, target):
                        capture.release()
                        capture = _open_capture(self.path)
                        self.seek_fallback = True
                        position = 0
                    else:
                        position = target
                while position < target:
                    if not capture.grab():
                        break
                    position += 1
                ok, bgr = capture.read() if position == target else (False, None)
                if not ok or bgr is None:
                    # The container's frame count can be too high: everything
                    # from here on lies past the real end.
                    self.skipped.extend(self.indices[n:])
                    return
                position += 1
                yield Frame(target, self._timestamp(target), to_rgb_uint8(bgr))
        finally:
            capture.release()

    def _seek(self, capture: cv2.VideoCapture, target: int) -> bool:
        if not capture.set(cv2.CAP_PROP_POS_FRAMES, target):
            return False
        return int(round(capture.get(cv2.CAP_PROP_POS_FRAMES))) == target


def read_frames(path: str | os.PathLike, indices: Iterable[int]) -> FrameReader:
    """Decode only the frames at `indices` (ascending, duplicates dropped) as RGB uint8.

    Returns an iterator of `Frame`; see `FrameReader` for `skipped` (indices
    past the end) and the seek strategy. Probing happens here, so a bad file
    raises InputError before the first frame is asked for.
    """
    return FrameReader(path, indices)


def prefetch(frames: Iterable[Frame], depth: int = 4) -> Iterator[Frame]:
    """Iterate `frames` in a background thread up to `depth` frames ahead.

    Decoding (OpenCV releases the GIL) then overlaps the caller's work on
    the previous frames. An exception raised by the source is raised here,
    in the caller's thread; stopping early stops the thread.
    """
    import queue
    import threading

    done = object()
    ahead: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
        except BaseException as exc:  # handed to the caller's thread
            put(exc)
            return
        put(done)

    thread = threading.Thread(target=read, name="ddtool-frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
