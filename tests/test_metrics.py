"""Metrics agree with scikit-learn and behave on hand-made and degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from ddtool.errors import InputError
from ddtool.evaluate.metrics import compute_metrics, roc_curve, tpr_at_fpr


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    scores[:50] = np.round(scores[:50], 1)  # ties
    m = compute_metrics(labels, scores)
    predicted = (scores >= 0.5).astype(int)
    assert m["auc"] == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert m["ap"] == pytest.approx(skm.average_precision_score(labels, scores), abs=1e-12)
    assert m["bacc"] == pytest.approx(skm.balanced_accuracy_score(labels, predicted), abs=1e-12)
    assert m["acc"] == pytest.approx(skm.accuracy_score(labels, predicted), abs=1e-12)
    tn, fp, fn, tp = skm.confusion_matrix(labels, predicted).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["n_real"] + m["n_fake"] == m["n"] == 400


def test_roc_points_match_sklearn():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 2)
    fpr, tpr, thr = roc_curve(labels, scores)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_eer_hand_made():
    # real: 0.1 0.2 0.3 0.6, fake: 0.4 0.7 0.8 0.9 -> at threshold 0.6 one real passes
    # (FPR 1/4) and one fake is missed (FNR 1/4): EER 0.25 at 0.6
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9]
    m = compute_metrics(labels, scores)
    assert m["eer"] == pytest.approx(0.25)
    assert m["eer_threshold"] == pytest.approx(0.6)
    assert m["auc"] == pytest.approx(15 / 16)


def test_eer_interpolates_between_points():
    # real 0.2 0.6, fake 0.4 0.8: ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1);
    # FNR - FPR reaches 0 exactly at the point (0.5, 0.5): EER 0.5; a perfect split gives 0
    m = compute_metrics([0, 0, 1, 1], [0.2, 0.6, 0.4, 0.8])
    assert m["eer"] == pytest.approx(0.5)
    perfect = compute_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert perfect["eer"] == 0.0 and perfect["auc"] == 1.0
    assert perfect["eer_threshold"] == pytest.approx(0.8)


def test_tpr_at_fpr_conservative_step_rule():
    # 1000 real, 10 fake; two real scores are above every fake but one
    real = np.linspace(0.0, 0.5, 1000)
    real[-2:] = [0.95, 0.96]
    fake = np.array([0.97, 0.9, 0.89, 0.88, 0.87, 0.86, 0.85, 0.84, 0.83, 0.82])
    labels = np.r_[np.zeros(1000), np.ones(10)].astype(int)
    scores = np.r_[real, fake]
    m = compute_metrics(labels, scores)
    # FPR <= 1e-3 allows 1 false positive: thresholds above 0.95 only -> TPR 1/10
    assert m["tpr_at_fpr_0.001"] == pytest.approx(0.1)
    # FPR <= 1e-2 allows 10 false positives: everything above 0.5 -> TPR 1
    assert m["tpr_at_fpr_0.01"] == pytest.approx(1.0)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert tpr_at_fpr(fpr, tpr, 0.0) == pytest.approx(0.1)


def test_single_class_gives_nan_with_note():
    m = compute_metrics([1, 1, 1], [0.9, 0.4, 0.7])
    assert math.isnan(m["auc"]) and math.isnan(m["eer"]) and math.isnan(m["ap"])
    assert "only fake samples" in m["note"]
    assert m["bacc"] == pytest.approx(2 / 3)
    assert m["acc"] == pytest.approx(2 / 3)
    real_only = compute_metrics([0, 0], [0.1, 0.6])
    assert real_only["bacc"] == pytest.approx(0.5) and "only real" in real_only["note"]
    assert compute_metrics([0, 1], [0.2, 0.7])["note"] == ""


def test_threshold_changes_bacc_only():
    labels = [0, 0, 1, 1]
    scores = [0.2, 0.6, 0.55, 0.9]
    at_half = compute_metrics(labels, scores)
    at_07 = compute_metrics(labels, scores, threshold=0.7)
    assert at_half["auc"] == at_07["auc"]
    assert at_half["bacc"] == pytest.approx(0.75) and at_07["bacc"] == pytest.approx(0.75)
    assert at_07["tp"] == 1 and at_07["tn"] == 2


@pytest.mark.parametrize(
    "labels, scores, message",
    [([], [], "empty"), ([0, 1], [0.5], "labels but"), ([0, 2], [0.1, 0.2], "0 \\(real\\) or 1"), ([0, 1], [0.1, np.nan], "NaN")],
)
def test_bad_input(labels, scores, message):
    with pytest.raises(InputError, match=message):
        compute_metrics(labels, scores)
