"""The detector panel: JSON shape, calibration stored in the card and used by scan, the uncertain band, exit codes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli
from ddtool.errors import CheckpointError, InputError
from ddtool.scan.calibration import BAND, operating_point, reference_percentile, verdict_for
from ddtool.scan.verdict import EXIT_UNCERTAIN, exit_code_for_verdicts
from ddtool.models.checkpoint import save_checkpoint
from test_explain import TinyDetector, register_tiny

STATEMENT = "This model was not trained or validated on FaceForensics++, Celeb-DF or DFDC."


def _save(folder, stem, fake_bias, point=None, crop="box"):
    torch.manual_seed(0)
    extra = {"operating_point": point} if point else {}
    return save_checkpoint(TinyDetector(fake_bias=fake_bias), folder / stem, register_tiny(), {}, statement=STATEMENT,
                           input={"kind": "image", "size": 32, "crop": crop, "margin": 0.1}, **extra)


def _point_around(score: float, percentile: float) -> dict:
    """An operating point whose reference faces put `score` at `percentile`."""
    values = np.concatenate([np.linspace(score - 0.2, score - 1e-4, int(1000 * percentile)),
                             np.linspace(score + 1e-4, score + 0.2, 1000 - int(1000 * percentile))])
    return operating_point(values)


def _p_fake(fake_bias: float) -> float:
    return float(torch.sigmoid(torch.tensor(fake_bias)))



def test_operating_point_flags_at_most_the_target_share():
    scores = np.random.default_rng(0).random(517)
    point = operating_point(scores, 0.05)
    assert point["measured_fpr"] <= 0.05 and point["measured_fpr"] > 0.04 and point["n_faces"] == 517
    assert len(point["quantiles"]) == 101 and point["quantiles"][0] == pytest.approx(scores.min(), abs=1e-6)
    tied = np.r_[np.zeros(90), np.ones(10)]  # a saturated detector: 10% of real faces at 1.0
    assert operating_point(tied)["measured_fpr"] <= 0.05
    with pytest.raises(InputError, match="at least 20"):
        operating_point(scores[:5])


def test_reference_percentile_reads_the_quantile_table():
    point = operating_point(np.linspace(0.0, 1.0, 1001))
    np.testing.assert_allclose(reference_percentile(np.array([-1.0, 0.25, 0.9, 2.0]), point), [0.0, 0.25, 0.9, 1.0], atol=1e-3)
    tied = operating_point(np.r_[np.zeros(500), np.linspace(0.5, 1.0, 500)])
    assert reference_percentile(0.0, tied)[0] == 0.0  # a score most real faces share is unusual for none of them
    assert reference_percentile(0.75, tied)[0] == pytest.approx(0.75, abs=0.01)


def test_band_and_exit_codes():
    low, high = BAND
    assert 0.0 < low <= high < 1.0  # the shipped band may have no width (docs/scan.md "Verdicts")
    assert verdict_for(high) == "fake" and verdict_for(low - 1e-6) == "real"
    assert verdict_for(0.7, (0.5, 0.86)) == "uncertain" and verdict_for(0.86, (0.5, 0.86)) == "fake" and verdict_for(0.49, (0.5, 0.86)) == "real"
    assert verdict_for(None) == "inconclusive"
    assert exit_code_for_verdicts(["real", "uncertain"]) == EXIT_UNCERTAIN == 8
    assert exit_code_for_verdicts(["fake", "uncertain"]) == 1
    assert exit_code_for_verdicts(["uncertain", "error"]) == 6 and exit_code_for_verdicts(["fake", "error"]) == 7
    assert exit_code_for_verdicts(["real"]) == 0 and exit_code_for_verdicts(["inconclusive"]) == 4
    # The exit code never claims more than the verdict's strength: a low-confidence fake needs review, it is no finding.
    assert exit_code_for_verdicts(["fake", "real"], ["low", "high"]) == EXIT_UNCERTAIN
    assert exit_code_for_verdicts(["fake", "real"], ["high", "low"]) == 1
    assert exit_code_for_verdicts(["fake", "error"], ["low", "none"]) == 6
    assert exit_code_for_verdicts(["real", "real"], ["low", "low"]) == 0  # "no strong evidence", at any strength


def test_a_video_is_judged_by_its_own_cut_a_photo_by_the_band(tmp_path, face_image, face_video, capsys):
    """A video's score is a mean over many faces: it has its own cut (VIDEO_BAND), a single photo keeps BAND."""
    from ddtool.scan.calibration import VIDEO_BAND, band_for, band_words

    assert band_for("video") == VIDEO_BAND and band_for("image") == BAND
    assert VIDEO_BAND[1] < BAND[0]  # the video cut sits below the photo band (RULE.md "The video cut")
    assert band_words(VIDEO_BAND, "video") == f"fake at {VIDEO_BAND[1]:g} or above, real below (a video's cut; a single photo's is {BAND[1]:g})"
    between = (VIDEO_BAND[1] + BAND[0]) / 2
    weights = _save(tmp_path, "between", 0.0, _point_around(_p_fake(0.0), between))
    by_kind = {}
    for media in (face_image, face_video):
        _, stdout, stderr = run_cli(["scan", media, "--weights", weights, "--json", "--detector", "hog"], capsys)
        item = json.loads(stdout)["inputs"][0]
        by_kind[item["kind"]] = item
    assert by_kind["image"]["score"] == pytest.approx(between, abs=0.01) == by_kind["video"]["score"]
    assert by_kind["image"]["verdict"] == "real" and by_kind["image"]["band"] == list(BAND) and by_kind["image"]["threshold"] == BAND[1]
    assert by_kind["video"]["verdict"] == "fake" and by_kind["video"]["band"] == list(VIDEO_BAND) and by_kind["video"]["threshold"] == VIDEO_BAND[1]
    # A folder's summary.csv and index say which cut each input was judged against.
    case = tmp_path / "case"
    case.mkdir()
    (case / "photo.jpg").write_bytes(Path(face_image).read_bytes())
    (case / "clip.mp4").write_bytes(Path(face_video).read_bytes())
    run_cli(["scan", case, "--weights", weights, "--out", tmp_path / "out", "--no-report", "--detector", "hog"], capsys)
    with open(tmp_path / "out" / "summary.csv", newline="", encoding="utf-8") as fh:
        cuts = {row["kind"]: (row["verdict"], row["threshold"]) for row in csv.DictReader(fh)}
    assert cuts == {"image": ("real", f"{BAND[1]:g}"), "video": ("fake", f"{VIDEO_BAND[1]:g}")}


