"""Frame sampling, probing and seeking (ddtool.media.video)."""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest

from conftest import read_frame_index, write_video
from ddtool.errors import ConfigError, InputError
from ddtool.media import video
from ddtool.media.video import PRESETS, preset_sampling, probe, read_frames, sample_indices


# ---------------------------------------------------------------- sample_indices


def test_frames_only_is_evenly_spaced_over_whole_video():
    assert sample_indices(100, frames=5) == [0, 25, 50, 74, 99]
    assert sample_indices(300, frames=20) == [int(round(x)) for x in np.linspace(0, 299, 20)]


def test_frames_only_never_repeats_an_index():
    assert sample_indices(3, frames=10) == [0, 1, 2]
    picked = sample_indices(7, frames=5)
    assert picked == sorted(set(picked)) and len(picked) == 5


def test_interval_and_frames_start_at_zero_and_truncate():
    assert sample_indices(100, frames=5, interval=2) == [0, 2, 4, 6, 8]
    assert sample_indices(7, frames=50, interval=2) == [0, 2, 4, 6]
    assert sample_indices(10, interval=3) == [0, 3, 6, 9]


def test_neither_means_every_frame_and_empty_video_means_nothing():
    assert sample_indices(4) == [0, 1, 2, 3]
    assert sample_indices(0, frames=5) == []


@pytest.mark.parametrize(
    "kwargs",
    [dict(frame_count=-1), dict(frame_count=10, frames=0), dict(frame_count=10, interval=-2),
     dict(frame_count=10, frames=2.5), dict(frame_count=10, interval=True), dict(frame_count="10")],
)
def test_bad_sampling_arguments_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        sample_indices(**kwargs)


def test_presets_match_paper_protocols():
    assert preset_sampling("ffpp", 0) == (2, 50)
    assert preset_sampling("FF++", "fake") == (2, 16)
    assert preset_sampling("dfdc", "real") == (2, 35)
    assert preset_sampling("dfdc", 1) == (10, 5)
    assert preset_sampling("celebdf", 0) == (2, 100)
    assert preset_sampling("celebdf", 1) == (2, 16)
    assert preset_sampling("dfdc-seed", 1) == (None, 20)
    assert set(PRESETS) >= {"ffpp", "dfdc", "celebdf", "dfdc-seed"}
    with pytest.raises(ConfigError, match="ffpp"):
        preset_sampling("nope", 0)
    with pytest.raises(ConfigError):
        preset_sampling("ffpp", 2)


# ---------------------------------------------------------------- probe


def test_probe_video(face_video):
    info = probe(face_video)
    assert (info.frame_count, info.width, info.height, info.is_image) == (30, 320, 240, False)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(1.2)


@pytest.mark.parametrize(
    "kind, words",
    [("zero", "empty"), ("corrupt", "corrupt"), ("text", "text file"), ("missing", "no such file")],
)
def test_probe_bad_files_raise_input_error_with_reason(bad_files, kind, words):
    with pytest.raises(InputError) as caught:
        probe(bad_files[kind])
    message = str(caught.value)
    assert words in message and str(bad_files[kind]) in message and "\n" not in message


def test_probe_directory_is_input_error(tmp_path):
    with pytest.raises(InputError, match="directory"):
        probe(tmp_path)


def test_image_renamed_mp4_is_read_as_image(bad_files):
    info = probe(bad_files["image_as_mp4"])
    assert info.is_image and info.frame_count == 1
    frames = list(read_frames(bad_files["image_as_mp4"], [0]))
    assert len(frames) == 1 and frames[0].image.shape == (info.height, info.width, 3)


def test_truncated_image_is_input_error(tmp_path, face_image):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(face_image.read_bytes()[:200])
    with pytest.raises(InputError, match="image"):
        probe(broken)


def _capture_hiding(hidden_prop):
    """A VideoCapture factory whose container 'does not know' one property.

    Wraps instead of subclassing: subclassing cv2.VideoCapture corrupts the
    heap with OpenCV 5's Python bindings.
    """
    real_capture = cv2.VideoCapture

    class CaptureWithoutProperty:
        def __init__(self, *args):
            self._capture = real_capture(*args)

        def get(self, prop):
            return 0.0 if prop == hidden_prop else self._capture.get(prop)

        def __getattr__(self, name):
            return getattr(self._capture, name)

    return CaptureWithoutProperty


def test_unusable_frame_count_is_counted_by_grabbing(face_video, monkeypatch):
    monkeypatch.setattr(video.cv2, "VideoCapture", _capture_hiding(cv2.CAP_PROP_FRAME_COUNT))
    info = probe(face_video)
    assert info.frame_count == 30 and info.counted_by_grabbing


