"""Facts about an input file as evidence: its hash, size and times, and what its container says.

OpenCV decodes frames but cannot report a container's format, codec, bit
rate, display rotation or creation/encoder tags; PyAV (FFmpeg's libraries)
reads them from the container header without decoding the whole file.

The sha256 is taken in one sequential pass. The frame decoder seeks (it
decodes only the sampled frames), so it cannot feed a running hash; the
pass also warms the OS page cache, so the decoder's reads that follow come
from memory. `file_facts` called again after the scan tells whether the
file changed while it was being read.
"""

from __future__ import annotations

import hashlib
import os
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_facts(path: str | os.PathLike, with_hash: bool = True) -> dict[str, Any]:
    """Path as given, size in bytes, modification time (UTC ISO 8601) and sha256."""
    path_str = os.fspath(path)
    stat = os.stat(path_str)
    facts: dict[str, Any] = {
        "path": path_str,
        "absolute_path": os.path.abspath(path_str),
        "size_bytes": stat.st_size,
        "modified_utc": utc_iso(stat.st_mtime),
    }
    if with_hash:
        digest = hashlib.sha256()
        with open(path_str, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        facts["sha256"] = digest.hexdigest()
    return facts


def utc_iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


# For a still image FFmpeg's image2 demuxer invents a 25 fps, 0.04 s "stream"; those are not facts of the file.
_NOT_IMAGE_FACTS = ("fps", "frame_count", "duration_s", "bit_rate")


def container_facts(path: str | os.PathLike, is_image: bool = False) -> dict[str, Any]:
    """Container and first video stream facts read by PyAV; {"error": ...} when it cannot read them.

    Keys: format, format_long, duration_s, bit_rate, tags (creation_time,
    encoder, ... as the container has them), and `video`: codec, profile,
    pixel_format, width, height, rotation (degrees, from the display matrix),
    fps, frame_count (as the container declares it), duration_s, bit_rate, tags.
    """
    try:
        import av
    except ImportError:  # pragma: no cover - av is a dependency
        return {"error": "PyAV is not installed; container facts unavailable (pip install av)"}
    try:
        container = av.open(os.fspath(path))
    except Exception as exc:  # FFmpeg raises many error types; any of them means "cannot read"
        return {"error": f"FFmpeg cannot read the container: {_short(exc)}"}
    try:
        facts: dict[str, Any] = {
            "format": container.format.name,
            "format_long": container.format.long_name,
            "duration_s": None if container.duration is None else round(container.duration / 1_000_000, 4),
            "bit_rate": container.bit_rate or None,
            "tags": dict(container.metadata),
        }
        video = container.streams.video[0] if container.streams.video else None
        if video is not None:
            ctx = video.codec_context
            fps = video.average_rate or video.guessed_rate
            duration = video.duration * video.time_base if video.duration is not None and video.time_base else None
            facts["video"] = {
                "codec": ctx.name,
                "codec_long": getattr(ctx.codec, "long_name", None),
                "profile": ctx.profile,
                "pixel_format": ctx.pix_fmt,
                "width": video.width,
                "height": video.height,
                "rotation": _rotation(container, video),
                "fps": None if not fps else round(float(fps), 4),
                "frame_count": video.frames or None,
                "duration_s": None if duration is None else round(float(duration), 4),
                "bit_rate": ctx.bit_rate or None,
                "tags": dict(video.metadata),
            }
        facts["streams"] = [s.type for s in container.streams]
        if is_image:
            for key in ("duration_s", "bit_rate"):
                facts.pop(key, None)
            for key in _NOT_IMAGE_FACTS:
                facts.get("video", {}).pop(key, None)
        return facts
    finally:
        container.close()


def _rotation(container, video) -> int | None:
    """Display rotation in degrees: the first decoded frame's display matrix (FFmpeg >= 5), else the old `rotate` tag."""
    tag = video.metadata.get("rotate")
    try:
        frame = next(container.decode(video))
        value = getattr(frame, "rotation", None)
        if value is not None:
            return int(value)
    except Exception:  # an undecodable first frame leaves only the tag
        pass
    return int(tag) if tag and tag.lstrip("-").isdigit() else None


def _short(exc: Exception) -> str:
    text = str(exc)
    # FFmpeg errors repeat the path; the caller already names it.
    return text.split(":")[0].split("] ")[-1].strip() or type(exc).__name__


# ------------------------------------------------------------ why a container will not open

_ISO_TOP_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"pdin", b"moof", b"mfra", b"meta", b"styp", b"sidx"}


def diagnose_unopenable(path: str | os.PathLike, head: bytes) -> str | None:
    """Why a file with a known container header yields no frames ("looks truncated ..."), or None.

    For MP4/MOV the top-level boxes are walked: a box running past the end of
    the file, or no `moov` (the index a player needs) means the file was cut
    short or damaged; converting it cannot help, re-copying it from the source can.
    """
    if head[4:8] in (b"ftyp", b"mdat", b"moov", b"free", b"wide", b"skip"):
        return _diagnose_iso(Path(path))
    if head[:4] == b"\x1aE\xdf\xa3":
        return "has a Matroska/WebM header but no decodable frames: the file looks truncated or corrupt; re-copy it from the source"
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return "has an AVI header but no decodable frames: the file looks truncated or corrupt; re-copy it from the source"
    return None


def _diagnose_iso(path: Path) -> str:
    size = path.stat().st_size
    found = []
    cut = None
    with open(path, "rb") as handle:
        offset = 0
        while offset + 8 <= size:
            handle.seek(offset)
            header = handle.read(16)
            box_size, box_type = struct.unpack(">I4s", header[:8])
            if box_size == 1 and len(header) >= 16:
                box_size = struct.unpack(">Q", header[8:16])[0]
            elif box_size == 0:
                box_size = size - offset  # box runs to the end of the file
            if box_type not in _ISO_TOP_BOXES or box_size < 8:
                break
            found.append(box_type.decode("ascii"))
            if offset + box_size > size:
                cut = (box_type.decode("ascii"), offset + box_size - size)
                break
            offset += box_size
    what = "has an MP4/MOV container header"
    if cut is not None:
        detail = f"its '{cut[0]}' box runs {cut[1]} bytes past the end of the file"
    else:
        detail = "it ends without the frame data a player needs"
    if "moov" not in found:
        detail += " and the 'moov' index is missing"
    return f"{what} but no decodable frames: {detail}; the file looks truncated or corrupt (converting will not help; re-copy it from the source)"