def test_panel_json_shows_every_detector_and_fuses_percentiles(tmp_path, face_image, capsys):
    high, low = _p_fake(3.0), _p_fake(-3.0)
    a = _save(tmp_path, "det_a", 3.0, _point_around(high, 0.999))
    b = _save(tmp_path, "det_b", -3.0, _point_around(low, 0.995), crop="box")
    code, stdout, _ = run_cli(["scan", face_image, "--panel", f"{a.with_suffix('')},{b.with_suffix('')}", "--json", "--detector", "hog"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["score_kind"] == "panel" and item["band"] == list(BAND) and item["threshold"] == BAND[1]
    rows = {row["name"]: row for row in item["panel"]}
    assert set(rows) == {"det_a", "det_b"}
    for row in rows.values():
        assert {"model", "weights", "sha256", "crop", "score", "tracks", "operating_point", "calibrated", "reference_percentile", "meaning", "verdict"} <= set(row)
        assert row["calibrated"] and row["meaning"].startswith("more unusual than")
    assert rows["det_a"]["reference_percentile"] == pytest.approx(0.999, abs=0.002)
    assert set(item["frames"][0]["scores"]) == {"det_a", "det_b"}
    assert item["score"] == pytest.approx(0.997, abs=0.002)  # mean of 0.999 and 0.995
    assert item["score"] >= BAND[1]
    # This panel was never measured on real deepfakes: its fake verdict is low confidence and needs review (exit 8).
    assert item["verdict"] == "fake" and item["strength"]["level"] == "low" and code == EXIT_UNCERTAIN
    assert item["headline"] == "NEEDS REVIEW: POSSIBLE MANIPULATION, LOW CONFIDENCE"
    assert [d["name"] for d in item["detectors"]] == [register_tiny()] * 2


def test_scores_in_the_band_are_uncertain_exit_8(tmp_path, face_image, capsys, monkeypatch):
    import ddtool.scan.calibration

    band = (0.5, 0.86)  # a band with an uncertain zone (the shipped one may have none)
    monkeypatch.setattr(ddtool.scan.calibration, "BAND", band)
    middle = (band[0] + band[1]) / 2
    a = _save(tmp_path, "mid", 0.0, _point_around(_p_fake(0.0), middle))
    code, stdout, _ = run_cli(["scan", face_image, "--weights", a, "--json"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["verdict"] == "uncertain" and code == EXIT_UNCERTAIN
    assert item["strength"]["level"] == "low"


def test_panel_refuses_uncalibrated_members(tmp_path, face_image, capsys):
    from ddtool.scan.panel import load_panel

    a = _save(tmp_path, "calibrated", 3.0, _point_around(_p_fake(3.0), 0.9))
    b = _save(tmp_path, "raw", -3.0)
    with pytest.raises(CheckpointError, match="raw have no operating point"):
        load_panel([str(a), str(b)])
    code, _, err = run_cli(["scan", face_image, "--panel", f"{a},{b}"], capsys)
    assert code == 3 and "ddtool weights calibrate" in err


def test_calibration_is_stored_in_the_card_and_used_by_scan(tmp_path, face_video, face_image, capsys):
    card = _save(tmp_path, "to_calibrate", 0.5)
    code, stdout, _ = run_cli(["weights", "calibrate", card, "--reference", face_video, "--frames", "24", "--label", "unit clip"], capsys)
    assert code == 0 and "stored in the card" in stdout
    point = json.loads(card.read_text())["operating_point"]
    assert point["reference"]["name"] == "unit clip" and point["n_faces"] >= 20 and point["measured_fpr"] <= 0.05
    assert point["reference"]["crop"] == "box" and len(point["quantiles"]) == 101
    code, stdout, _ = run_cli(["scan", face_image, "--weights", card, "--json"], capsys)
    item = json.loads(stdout)["inputs"][0]
    assert item["score_kind"] == "panel" and item["panel"][0]["operating_point"] == point["threshold"]


def test_default_panel_comes_from_panel_txt(tmp_path, face_image, monkeypatch, capsys):
    from ddtool.scan.panel import load_panel
    from ddtool.weights import panel_names

    for stem, bias in (("one", 3.0), ("two", -3.0)):
        _save(tmp_path, stem, bias, _point_around(_p_fake(bias), 0.6))
    (tmp_path / "panel.txt").write_text("# the default panel\none\ntwo  # second member\n")
    monkeypatch.setenv("DDTOOL_WEIGHTS", str(tmp_path))
    assert panel_names() == ["one", "two"]
    assert [m.key for m in load_panel().members] == ["one", "two"]


def test_verdict_says_when_the_face_detector_differs_from_the_calibration_one():
    from ddtool.scan.pipeline import ScanResult

    result = ScanResult("clip.mp4", "video", "uncertain", 0.6, 0.5, "mean", score_kind="panel")
    result.detectors = [{"key": "a", "name": "a", "measured_auc": 0.95, "operating_point": {"threshold": 0.7, "reference": {"face_detector": "centerface"}}}]
    result.session = {"options": {"detector": "centerface"}}
    assert result.face_detector_mismatch() is None
    result.session = {"options": {"detector": "hog"}}
    reason = result.face_detector_mismatch()
    assert reason and "measured on centerface face crops" in reason and "with hog" in reason
    strength = result.strength()
    assert strength["level"] == "low" and reason in strength["reasons"]