# ---------------------------------------------------------------- images as inputs


def _only_frame(path):
    frames = list(read_frames(path, [0]))
    assert len(frames) == 1
    return frames[0]


def test_jpg_image_is_rgb(face_image):
    frame = _only_frame(face_image)
    bgr = cv2.imread(str(face_image))
    assert frame.image.dtype == np.uint8 and frame.timestamp == 0.0
    np.testing.assert_array_equal(frame.image, bgr[:, :, ::-1])


def test_grayscale_png_becomes_rgb(tmp_path):
    gray = np.tile(np.arange(0, 200, 5, dtype=np.uint8), (30, 1))
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), gray)
    image = _only_frame(path).image
    assert image.shape == (30, 40, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[:, :, c], gray)


def test_rgba_png_drops_alpha_and_keeps_colour_order(tmp_path):
    bgra = np.zeros((20, 24, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 10, 250, 128  # blue 10, red 250
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    image = _only_frame(path).image
    assert image.shape == (20, 24, 3)
    assert tuple(image[0, 0]) == (250, 0, 10)


def test_16bit_png_is_scaled_to_uint8(tmp_path):
    deep = np.full((10, 10, 3), 65535, np.uint16)
    deep[:, :5] = 256 * 100
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), deep)
    image = _only_frame(path).image
    assert image.dtype == np.uint8 and image[0, 0, 0] == 100 and image[0, 9, 0] == 255


def test_image_indices_past_zero_are_skipped(face_image):
    reader = read_frames(face_image, [0, 3])
    with pytest.warns(UserWarning, match="past the end"):
        frames = list(reader)
    assert [f.index for f in frames] == [0] and reader.skipped == [3]


# ---------------------------------------------------------------- seeking


def _assert_frames_are_the_ones_asked_for(path, indices, **reader_kwargs):
    reader = video.FrameReader(path, indices, **reader_kwargs)
    frames = list(reader)
    assert [f.index for f in frames] == sorted(set(indices))
    for frame in frames:
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        assert read_frame_index(frame.image) == frame.index
        assert frame.timestamp == pytest.approx(frame.index / 25.0)
    return reader


def test_sparse_indices_seek_to_exact_frames(indexed_video):
    # seek_min_gap=4 forces real seeks on this short test video.
    _assert_frames_are_the_ones_asked_for(indexed_video, [3, 97, 40, 119, 60, 11], seek_min_gap=4)


def test_dense_indices_grab_to_exact_frames(indexed_video):
    reader = _assert_frames_are_the_ones_asked_for(indexed_video, list(range(10, 60, 3)) + [10])
    assert not reader.seek_fallback


def test_default_reader_on_paper_protocol(indexed_video):
    _assert_frames_are_the_ones_asked_for(indexed_video, sample_indices(120, frames=20))
    _assert_frames_are_the_ones_asked_for(indexed_video, sample_indices(120, frames=16, interval=2))


def test_inaccurate_seek_falls_back_to_grabbing(indexed_video, monkeypatch):
    monkeypatch.setattr(video.FrameReader, "_seek", lambda self, capture, target: False)
    reader = _assert_frames_are_the_ones_asked_for(indexed_video, [5, 70, 100], seek_min_gap=4)
    assert reader.seek_fallback


def test_indices_past_end_are_skipped_not_fatal(indexed_video):
    reader = read_frames(indexed_video, [118, 119, 120, 500])
    with pytest.warns(UserWarning, match="2 requested frame"):
        frames = list(reader)
    assert [f.index for f in frames] == [118, 119]
    assert reader.skipped == [120, 500]


def test_reader_is_lazy_and_can_stop_early(indexed_video):
    reader = read_frames(indexed_video, range(120))
    first = next(reader)
    assert first.index == 0
    reader.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(reader) == []


def test_negative_index_is_config_error(face_video):
    with pytest.raises(ConfigError):
        read_frames(face_video, [-1])


def test_unknown_fps_gives_nan_timestamps(tmp_path, monkeypatch, face_video):
    monkeypatch.setattr(video.cv2, "VideoCapture", _capture_hiding(cv2.CAP_PROP_FPS))
    info = probe(face_video)
    assert info.fps == 0.0 and info.duration == 0.0
    frame = next(read_frames(face_video, [3]))
    assert math.isnan(frame.timestamp)


def test_mjpg_avi_container(tmp_path):
    from conftest import face_frames

    path = write_video(tmp_path / "clip.avi", face_frames(12, stamp_index=True), fourcc="MJPG")
    assert probe(path).frame_count == 12
    frames = list(video.FrameReader(path, [1, 9, 4], seek_min_gap=2))
    assert [read_frame_index(f.image) for f in frames] == [1, 4, 9]
