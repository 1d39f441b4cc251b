"""`ddtool scan` end to end: verdicts, exit codes, JSON schema, evidence files, aggregation."""

from __future__ import annotations

import base64
import csv
import json
import re

import cv2
import numpy as np
import pytest
import torch

from conftest import run_cli
from ddtool.scan.outputs import output_dir_name, segments_srt, srt_time
from ddtool.scan.pipeline import FrameScore, ScanOptions, ScanResult, exit_code_for, judge, scan_path
from ddtool.models.checkpoint import save_checkpoint
from test_explain import TinyDetector, register_tiny

INPUT_KEYS = {"path", "verdict", "score", "threshold", "model", "weights", "weights_sha256", "tracks", "frames", "segments", "errors"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Two tiny checkpoints: one that always says fake, one that always says real. Their cards claim a strong
    measured AUC, so their verdicts are high confidence (the headline and exit code may then say "manipulated")."""
    name = register_tiny()
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    paths = {}
    for verdict, bias in (("fake", 8.0), ("real", -8.0)):
        model = TinyDetector(fake_bias=bias)
        save_checkpoint(model, folder / f"tiny_{verdict}", name, {}, training_data={"dataset": "unit-test"}, metrics={"auc": 0.5},
                        benchmark={"name": "unit bench", "split": "test", "auc": 0.97, "n_real": 50, "n_fake": 50, "level": "video"})
        paths[verdict] = folder / f"tiny_{verdict}.safetensors"
    return paths



def test_scan_video_end_to_end(face_video, checkpoints, tmp_path, capsys):
    out = tmp_path / "evidence"
    code, stdout, stderr = run_cli(
        ["scan", str(face_video), "--weights", str(checkpoints["fake"]), "--frames", "5", "--out", str(out), "--json"], capsys
    )
    assert code == 1, stderr
    document = json.loads(stdout)  # nothing but the JSON document on stdout
    assert document["exit_code"] == 1 and document["summary"] == {"fake": 1}
    (item,) = document["inputs"]
    assert INPUT_KEYS <= set(item)
    assert item["verdict"] == "fake" and item["score"] > 0.99 and item["threshold"] == 0.5
    assert item["model"] == register_tiny() and len(item["weights_sha256"]) == 64 and not item["untrained"]
    assert item["frames_sampled"] == 5 and len(item["frames"]) == 5 and item["errors"] == []
    assert {"frame_index", "timestamp", "track_id", "box", "score"} <= set(item["frames"][0])
    assert item["tracks"] and all(t["score"] > 0.99 for t in item["tracks"])
    assert item["segments"] and item["segments"][0]["start"] == 0.0

    folder = out / output_dir_name(face_video)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.sha256", "report.html", "result.json", "scores.csv", "segments.srt", "timeline.png"]
    with open(folder / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5 and list(rows[0])[:8] == ["frame_index", "timestamp", "track_id", "x0", "y0", "x1", "y1", "score"]
    assert len(rows[0]) == 9 and list(rows[0])[8].startswith("p_fake_")  # then each detector's own P(fake)
    assert [int(r["frame_index"]) for r in rows] == [0, 7, 14, 22, 29]
    assert float(rows[1]["timestamp"]) == pytest.approx(7 / 25)
    assert json.loads((folder / "result.json").read_text())["verdict"] == "fake"
    assert cv2.imread(str(folder / "timeline.png")) is not None
    assert "SUSPICIOUS face" in (folder / "segments.srt").read_text()

    html = (folder / "report.html").read_text()
    assert "MANIPULATED" in html and item["weights_sha256"] in html and "unit-test" in html
    assert item["headline"] == "MANIPULATED" and item["strength"]["level"] == "high"
    assert not re.search(r'src="(?!data:)', html), "report must embed every image"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    # timeline + top crops + their Grad-CAM overlays (+ contrast crops)
    assert len(images) >= 3
    for encoded in images:
        assert cv2.imdecode(np.frombuffer(base64.b64decode(encoded), np.uint8), cv2.IMREAD_COLOR) is not None
    assert "Grad-CAM" in html and "where the detector looked" in html.lower()
    assert "saw evidence of forgery" not in html


def test_scan_real_exit_code_and_table(face_video, checkpoints, capsys):
    code, stdout, stderr = run_cli(["scan", str(face_video), "--weights", str(checkpoints["real"]), "--frames", "3"], capsys)
    assert code == 0
    assert stdout == ""  # without --json, results go to stderr
    # "real" is never claimed as such: a detector cannot show that a file is authentic
    assert "NO STRONG EVIDENCE OF MANIPULATION" in stderr and "REAL" not in stderr and "summary" in stderr


def test_scan_noface_is_inconclusive(noface_video, checkpoints, capsys):
    code, stdout, _ = run_cli(["scan", str(noface_video), "--weights", str(checkpoints["fake"]), "--frames", "3", "--json"], capsys)
    assert code == 4
    item = json.loads(stdout)["inputs"][0]
    assert item["verdict"] == "inconclusive" and item["score"] is None and item["frames"] == []


def test_untrained_warns_everywhere(face_image, tmp_path, capsys):
    out = tmp_path / "o"
    code, stdout, stderr = run_cli(["scan", str(face_image), "--model", register_tiny(), "--untrained", "--json", "--out", str(out)], capsys)
    assert code in (0, 8)  # an untrained model's verdict is low confidence: never "manipulated"
    assert "UNTRAINED" in stderr
    item = json.loads(stdout)["inputs"][0]
    assert item["untrained"] and "UNTRAINED" in item["warning"] and item["kind"] == "image"
    folder = out / output_dir_name(face_image)
    assert "UNTRAINED" in (folder / "report.html").read_text()
    assert "UNTRAINED" in (folder / "result.json").read_text()


def test_no_weights_is_a_clear_error(face_video, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))  # an empty weights folder
    code, _, stderr = run_cli(["scan", str(face_video)], capsys)
    assert code == 3
    assert "no shipped weights" in stderr and "--weights" in stderr and "Traceback" not in stderr


def test_folder_scan_continues_past_bad_files(tmp_path, face_video, checkpoints, capsys):
    folder = tmp_path / "case"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "clip.mp4").write_bytes(face_video.read_bytes())
    (folder / "broken.mp4").write_text("not a video\n")
    (folder / "notes.txt").write_text("ignored: not media\n")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(
        ["scan", str(folder), "--weights", str(checkpoints["real"]), "--frames", "3", "--json", "--out", str(out)], capsys
    )
    assert code == 6  # some input failed, none of the others is fake
    document = json.loads(stdout)
    assert [i["verdict"] for i in document["inputs"]] == ["error", "real"]
    assert "text file" in document["inputs"][0]["errors"][0]
    assert "broken.mp4" in stderr
    clip_folder = output_dir_name(folder / "sub" / "clip.mp4", folder)
    assert clip_folder.startswith("sub__clip.mp4-")  # a sub-folder's input: readable name + a hash of its relative path
    assert sorted(p.name for p in out.iterdir()) == sorted(["broken.mp4", clip_folder, "index.html", "manifest.sha256", "summary.csv"])
    # a failed input leaves its error entry (result.json, and a report page saying why), never scores or a timeline
    assert sorted(p.name for p in (out / "broken.mp4").iterdir()) == ["manifest.sha256", "report.html", "result.json"]


def test_library_api_matches_cli(face_video, checkpoints):
    results = scan_path(face_video, ScanOptions(weights=checkpoints["fake"], frames=4, aggregate="confident"))
    assert len(results) == 1 and isinstance(results[0], ScanResult)
    assert results[0].verdict == "fake" and results[0].aggregate == "confident"
    assert set(results[0].timings) >= {"decode", "detect", "model", "total"}


def _result():
    return ScanResult("x.mp4", "video", "error", None, 0.5, "mean", info={"fps": 10.0})


def test_judge_max_over_tracks_and_segments():
    result = _result()
    # Track 0 real throughout; track 1 fake between 1.0 s and 1.5 s only.
    result.frames = [FrameScore(i, i / 10, 0, (0, 0, 10, 10), 0.1) for i in range(0, 30, 5)]
    scores = {0: 0.2, 5: 0.3, 10: 0.9, 15: 0.8, 20: 0.2, 25: 0.1}
    result.frames += [FrameScore(i, i / 10, 1, (20, 0, 30, 10), s) for i, s in scores.items()]
    judge(result, ScanOptions(aggregate="max"))
    assert result.verdict == "fake" and result.score == pytest.approx(0.9)
    assert [t["track_id"] for t in result.tracks] == [0, 1]
    assert result.tracks[0]["score"] == pytest.approx(0.1) and result.tracks[1]["mean"] == pytest.approx(2.5 / 6)
    assert result.segments == [
        {"track_id": 1, "start": 1.0, "end": 1.5, "start_frame": 10, "end_frame": 15, "peak": 0.9, "mean": pytest.approx(0.85)}
    ]
    judge(result, ScanOptions(aggregate="mean"))
    assert result.verdict == "real" and result.score == pytest.approx(2.5 / 6)


def test_judge_without_faces_is_inconclusive():
    result = _result()
    judge(result, ScanOptions())
    assert result.verdict == "inconclusive" and result.score is None and result.tracks == []


def test_exit_codes_from_verdicts():
    def of(*verdicts):
        return [ScanResult(f"{i}", "video", v, None, 0.5, "mean") for i, v in enumerate(verdicts)]

    assert exit_code_for(of("real", "real")) == 0
    assert exit_code_for(of("real", "fake")) == 1
    assert exit_code_for(of("real", "fake", "error")) == 7  # a fake and a failure both show
    assert exit_code_for(of("real", "error")) == 6
    assert exit_code_for(of("inconclusive", "error")) == 6
    assert exit_code_for(of("inconclusive", "real")) == 0
    assert exit_code_for(of("error", "error")) == 3


def test_srt_format():
    assert srt_time(3723.5) == "01:02:03,500"
    result = _result()
    result.segments = [{"track_id": 0, "start": 2.0, "end": 2.0, "start_frame": 50, "end_frame": 50, "peak": 0.91, "mean": 0.91}]
    text = segments_srt(result)
    assert text.startswith("1\n00:00:02,000 --> 00:00:03,000\nSUSPICIOUS face 0: peak P(fake) 0.91")


def test_bad_options_are_usage_or_config_errors(face_video, checkpoints, capsys):
    code, _, stderr = run_cli(["scan", str(face_video), "--weights", str(checkpoints["fake"]), "--aggregate", "nope"], capsys)
    assert code == 3 and "unknown aggregation rule" in stderr
    code, _, _ = run_cli(["scan", str(face_video), "--frames", "0"], capsys)
    assert code == 2


def test_scan_feeds_faces_at_the_size_the_model_was_trained_at(tmp_path):
    from ddtool.scan.detector import load_detector

    name = register_tiny()
    card = save_checkpoint(TinyDetector(), tmp_path / "small", name, {}, input={"kind": "image", "size": 48})
    detector = load_detector(None, str(card), False, "cpu")
    assert detector.input_hw == (48, 48)
    faces = [np.zeros((256, 256, 3), np.uint8), np.zeros((30, 40), np.uint8)]
    assert tuple(detector.prepare(faces).shape) == (2, 3, 48, 48)


def test_scan_cuts_faces_with_the_margin_of_the_training_crops(tmp_path):
    from ddtool.scan.detector import load_detector
    from ddtool.scan.pipeline import make_extractor

    name = register_tiny()
    wide = save_checkpoint(TinyDetector(), tmp_path / "wide", name, {}, input={"kind": "image", "size": 48, "margin": 0.5})
    plain = save_checkpoint(TinyDetector(), tmp_path / "plain", name, {}, input={"kind": "image", "size": 48})
    wide_detector = load_detector(None, str(wide), False, "cpu")
    assert wide_detector.crop_margin == 0.5
    assert load_detector(None, str(plain), False, "cpu").crop_margin == 0.0  # the papers' crop: the face box
    assert make_extractor(ScanOptions(), wide_detector).margin == 0.5
    assert make_extractor(ScanOptions(margin=0.1), wide_detector).margin == 0.1  # --margin wins
    with pytest.raises(Exception, match="--margin"):
        ScanOptions(margin=3.0).validate()


def test_report_images_come_from_the_one_decode(checkpoints, face_video, monkeypatch):
    """Native crops and thumbnails for the report are cut while scanning: the video is decoded once,
    and they are the same pixels a second decode would give."""
    import ddtool.media.video as video
    from ddtool.media.faces import Box, crop_face
    from ddtool.scan.detector import load_detector
    from ddtool.scan.pipeline import EVIDENCE_CROPS, NATIVE_CROP_MAX, ScanOptions, scan_file

    detector = load_detector(weights=checkpoints["fake"])
    calls = []
    real_read = video.read_frames
    monkeypatch.setattr(video, "read_frames", lambda *a, **k: (calls.append(a), real_read(*a, **k))[1])
    result = scan_file(face_video, ScanOptions(frames=20, evidence_images=True, batch=4), detector)
    assert len(calls) == 1 and len(result.frames) >= 2 * EVIDENCE_CROPS
    assert result.evidence and all(e.native is not None and e.thumb is not None for e in result.evidence)
    monkeypatch.setattr(video, "read_frames", real_read)
    for e in result.evidence:
        frame = next(real_read(face_video, [e.frame_index])).image
        assert e.thumb.shape[1] == frame.shape[1] * e.thumb_scale
        box = next(f for f in result.frames if f.frame_index == e.frame_index).box
        assert tuple(e.box) == tuple(box)
        assert max(e.native.shape[:2]) <= NATIVE_CROP_MAX
        side = e.native.shape[0]
        again = crop_face(frame, Box(*e.box, 1.0), margin=detector.crop_margin, size=side)
        assert np.array_equal(again, e.native)


def test_scoring_switches_to_a_frozen_trace_with_the_same_scores(monkeypatch):
    """Long scans score through a frozen TorchScript trace of the model: same P(fake) as the eager
    model, used only after enough faces for the tracing to pay off; Grad-CAM keeps the eager model."""
    import ddtool.models.torch_scorer as torch_scorer
    from ddtool.scan.detector import load_detector

    monkeypatch.setattr(torch_scorer, "FREEZE_AFTER_FACES", 6)
    # A shipped model, on torch (the path of a checkpoint without an ONNX export): the trace must hold for real weights.
    detector = load_detector(weights="meso4_f2f", engine="torch")
    assert detector.engine == "torch"
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for _ in range(5)]
    eager = detector.fake_probability(faces, batch=4)
    assert not isinstance(getattr(detector.scorer, "_frozen", None), torch.jit.ScriptModule)  # 5 faces: still eager
    detector.fake_probability(faces, batch=4)
    frozen = detector.fake_probability(faces, batch=4)
    assert isinstance(detector.scorer._frozen, torch.jit.ScriptModule) and isinstance(detector.model, torch.nn.Module)
    np.testing.assert_allclose(frozen, eager, rtol=1e-4, atol=1e-5)


def test_stage_threads_default_and_bad_values():
    from ddtool.device import stage_threads
    from ddtool.errors import ConfigError

    assert stage_threads(None) >= 1 and stage_threads(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--threads"):
            ScanOptions(threads=bad).validate()


def test_a_heavy_model_scores_on_every_core_unless_threads_are_given(monkeypatch, checkpoints):
    """The CLIP tower is the scan's bottleneck: its scorer gets every core; a light model keeps one stage's share, and
    --threads is obeyed for both. The flag travels in a card's recorded model facts (scan stays torch-free)."""
    from ddtool.device import scoring_threads, stage_threads
    from ddtool.models.cards import RecordedSpec, recorded_spec, spec_block
    from ddtool.models.registry import get_spec

    monkeypatch.setattr("ddtool.device.usable_cores", lambda: 8)
    assert scoring_threads(None, heavy_per_face=True) == 8
    assert scoring_threads(None, heavy_per_face=False) == stage_threads(None) == 3
    assert scoring_threads(2, heavy_per_face=True) == 2 and scoring_threads(2, heavy_per_face=False) == 2
    assert get_spec("clip_vit_b16").heavy_per_face and not get_spec("efficientnet_lite0").heavy_per_face
    block = spec_block(get_spec("clip_vit_b16"))
    assert recorded_spec({"model": "clip_vit_b16", "model_spec": block}).heavy_per_face
    assert RecordedSpec(name="old card").heavy_per_face is False  # cards recorded before the flag: light

    import ddtool.models.loader as loader
    from ddtool.scan.panel import panel_for

    seen, real_open = [], loader.open_model
    monkeypatch.setattr(loader, "open_model", lambda *a, **k: seen.append(k["threads"]) or real_open(*a, **k))

    panel_for(ScanOptions(weights=str(checkpoints["real"])))
    panel_for(ScanOptions(weights=str(checkpoints["real"]), threads=5))
    assert seen == [3, 5]  # a light test checkpoint: one stage's share by default


def test_result_records_how_faces_were_found(checkpoints, face_video):
    from ddtool.scan.detector import load_detector
    from ddtool.scan.pipeline import scan_file

    result = scan_file(face_video, ScanOptions(frames=2), load_detector(weights=checkpoints["real"]))
    facts = result.to_dict()["face_detector"]
    assert facts == {"name": "centerface", "max_side": 640, "coarse_side": 320, "min_score": 0.5, "model_file": "centerface.onnx"}
    hog = scan_file(face_video, ScanOptions(frames=2, detector="hog"), load_detector(weights=checkpoints["real"])).to_dict()["face_detector"]
    assert hog["name"] == "hog" and hog["coarse_side"] is None and hog["model_file"] is None


def test_panel_scores_are_not_called_p_fake_in_srt_and_captions():
    from ddtool.scan.evidence import FaceEvidence
    from ddtool.scan.report import _caption

    result = ScanResult("clip.mp4", "video", "uncertain", 0.9, 0.86, "mean", score_kind="panel")
    result.segments = [{"track_id": 0, "start": 1.0, "end": 2.0, "start_frame": 10, "end_frame": 20, "peak": 0.93, "mean": 0.9}]
    assert "peak panel score 0.93" in segments_srt(result)
    evidence = FaceEvidence(10, 1.0, 0, 0.93, np.zeros((8, 8, 3), np.uint8))
    assert "panel score 0.930" in _caption({"kind": "video", "score_kind": "panel"}, evidence)
    assert "P(fake) 0.930" in _caption({"kind": "video", "score_kind": "p_fake"}, evidence)


def test_threads_follow_the_cores_this_process_may_use(monkeypatch):
    """A Slurm task or container limited to 3 of 64 cores: the CPU affinity, not the machine's count, sizes the threads."""
    import os

    from ddtool.device import scoring_threads, stage_threads, usable_cores

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert usable_cores() == 3 and stage_threads(None) == 1 and scoring_threads(None, heavy_per_face=True) == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert usable_cores() == 64
