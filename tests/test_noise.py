"""Gaussian residuals, per-video volumes and residual statistics."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from ddtool.errors import ConfigError, InputError
from ddtool.features.noise import (
    FEATURE_NAMES,
    compute_noise_features,
    gaussian_residual,
    kernel_size_for,
    pick_faces,
    residual_statistics,
    video_noise,
)


@pytest.fixture(scope="module")
def face_rgb(face_image):
    return cv2.cvtColor(cv2.resize(cv2.imread(str(face_image)), (160, 160)), cv2.COLOR_BGR2RGB)


def test_residual_equals_direct_cv2_computation(face_rgb):
    resized = cv2.resize(face_rgb, (100, 100), interpolation=cv2.INTER_AREA).astype(np.float32)
    grey = (resized[..., 0] + resized[..., 1] + resized[..., 2]) / 3
    expected = grey - cv2.GaussianBlur(grey, (5, 5), 1.5)
    got = gaussian_residual(face_rgb, sigma=1.5, ksize=5)
    assert got.shape == (100, 100) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert kernel_size_for(1.0) == 7
    np.testing.assert_allclose(gaussian_residual(face_rgb), grey - cv2.GaussianBlur(grey, (7, 7), 1.0), atol=1e-4)


def test_blurred_face_has_weaker_residual(face_rgb):
    smooth = cv2.GaussianBlur(face_rgb, (0, 0), 2.0)
    sharp = np.abs(gaussian_residual(face_rgb)).mean()
    assert np.abs(gaussian_residual(smooth)).mean() < 0.5 * sharp


def test_bad_blur_settings_and_inputs(face_rgb):
    with pytest.raises(ConfigError):
        gaussian_residual(face_rgb, ksize=4)
    with pytest.raises(ConfigError):
        gaussian_residual(face_rgb, sigma=0)
    with pytest.raises(InputError):
        gaussian_residual(face_rgb[..., 0])


def test_pick_faces_trims_evenly_and_pads_with_last():
    assert pick_faces(40, 5) == [0, 10, 20, 29, 39]
    assert pick_faces(3, 5) == [0, 1, 2, 2, 2]
    with pytest.raises(InputError):
        pick_faces(0, 5)


def test_video_noise_volume_and_sequence(face_rgb):
    faces = [face_rgb, np.roll(face_rgb, 3, axis=1), cv2.GaussianBlur(face_rgb, (0, 0), 2.0)]
    noise = video_noise(faces, frames=5)
    assert noise.volume.shape == (5, 100, 100) and noise.sequence.shape == (5,)
    assert noise.n_faces == 3
    np.testing.assert_allclose(noise.volume[0], gaussian_residual(faces[0]))
    np.testing.assert_allclose(noise.sequence, np.abs(noise.volume).mean(axis=(1, 2)), rtol=1e-6)
    assert noise.sequence[2] < noise.sequence[0]
    np.testing.assert_array_equal(noise.volume[4], noise.volume[2])  # padded with the last face


def test_statistics_vector_named_finite_and_informative(face_rgb):
    stats = residual_statistics(face_rgb)
    assert stats.shape == (len(FEATURE_NAMES),) and len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert np.isfinite(stats).all()
    flat = residual_statistics(np.full((64, 64, 3), 128, np.uint8))
    assert np.isfinite(flat).all()  # no NaN from zero variance
    named = dict(zip(FEATURE_NAMES, stats))
    blurred = dict(zip(FEATURE_NAMES, residual_statistics(cv2.GaussianBlur(face_rgb, (0, 0), 2.0))))
    assert blurred["res_s1_energy"] < named["res_s1_energy"]
    assert blurred["fft_ring7_logpower"] < named["fft_ring7_logpower"]


def test_compute_noise_features_writes_both_files(tmp_path, face_rgb):
    rows = []
    for v, (label, n) in {"d/real/a.mp4": (0, 3), "d/fake/b.mp4": (1, 2)}.items():
        for k in range(n):
            crop = f"crops/{v}/{k:06d}_0.png"
            (tmp_path / crop).parent.mkdir(parents=True, exist_ok=True)
            image = face_rgb if label == 0 else cv2.GaussianBlur(face_rgb, (0, 0), 1.5)
            cv2.imwrite(str(tmp_path / crop), cv2.cvtColor(np.roll(image, k, axis=0), cv2.COLOR_RGB2BGR))
            rows.append({"crop_path": crop, "video_id": v, "frame_index": k, "track_id": 0, "label": label,
                         "domain": label, "split": "train"})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    summary = compute_noise_features(tmp_path, frames=4)
    assert (summary.n_videos, summary.n_crops) == (2, 5)
    data = np.load(tmp_path / "noise_volumes.npz")
    assert list(data["video_id"]) == ["d/fake/b.mp4", "d/real/a.mp4"]
    assert data["volume"].shape == (2, 4, 100, 100) and data["sequence"].shape == (2, 4)
    assert list(data["label"]) == [1, 0] and list(data["n_faces"]) == [2, 3]
    assert data["sequence"][0].mean() < data["sequence"][1].mean()  # the blurred "fake" is smoother
    stats = pd.read_csv(tmp_path / "noise_stats.csv")
    assert list(stats.columns[:5]) == ["video_id", "crop_path", "label", "domain", "split"]
    assert list(stats.columns[5:]) == list(FEATURE_NAMES) and len(stats) == 5
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(InputError, match="ddtool extract"):
        compute_noise_features(tmp_path / "empty")
