"""Hostile and unusual inputs: one clear line, the right exit code, never a traceback."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from conftest import FACE_IMAGE, face_frames, write_video
from ddtool.cli.app import main
from test_explain import register_tiny


def scan(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", *map(str, args), "--model", register_tiny(), "--untrained", "--frames", "3"])
    captured = capsys.readouterr()
    return (exit_info.value.code or 0), captured.out, captured.err


def assert_one_line_error(stderr: str, *words: str) -> None:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    for word in words:
        assert word in errors[0]


@pytest.mark.parametrize(
    "kind, words",
    [
        ("zero", ["empty"]),
        ("corrupt", ["corrupt"]),
        ("text", ["text file"]),
        ("missing", ["no such file"]),
    ],
)
def test_bad_file_gives_one_line_and_exit_3(bad_files, kind, words, capsys):
    code, stdout, stderr = scan([bad_files[kind]], capsys)
    assert code == 3
    assert_one_line_error(stderr, bad_files[kind].name, *words)


def test_bad_file_with_json_still_prints_a_document(bad_files, capsys):
    code, stdout, stderr = scan([bad_files["zero"], "--json"], capsys)
    assert code == 3
    item = json.loads(stdout)["inputs"][0]
    assert item["verdict"] == "error" and "empty" in item["errors"][0]


def test_image_with_mp4_name_is_scanned_as_image(bad_files, capsys):
    code, stdout, _ = scan([bad_files["image_as_mp4"], "--json"], capsys)
    assert code in (0, 8)  # untrained: low confidence, never "manipulated"
    assert json.loads(stdout)["inputs"][0]["kind"] == "image"


def test_no_face_video_is_inconclusive(noface_video, capsys):
    code, _, stderr = scan([noface_video], capsys)
    assert code == 4 and "INCONCLUSIVE" in stderr


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_unreadable_file(tmp_path, face_image, capsys):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(face_image.read_bytes())
    locked.chmod(0)
    try:
        code, _, stderr = scan([locked], capsys)
    finally:
        locked.chmod(0o600)
    assert code == 3
    assert_one_line_error(stderr, "locked.jpg", "permission")


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("nothing here")
    code, _, stderr = scan([tmp_path], capsys)
    assert code == 3
    assert_one_line_error(stderr, "no videos or images")


def _face_on_canvas(height, width, channels=3):
    face = cv2.imread(str(FACE_IMAGE), cv2.IMREAD_COLOR)
    side = min(height, width) // 2
    canvas = np.full((height, width, 3), 90, np.uint8)
    y, x = (height - side) // 2, (width - side) // 2
    canvas[y : y + side, x : x + side] = cv2.resize(face, (side, side))
    if channels == 1:
        return cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY)
    if channels == 4:
        return cv2.cvtColor(canvas, cv2.COLOR_BGR2BGRA)
    return canvas


@pytest.mark.parametrize("channels, name", [(1, "gray.png"), (4, "rgba.png")])
def test_grayscale_and_rgba_images(tmp_path, channels, name, capsys):
    path = tmp_path / name
    cv2.imwrite(str(path), _face_on_canvas(480, 480, channels))
    code, stdout, stderr = scan([path, "--json"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["errors"] == [] and item["verdict"] in ("real", "fake"), stderr
    assert len(item["frames"]) == 1 and code in (0, 8)


def test_8k_image(tmp_path, capsys):
    path = tmp_path / "huge.jpg"
    cv2.imwrite(str(path), _face_on_canvas(4320, 7680), [cv2.IMWRITE_JPEG_QUALITY, 70])
    code, stdout, stderr = scan([path, "--json"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["info"]["width"] == 7680 and item["verdict"] in ("real", "fake"), stderr
    x0, y0, x1, y1 = item["frames"][0]["box"]
    # Detection runs downscaled, but the box is in full-resolution pixels,
    # inside the pasted face (x 1920..5760, y 1080..3240).
    assert 1920 <= x0 < x1 <= 5760 and 1080 <= y0 < y1 <= 3240 and x1 - x0 > 200


def test_vertical_phone_video(tmp_path, capsys):
    frames = [np.ascontiguousarray(np.rot90(f)) for f in face_frames(12, size=(640, 360))]
    frames = [cv2.resize(f, (360, 640)) for f in frames]
    path = write_video(tmp_path / "phone.mp4", frames)
    code, stdout, stderr = scan([path, "--json"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["info"]["width"] == 360 and item["info"]["height"] == 640
    assert item["verdict"] in ("real", "fake", "inconclusive") and item["errors"] == [], stderr


@pytest.mark.parametrize("kind", ["zero", "corrupt", "text"])
def test_a_bad_single_file_fails_before_the_detectors_load(bad_files, kind, capsys, monkeypatch):
    """Loading the default detector takes seconds (the CLIP encoder): a bad file must not wait for it."""
    import ddtool.scan.panel

    def must_not_load(*args, **kwargs):
        raise AssertionError("the detectors were loaded for an input that cannot be scanned")

    monkeypatch.setattr(ddtool.scan.panel, "panel_for", must_not_load)
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", str(bad_files[kind])])
    assert exit_info.value.code == 3
    assert_one_line_error(capsys.readouterr().err, bad_files[kind].name)
