"""Re-encode media the way FaceForensics++ made its compressed versions.

FF++ c23 and c40 are H.264 (libx264) at constant quantiser 23 and 40
(Rössler et al., ICCV 2019, Sec. 3). `reencode_h264` writes a clip at a given
quantiser, so a c23 clip becomes c40-like for a test, and `compress_h264`
passes one face crop through the same codec (an I-frame at that quantiser):
the training augmentation that reaches c40 for crops that have no video.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ddtool.errors import InputError
from ddtool.io import atomic_path

C40_QP = 40  # FF++'s "c40" (heavy compression)
C23_QP = 23  # FF++'s "c23" (light compression)


def _even(n: int) -> int:
    return max(2, n - n % 2)  # yuv420p needs even sides


def reencode_h264(src: str | Path, dst: str | Path, qp: int = C40_QP, max_frames: int | None = None) -> int:
    """Decode `src` and write it to `dst` as H.264 (libx264, constant quantiser `qp`, yuv420p, same fps).

    Returns the number of frames written. Written atomically: a failed encode leaves no half file.
    """
    import av

    src, dst = Path(src), Path(dst)
    if not 0 <= qp <= 51:
        raise InputError(f"H.264 quantiser {qp} is out of range; use 0-51 (FF++ c23 = 23, c40 = 40)")
    try:
        source = av.open(str(src))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(f"{src}: cannot be read as a video ({exc}); check the file") from exc
    if source.format.name == "image2" or source.format.name.endswith("_pipe"):  # FFmpeg's image demuxers
        source.close()
        raise InputError(f"{src} is an image ({source.format.name}), not a video; re-encode video files only")
    written = 0
    with source, atomic_path(dst) as tmp:
        stream = next((s for s in source.streams if s.type == "video"), None)
        if stream is None:
            raise InputError(f"{src}: has no video stream; pass a video file")
        rate = stream.average_rate or stream.guessed_rate or 25
        with av.open(str(tmp), "w", format=dst.suffix.lstrip(".") or "mp4") as out:
            encoder = out.add_stream("libx264", rate=rate)
            encoder.width, encoder.height = _even(stream.codec_context.width), _even(stream.codec_context.height)
            encoder.pix_fmt = "yuv420p"
            encoder.options = {"qp": str(int(qp)), "preset": "medium"}
            for frame in source.decode(stream):
                if max_frames is not None and written >= max_frames:
                    break
                image = frame.to_ndarray(format="rgb24")[: encoder.height, : encoder.width]
                for packet in encoder.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                    out.mux(packet)
                written += 1
            for packet in encoder.encode():
                out.mux(packet)
        if written == 0:  # raised inside atomic_path: nothing is left at dst
            raise InputError(f"{src}: no frame could be decoded; the file is empty or corrupt")
    return written


def compress_h264(image: np.ndarray, qp: int = C40_QP) -> np.ndarray:
    """One RGB uint8 image through libx264 at quantiser `qp` (an intra frame, yuv420p) and back, same size."""
    import av

    h, w = image.shape[:2]
    padded = np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # yuv420p needs even sides
    ph, pw = padded.shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as out:
        encoder = out.add_stream("libx264", rate=25)
        encoder.width, encoder.height, encoder.pix_fmt = pw, ph, "yuv420p"
        encoder.options = {"qp": str(int(qp)), "preset": "veryfast", "tune": "zerolatency"}
        for packet in encoder.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="rgb24")):
            out.mux(packet)
        for packet in encoder.encode():
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer, "r", format="h264") as back:
        frame = next(back.decode(video=0))
        decoded = frame.to_ndarray(format="rgb24")
    return np.ascontiguousarray(decoded[:h, :w])
