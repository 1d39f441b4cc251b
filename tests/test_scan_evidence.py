"""Evidence that stands up: provenance in result.json, manifest + `ddtool verify`, honest report wording,
image and failed-input layouts, the folder index, and checks made before any slow work."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

from conftest import run_cli
from ddtool.cli.app import main
from ddtool.scan.outputs import output_dir_name
from ddtool.models.checkpoint import save_checkpoint
from test_explain import TinyDetector, register_tiny

REPO = Path(__file__).resolve().parents[1]
# A path that would be the training machine's: the card and the report must not carry it.
TRAINING_CACHE = "/train-box/secret_home/face_cache"


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory):
    name = register_tiny()
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    training = {
        "cache": TRAINING_CACHE,
        "manifest": TRAINING_CACHE + "/manifest.csv",
        "summary": f"12 real and 12 fake unit-test faces from face cache {TRAINING_CACHE}",
        "val": {"crops": 8, "real": 4, "fake": 4},
    }
    save_checkpoint(
        TinyDetector(fake_bias=8.0), folder / "tiny_fake", name, {},
        training_data=training, metrics={"val_auc": 0.71, "val_acc": 0.55},
        benchmark={"name": "unit bench", "split": "test", "auc": 0.64, "bacc": 0.6, "n_real": 5, "n_fake": 7, "level": "frame"},
        statement="This model was not trained or validated on FaceForensics++, Celeb-DF or DFDC.",
        config={"data": TRAINING_CACHE, "out": "/train-box/runs/x"},
    )
    return folder / "tiny_fake.safetensors"



def _strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


@pytest.fixture(scope="module")
def video_evidence(tmp_path_factory, face_video, fake_weights):
    """One scan of a copy of the test clip with case fields; (evidence folder, input copy, JSON item)."""
    root = tmp_path_factory.mktemp("scan")
    clip = root / "clip.mp4"
    clip.write_bytes(face_video.read_bytes())
    out = root / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", str(clip), "--weights", str(fake_weights), "--frames", "4", "--out", str(out), "--json",
              "--case", "C-042", "--examiner", "A. Analyst", "--note", "from the seized laptop"])
    assert exit_info.value.code == 8  # a fake verdict from a weak detector (AUC 0.64) needs review; it is no finding
    item = json.loads((out / output_dir_name(clip) / "result.json").read_text())
    return out / output_dir_name(clip), clip, item


def test_result_json_carries_input_container_scan_and_case_facts(video_evidence):
    folder, clip, item = video_evidence
    facts = item["input"]
    assert facts["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert facts["size_bytes"] == clip.stat().st_size and facts["path"] == str(clip)
    mtime = datetime.fromtimestamp(clip.stat().st_mtime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert facts["modified_utc"].startswith(mtime)
    container = item["container"]
    assert "mp4" in container["format"] and container["video"]["codec"] == "mpeg4"
    assert container["video"]["width"] == 320 and container["video"]["height"] == 240
    assert container["video"]["fps"] == 25.0 and container["video"]["frame_count"] == 30 and container["video"]["rotation"] == 0
    scan = item["scan"]
    assert set(scan["versions"]) >= {"ddtool", "python", "torch", "opencv", "pyav"}
    assert scan["started_utc"].endswith("Z") and scan["duration_s"] > 0 and scan["host"]
    assert "--case C-042" in scan["command"] and scan["options"]["frames"] == 4
    assert item["case"] == {"case": "C-042", "examiner": "A. Analyst", "note": "from the seized laptop"}
    (det,) = item["detectors"]
    assert det["sha256"] == item["weights_sha256"] and det["weights"] == "tiny_fake.safetensors"
    assert set(det["limits"]) == {"trained_on", "tested_on", "measured", "never_tested_on"}
    assert "AUC 0.64" in det["limits"]["measured"]


def test_card_and_report_carry_no_training_machine_path_and_no_raw_json(video_evidence, fake_weights):
    folder, _, _ = video_evidence
    card = json.loads(fake_weights.with_suffix(".json").read_text())
    assert not any(TRAINING_CACHE in s or s.startswith("/") for s in _strings(card)), card
    html = (folder / "report.html").read_text()
    assert TRAINING_CACHE not in html and "/train-box" not in html
    assert not re.search(r"\{\s*&quot;|\{\s*\"\w+\":", html), "raw JSON in the report"
    assert "C-042" in html and "A. Analyst" in html and "from the seized laptop" in html
    for words in ("Trained on", "Tested on", "Measured", "Never tested on", "AUC 0.64"):
        assert words in html
    # the fake verdict is not painted as confident: the detector measured AUC 0.64
    assert 'class="verdict fake low"' in html and "low confidence" in html


def test_shipped_cards_describe_data_by_name_never_by_path():
    from ddtool.weights import card_paths

    # The check finds what the issue found in reports, and lets the card's own repository files, URLs and
    # an imported model's upstream repository (owner/name) stand.
    planted = {"config": {"data": "../../data/cache_realfaces"}, "benchmark": {"cache": "offline_cache/cache", "command": "x --out /tmp/r"},
               "origin": {"repository": "DariusAf/MesoNet", "file": "weights/Meso4_DF.h5"},
               "training_command": "python benchmarks/realdf.py --weights weights/NAME.json", "url": "https://example.org/a/b"}
    assert [p.split(": ")[1] for p in card_paths(planted)] == ["../../data/cache_realfaces", "offline_cache/cache", "/tmp/r"]
    for card_path in sorted((REPO / "weights").glob("*.json")):
        card = json.loads(card_path.read_text())
        assert card_paths(card) == [], card_path.name
        bad = [s for s in _strings(card) if re.search(r"(^|[\s=(])(\.\./|~/|/(work|home|root|tmp|Users)/)|\b(offline_cache\d*|scratch|runs)/", s)]
        assert not bad, f"{card_path.name}: {bad[:3]}"


def test_verify_intact_then_one_changed_byte_fails(video_evidence, capsys):
    folder, clip, _ = video_evidence
    code, _, err = run_cli(["verify", folder], capsys)
    assert code == 0 and "intact" in err and "1 input" in err
    scores = folder / "scores.csv"
    original = scores.read_bytes()
    scores.write_bytes(original[:10] + bytes([original[10] ^ 1]) + original[11:])
    try:
        code, _, err = run_cli(["verify", folder], capsys)
        assert code == 1 and "CHANGED" in err and "scores.csv" in err
    finally:
        scores.write_bytes(original)
    data = clip.read_bytes()
    clip.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    try:
        code, _, err = run_cli(["verify", folder], capsys)
        assert code == 1 and "input" in err and "differs" in err
        code, _, err = run_cli(["verify", folder, "--no-input"], capsys)
        assert code == 0
    finally:
        clip.write_bytes(data)
    (folder / "extra.txt").write_text("added later")
    try:
        code, _, err = run_cli(["verify", folder], capsys)
        assert code == 1 and "extra.txt" in err
    finally:
        (folder / "extra.txt").unlink()
    code, _, err = run_cli(["verify", folder.parent], capsys)
    assert code == 3 and "no manifest.sha256" in err


def test_image_has_score_bar_no_timeline_no_srt(tmp_path, face_image, fake_weights, capsys):
    out = tmp_path / "o"
    code, _, _ = run_cli(["scan", face_image, "--weights", fake_weights, "--out", out], capsys)
    assert code == 8  # weak detector: a fake verdict needs review
    folder = out / output_dir_name(face_image)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.sha256", "report.html", "result.json", "scores.csv"]
    html = (folder / "report.html").read_text()
    assert "scorebar" in html and "<h2>Timeline</h2>" not in html and "Suspicious segments" not in html
    assert "1 frame" in html and "1 frames" not in html


def test_single_sample_segment_is_one_time_and_rule_is_stated():
    from ddtool.scan.report import _segments

    doc = {"kind": "video", "verdict": "real", "threshold": 0.5, "info": {"fps": 10.0},
           "frames": [{"timestamp": t} for t in (0.0, 1.0, 2.1, 3.0)],
           "segments": [{"track_id": 0, "start": 2.1, "end": 2.1, "start_frame": 21, "end_frame": 21, "peak": 0.6, "mean": 0.6}]}
    html = _segments(doc)
    assert "at 2.10 s (one sample)" in html and "2.10&ndash;2.10" not in html
    assert "How segments are made" in html and "1.5 times the median sampling interval" in html


def test_strength_is_low_near_threshold_or_with_a_weak_detector():
    from ddtool.scan.wording import verdict_strength

    strong = [{"name": "d", "measured_auc": 0.97}]
    assert verdict_strength("real", 0.05, 0.5, strong)["level"] == "high"
    assert verdict_strength("real", 0.45, 0.5, strong)["level"] == "low"
    weak = verdict_strength("real", 0.05, 0.5, [{"name": "d", "measured_auc": 0.63, "measured_on": "x"}])
    assert weak["level"] == "low" and "AUC 0.63" in weak["reasons"][0]
    assert verdict_strength("uncertain", 0.05, 0.5, strong)["level"] == "low"


def test_report_shows_a_detector_panel_when_present():
    from ddtool.scan.report import report_html

    doc = {"path": "x.mp4", "kind": "video", "verdict": "uncertain", "score": 0.55, "threshold": 0.5, "aggregate": "mean",
           "strength": {"level": "low", "reasons": ["the detectors disagree"]},
           "panel": [{"name": "ldfnet", "weights": "a.safetensors", "sha256": "ab" * 32, "score": 0.7, "operating_point": 0.6,
                      "reference_percentile": 0.93, "verdict": "fake"},
                     {"name": "meso", "weights": "b.safetensors", "sha256": "cd" * 32, "score": 0.2, "operating_point": 0.5,
                      "reference_percentile": 0.40, "verdict": "real"}]}
    html = report_html(doc, [], None)
    assert 'class="verdict uncertain low"' in html and "UNCERTAIN" in html
    assert "meso" in html and "93%" in html and "cd" * 32 in html  # reference_percentile is a share of real reference faces


def test_failed_input_writes_only_an_error_entry(tmp_path, fake_weights, capsys):
    bad = tmp_path / "cut.mp4"
    data = (REPO / "examples" / "astronaut_fake.mp4").read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.3)])  # the first 30%: header, no moov
    out = tmp_path / "o"
    code, _, err = run_cli(["scan", bad, "--weights", fake_weights, "--out", out], capsys)
    assert code == 3
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and "truncated or corrupt" in line[0] and "moov" in line[0] and "convert it" not in line[0]
    folder = out / output_dir_name(bad)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.sha256", "report.html", "result.json"]
    item = json.loads((folder / "result.json").read_text())
    assert item["verdict"] == "error" and item["frames"] == [] and "truncated" in item["errors"][0]
    assert item["input"]["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()


def test_folder_scan_writes_index_and_summary(tmp_path, face_video, fake_weights, capsys):
    case = tmp_path / "case"
    (case / "sub").mkdir(parents=True)
    (case / "sub" / "clip.mp4").write_bytes(face_video.read_bytes())
    (case / "broken.mp4").write_text("not a video\n")
    out = tmp_path / "out"
    code, _, _ = run_cli(["scan", case, "--weights", fake_weights, "--frames", "3", "--out", out, "--no-report"], capsys)
    assert code == 6  # one failure, and a fake verdict from a weak detector (no finding of manipulation)
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["verdict"] for r in rows] == ["error", "fake"]
    assert rows[1]["sha256"] == hashlib.sha256(face_video.read_bytes()).hexdigest()
    # The panel names each detector by its weights (the shipped name): tiny_fake here.
    assert rows[1]["detector_scores"].startswith("tiny_fake=") and float(rows[1]["score"]) > 0.9
    # The cut each score was judged against (a video's and a photo's differ): none without a score.
    assert rows[0]["threshold"] == "" and rows[1]["threshold"] == "0.5"
    # --no-report: the index links each input's result.json instead
    clip = output_dir_name(case / "sub" / "clip.mp4", case)
    assert "text file" in rows[0]["errors"] and rows[1]["report"] == f"{clip}/result.json" and rows[1]["folder"] == clip
    index = (out / "index.html").read_text()
    assert f'href="{clip}/result.json"' in index and "text file" in index and "Exit code 6" in index
    assert "fake from 0.5</span>" in index
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 0 and "2 input folder(s)" in err
    (out / clip / "scores.csv").write_text("tampered\n")
    code, _, err = run_cli(["verify", out], capsys)
    assert code == 1 and f"{clip}/scores.csv" in err


def test_out_that_is_a_file_fails_before_scanning(tmp_path, face_video, fake_weights, capsys, monkeypatch):
    import ddtool.scan.detector as detector_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load before the output path is checked")

    monkeypatch.setattr(detector_module, "load_detector", no_model)
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(["scan", face_video, "--weights", fake_weights, "--out", afile], capsys)
    assert code == 3 and "existing file" in err and len([l for l in err.splitlines() if l.startswith("error:")]) == 1
    code, _, err = run_cli(["scan", tmp_path / "missing.mp4"], capsys)
    assert code == 3 and "no such file" in err and "Traceback" not in err


def test_missing_input_fails_without_importing_torch(tmp_path):
    import subprocess
    import sys

    probe = (
        "import sys\nfrom ddtool.cli.app import main\n"
        "try:\n    main(['scan', sys.argv[1]])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TORCH' if 'torch' in sys.modules else 'NOTORCH', code)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "missing.mp4")], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.split()[-2:] == ["NOTORCH", "3"], done.stdout + done.stderr
    assert "no such file" in done.stderr


def test_container_facts_read_display_rotation(tmp_path):
    av = pytest.importorskip("av")
    import numpy as np

    from ddtool.media.container import container_facts

    path = tmp_path / "phone.mp4"
    out = av.open(str(path), "w")
    stream = out.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    if not hasattr(stream, "set_display_rotation"):
        out.close()
        pytest.skip("this PyAV cannot write a display matrix")
    stream.set_display_rotation(90)
    for _ in range(5):
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    facts = container_facts(path)
    assert facts["video"]["rotation"] == 90 and facts["video"]["width"] == 64 and facts["video"]["frame_count"] == 5
    assert "error" in container_facts(tmp_path / "missing.mp4")
