"""What the report and index say beside the verdict: the threshold actually used, which detector a Grad-CAM map
shows and why a map is flat, faces found but not scored, and never a bare "REAL"."""

from __future__ import annotations

import json

import cv2
import numpy as np
import torch

from conftest import FACE_IMAGE, run_cli
from ddtool.models.checkpoint import save_checkpoint
from ddtool.scan.evidence import FaceEvidence
from ddtool.scan.outputs import output_dir_name
from ddtool.scan.report import report_html
from test_explain import TinyDetector, register_tiny

PANEL_DOC = {
    "path": "x.jpg", "kind": "image", "verdict": "real", "score": 0.2, "score_kind": "panel", "threshold": 0.86, "band": [0.5, 0.86],
    "aggregate": "mean", "strength": {"level": "low", "reasons": ["weak"]},
    "scan": {"options": {"threshold": 0.5, "frames": 32}},
}


def test_options_mark_the_threshold_unused_where_the_band_decided():
    html = report_html(PANEL_DOC, [], None, None)
    assert "threshold: 0.5 (not used: the calibrated detectors&#x27; band decides, fake at 0.86 or above, real below 0.5, uncertain between)" in html
    single = report_html({**PANEL_DOC, "score_kind": "p_fake", "threshold": 0.5}, [], None, None)
    assert "threshold: 0.5<" in single  # one uncalibrated model: --threshold is what decided


def test_a_real_verdict_is_never_headlined_real():
    html = report_html(PANEL_DOC, [], None, None)
    assert "NO STRONG EVIDENCE OF MANIPULATION (low confidence)" in html and "not a finding that the file is authentic" in html
    assert ">REAL" not in html


def test_gradcam_names_its_panel_member_and_explains_a_flat_map(tmp_path):
    from ddtool.explain.gradcam import FLAT_MAP_NOTE
    from ddtool.scan.detector import load_detector

    name = register_tiny()
    model = TinyDetector()
    with torch.no_grad():
        model.head.weight.zero_()  # no feature moves the score: every Grad-CAM map is flat
    detector = load_detector(None, str(save_checkpoint(model, tmp_path / "flat_member", name, {})), False, "cpu")
    face = cv2.cvtColor(cv2.resize(cv2.imread(str(FACE_IMAGE)), (64, 64)), cv2.COLOR_BGR2RGB)
    doc = {**PANEL_DOC, "panel": [{"name": "flat_member", "score": 0.2}, {"name": "other_member", "score": 0.1}]}
    html = report_html(doc, [FaceEvidence(0, 0.0, 0, 0.2, face)], None, detector)
    assert "The maps show <strong>flat_member</strong>, the panel's first detector" in html and "other_member" in html
    assert "Grad-CAM of flat_member; " + FLAT_MAP_NOTE.replace("'", "&#x27;") in html


def test_faces_found_but_not_scored_are_reported(tmp_path, capsys):
    face = cv2.imread(str(FACE_IMAGE))
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), np.concatenate([face, face], axis=1))  # two faces side by side
    out = tmp_path / "ev"
    code, _, err = run_cli(["scan", two, "--model", register_tiny(), "--untrained", "--out", out], capsys)
    assert code in (0, 8), err
    folder = out / output_dir_name(two)
    found = json.loads((folder / "result.json").read_text())["faces_found"]
    assert found["most_in_one_frame"] == 2 and found["unscored"] == 1 and found["scored"] == "the largest face of each frame"
    assert "2 faces found in one frame" in (folder / "report.html").read_text() and "--all-faces" in (folder / "report.html").read_text()
    code, _, err = run_cli(["scan", two, "--model", register_tiny(), "--untrained", "--all-faces", "--out", out], capsys)
    found = json.loads((folder / "result.json").read_text())["faces_found"]
    assert found["unscored"] == 0 and "faces found in one frame" not in (folder / "report.html").read_text()
