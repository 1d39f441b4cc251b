"""Shared fixtures: tiny media the tests make themselves.

The only real face the tests use is examples/astronaut.jpg (NASA portrait of
Eileen Collins, public domain, shipped for the demo); videos are generated
from it with OpenCV so HOG finds a real face in every frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FACE_IMAGE = REPO / "examples" / "astronaut.jpg"

# Two cores: keep torch from oversubscribing them when tests run.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture()
def single_thread():
    """torch on one thread for the test (tiny tensors: a second thread only adds synchronisation cost)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def model_registry_restored():
    """Tiny models a test registers (in a fixture or the test itself) are gone after it: no test leaks into the registry."""
    from ddtool.models.registry import registry_restored

    with registry_restored():
        yield


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run the ddtool CLI in-process: (exit code, stdout, stderr)."""
    from ddtool.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return (exit_info.value.code or 0), captured.out, captured.err


def scan_and_explain_with_detector(card: Path, out_dir: Path, capsys, scan: list[str], explain: list[str]) -> None:
    """`scan` and `explain --gradcam` of the example photo with the given face-detector options both find the face."""
    import json

    code, out, err = run_cli(["scan", FACE_IMAGE, "--weights", card, *scan, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["inputs"][0]["faces"] == 1
    code, out, err = run_cli(["explain", "--gradcam", FACE_IMAGE, "--weights", card, *explain, "--out", out_dir, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["files"]


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    """Write BGR frames to a video file with OpenCV; return the path."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def face_frames(n: int = 30, size: tuple[int, int] = (320, 240), stamp_index: bool = False) -> list[np.ndarray]:
    """`n` BGR frames of the astronaut face drifting slowly across a grey canvas.

    With `stamp_index`, frame i has its index encoded as a bright bar code in
    the top-left corner (8 cells, 1 bit each) so seeking can be verified.
    """
    face = cv2.imread(str(FACE_IMAGE))
    face = cv2.resize(face, (200, 200))
    w, h = size
    frames = []
    for i in range(n):
        canvas = np.full((h, w, 3), 90, np.uint8)
        x = 40 + (i % 20)
        y = 20 + (i % 10)
        canvas[y : y + 200, x : x + 200] = face[: h - y, : w - x][:200, :200]
        if stamp_index:
            stamp_frame_index(canvas, i)
        frames.append(canvas)
    return frames


def stamp_frame_index(canvas: np.ndarray, index: int, bits: int = 10) -> None:
    for b in range(bits):
        value = 255 if (index >> b) & 1 else 0
        canvas[0:8, b * 8 : b * 8 + 8] = value


def read_frame_index(frame: np.ndarray, bits: int = 10) -> int:
    """Inverse of stamp_frame_index (works on RGB or BGR, survives mp4v compression)."""
    index = 0
    for b in range(bits):
        if frame[2:6, b * 8 + 2 : b * 8 + 6].mean() > 127:
            index |= 1 << b
    return index


@pytest.fixture(scope="session")
def face_image() -> Path:
    return FACE_IMAGE


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> Path:
    """A 30-frame 320x240 mp4 with one real face in every frame."""
    path = tmp_path_factory.mktemp("media") / "face.mp4"
    return write_video(path, face_frames(30))


@pytest.fixture(scope="session")
def noface_video(tmp_path_factory) -> Path:
    """A 20-frame mp4 of moving noise with no face."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(20)]
    return write_video(tmp_path_factory.mktemp("media") / "noface.mp4", frames)


@pytest.fixture(scope="session")
def indexed_video(tmp_path_factory) -> Path:
    """A 120-frame mp4 whose frames carry their own index as a bar code."""
    path = tmp_path_factory.mktemp("media") / "indexed.mp4"
    return write_video(path, face_frames(120, stamp_index=True))


@pytest.fixture()
def bad_files(tmp_path) -> dict[str, Path]:
    """Zero-byte, corrupt and mislabelled files."""
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    image_as_mp4 = tmp_path / "photo.mp4"
    image_as_mp4.write_bytes(FACE_IMAGE.read_bytes())
    return {"zero": zero, "corrupt": corrupt, "text": text, "image_as_mp4": image_as_mp4, "missing": tmp_path / "missing.mp4"}
