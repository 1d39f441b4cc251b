"""LightGBM noise classifier: learning, validation, safe persistence, checkpoints."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import check_estimator

from ddtool.errors import CheckpointError, ConfigError, InputError
from ddtool.models import create_model, get_spec
from ddtool.models.lgbm import NoiseLightGBM
from ddtool.models.checkpoint import load_checkpoint, save_checkpoint


def separable(n: int = 300, features: int = 6, seed: int = 0):
    """Fakes have a weaker residual energy (column 0) and a shifted kurtosis (column 1)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, features))
    X[:, 0] += np.where(y == 1, -2.0, 2.0)
    X[:, 1] += np.where(y == 1, 1.5, -1.5)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = separable()
    return create_model("lgbm_noise", n_estimators=60, n_jobs=1).fit(X, y, eval_set=separable(100, seed=1))


def test_spec_and_unfitted_builder():
    spec = get_spec("lgbm_noise")
    assert spec.input_kind == "features"
    model = create_model("lgbm_noise")
    assert isinstance(model, NoiseLightGBM) and model.weights_suffix == ".lgbm.txt" and model.weights_format == "lightgbm"
    with pytest.raises(ConfigError, match="not trained"):
        model.predict_proba(np.zeros((1, 3)))


def test_learns_separable_task(fitted):
    X_test, y_test = separable(200, seed=2)
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (200, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y_test, proba[:, 1]) > 0.95
    assert "valid_0" in fitted.evals_result_
    assert fitted.score(X_test, y_test) > 0.9


def test_input_validation(fitted):
    X, y = separable(50)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        create_model("lgbm_noise").fit(bad, y)
    with pytest.raises(InputError, match="2-D"):
        fitted.predict_proba(X[0])
    with pytest.raises(InputError, match="columns"):
        fitted.predict_proba(X[:, :3])
    with pytest.raises(InputError, match="one label per row"):
        create_model("lgbm_noise").fit(X, y[:-1])
    with pytest.raises(InputError, match="0 \\(real\\) or 1"):
        create_model("lgbm_noise").fit(X, y + 1)
    with pytest.raises(InputError, match="only one class"):
        create_model("lgbm_noise").fit(X, np.zeros(50, int))
    with pytest.raises(ConfigError, match="learning_rate"):
        create_model("lgbm_noise", learning_rate=0).fit(X, y)
    with pytest.raises(ConfigError, match="eval_set"):
        create_model("lgbm_noise", early_stopping_rounds=5).fit(X, y)
    with pytest.raises(ConfigError):
        create_model("lgbm_noise", not_an_option=1)


def test_save_load_round_trip(fitted, tmp_path):
    path = fitted.save(tmp_path / "noise.lgbm.txt")
    assert path.read_text().startswith("tree\n")
    loaded = NoiseLightGBM().load(path)
    X, _ = separable(40, seed=3)
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x80\x81 not text",
        b"import os; os.system('echo pwned')\n",
        b"tree\nversion=v4\nnum_class=1\n",  # truncated
    ],
)
def test_corrupt_or_hostile_file_is_a_checkpoint_error(tmp_path, content):
    path = tmp_path / "bad.lgbm.txt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        NoiseLightGBM().load(path)


def test_truncated_real_model_is_refused(fitted, tmp_path):
    text = fitted.booster_.model_to_string()
    path = tmp_path / "cut.lgbm.txt"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError):
        NoiseLightGBM().load(path)


def test_checkpoint_round_trip(fitted, tmp_path):
    card = save_checkpoint(fitted, tmp_path / "noise", "lgbm_noise", {"n_estimators": 60}, metrics={"auc": 1.0})
    assert (tmp_path / "noise.lgbm.txt").is_file()
    model, info = load_checkpoint(card)
    assert info["format"] == "lightgbm" and info["model"] == "lgbm_noise"
    X, _ = separable(30, seed=4)
    np.testing.assert_array_equal(model.predict_proba(X), fitted.predict_proba(X))
    # A tampered weights file is caught by the card's sha256.
    weights = tmp_path / "noise.lgbm.txt"
    weights.write_text(weights.read_text().replace("tree\n", "tree\n\n", 1))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(card)


# --------------------------------------------------------------------------- scikit-learn's estimator checks

# The checks that do not apply, and why. ddtool's contract is narrower than a
# generic classifier's on purpose: labels are 0 (real) / 1 (fake), never other
# values, and bad input is a one-line InputError/ConfigError (what the CLI
# prints) rather than scikit-learn's ValueError/NotFittedError wording.
LABELS_ARE_0_AND_1 = "labels must be 0 (real) or 1 (fake); the check uses other class labels"
DDTOOL_ERRORS = "bad input raises ddtool's one-line InputError/ConfigError, not ValueError/NotFittedError"
NOT_APPLICABLE = {
    "check_estimators_dtypes": LABELS_ARE_0_AND_1,
    "check_complex_data": LABELS_ARE_0_AND_1,
    "check_classifier_data_not_an_array": LABELS_ARE_0_AND_1,
    "check_classifiers_classes": LABELS_ARE_0_AND_1,
    "check_fit2d_1feature": LABELS_ARE_0_AND_1,
    "check_classifiers_regression_target": LABELS_ARE_0_AND_1,
    "check_classifiers_one_label": "one class is refused: a detector needs real and fake faces",
    "check_fit2d_1sample": "one sample is one class: refused (needs real and fake faces)",
    "check_classifier_not_supporting_multiclass": DDTOOL_ERRORS,
    "check_estimators_unfitted": DDTOOL_ERRORS,
    "check_n_features_in_after_fitting": DDTOOL_ERRORS,
    "check_dtype_object": DDTOOL_ERRORS,
    "check_estimators_empty_data_messages": DDTOOL_ERRORS,
    "check_estimators_nan_inf": DDTOOL_ERRORS,
    "check_estimator_sparse_tag": DDTOOL_ERRORS,
    "check_estimator_sparse_array": DDTOOL_ERRORS,
    "check_estimator_sparse_matrix": DDTOOL_ERRORS,
    "check_classifiers_train": DDTOOL_ERRORS,
    "check_supervised_y_no_nan": DDTOOL_ERRORS,
    "check_supervised_y_2d": DDTOOL_ERRORS,
    "check_fit1d": DDTOOL_ERRORS,
    "check_fit2d_predict1d": DDTOOL_ERRORS,
    "check_requires_y_none": DDTOOL_ERRORS,
}


def test_sklearn_estimator_checks_that_apply_pass():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(NoiseLightGBM(n_estimators=5, n_jobs=1), on_fail=None,
                                  expected_failed_checks=NOT_APPLICABLE)
    names = {r["check_name"] for r in results}
    assert set(NOT_APPLICABLE) <= names, f"no longer a scikit-learn check: {sorted(set(NOT_APPLICABLE) - names)}"
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert not failed, "\n".join(failed)
    passed = [r for r in results if r["status"] == "passed"]
    assert len(passed) >= 25  # the ones that apply really ran
