"""Image arrays in and out: RGB uint8 everywhere inside ddtool, PNG on disk.

One place converts crops of any channel count to RGB and one place writes
PNGs (OpenCV wants BGR: converted here and nowhere else).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ddtool.errors import InputError
from ddtool.io import write_bytes_atomic


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Grayscale and RGBA crops become RGB uint8 (alpha dropped)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image


def encode_png(image: np.ndarray, bgr: bool = False, compression: int | None = None, name: str = "image") -> bytes:
    """PNG bytes of an RGB (or, with `bgr`, BGR) uint8 image; `compression` 0-9, OpenCV's default when None."""
    pixels = image if bgr else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
    ok, encoded = cv2.imencode(".png", pixels, params)
    if not ok:
        raise InputError(f"could not encode {name} as PNG")
    return encoded.tobytes()


def write_png(path: str | Path, image: np.ndarray, bgr: bool = False, compression: int | None = None) -> None:
    """Write `image` as a PNG atomically (temp file, then rename). Lossless: crops keep the traces detectors learn from."""
    path = Path(path)
    write_bytes_atomic(path, encode_png(image, bgr=bgr, compression=compression, name=path.name))
