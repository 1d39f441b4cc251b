"""FF++-style H.264 re-encoding (media.reencode): c40-like clips for the cross-source test, and the h264 augmentation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import face_frames, write_video
from ddtool.errors import InputError
from ddtool.media.reencode import C40_QP, compress_h264, reencode_h264
from ddtool.media.video import probe


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("re") / "clip.avi", face_frames(12, size=(161, 121)), fourcc="MJPG")


def _frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(frame.astype(np.float64))


def test_a_clip_reencoded_at_qp40_keeps_its_frames_and_loses_detail(clip, tmp_path):
    light, heavy = tmp_path / "c23.mp4", tmp_path / "c40.mp4"
    assert reencode_h264(clip, light, qp=23) == 12
    assert reencode_h264(clip, heavy, qp=C40_QP) == 12
    info = probe(heavy)
    assert info.frame_count == 12 and (info.width, info.height) == (160, 120)  # yuv420p: even sides
    original = [f[:120, :160] for f in _frames(clip)]
    err = {name: np.mean([np.abs(a - b).mean() for a, b in zip(original, _frames(path))]) for name, path in (("c23", light), ("c40", heavy))}
    assert heavy.stat().st_size < light.stat().st_size and err["c40"] > err["c23"] > 0


def test_bad_inputs_and_quantisers_are_one_line_errors_and_leave_nothing(tmp_path):
    image = tmp_path / "photo.mp4"
    cv2.imwrite(str(tmp_path / "p.png"), np.zeros((8, 8, 3), np.uint8))
    image.write_bytes((tmp_path / "p.png").read_bytes())  # an image renamed .mp4
    out = tmp_path / "out.mp4"
    with pytest.raises(InputError, match="is an image .*, not a video"):
        reencode_h264(image, out)
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))
    with pytest.raises(InputError, match="out of range; use 0-51"):
        reencode_h264(image, out, qp=60)


def test_one_crop_through_the_codec_keeps_its_size_and_loses_more_at_higher_qp():
    rng = np.random.default_rng(0)
    crop = cv2.GaussianBlur((rng.random((75, 63, 3)) * 255).astype(np.uint8), (0, 0), 2)  # odd sides on purpose
    light, heavy = compress_h264(crop, 23), compress_h264(crop, 44)
    assert light.shape == heavy.shape == crop.shape and light.dtype == np.uint8
    assert np.abs(heavy.astype(int) - crop).mean() > np.abs(light.astype(int) - crop).mean() > 0
