"""LightGBM noise-pattern classifier: the DFDC student study's "LGB" model.

A scikit-learn style estimator over a matrix of handcrafted residual
statistics (one row per face, e.g. from ddtool.features.noise), labels 0 =
real, 1 = fake. Models are stored in LightGBM's own text format, which is
parsed, never executed: a hostile file can at worst fail to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ddtool.errors import CheckpointError, ConfigError, InputError
from ddtool.io import write_text_atomic
from ddtool.models.registry import ModelSpec, TrainDefaults, register_model

# A LightGBM text model of a few thousand trees is a few MB; anything far
# larger is not one of ours and is refused before parsing.
MAX_MODEL_BYTES = 256 * 1024 * 1024
_REQUIRED_MODEL_LINES = ("version=", "num_class=", "max_feature_idx=", "objective=")


def _as_matrix(X: Any, what: str) -> np.ndarray:
    try:
        matrix = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a numeric array of shape (n_faces, n_features): {exc}") from None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise InputError(f"{what} must be a 2-D array (n_faces, n_features) with at least one row and column, got shape {matrix.shape}")
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if rows.size > 5 else "")
        raise InputError(
            f"{what} has NaN or infinite values in {rows.size} row(s) (rows {shown}); "
            "recompute those faces' features or drop the rows"
        )
    return matrix


def _as_labels(y: Any, n_rows: int, what: str) -> np.ndarray:
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_rows:
        raise InputError(f"{what} must be a 1-D array with one label per row ({n_rows}), got shape {labels.shape}")
    if labels.size and not np.isin(labels, (0, 1)).all():
        found = ", ".join(str(v) for v in np.unique(labels)[:5])
        raise InputError(f"{what} must hold 0 (real) or 1 (fake) only; found {found}")
    return labels.astype(np.int64)


class NoiseLightGBM(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees over residual statistics; fit / predict_proba / save / load.

    Hyper-parameters are LightGBM's (the study tuned its model but reports no
    values; the defaults here are LightGBM's own, see docs/models-seed.md).
    """

    weights_suffix = ".lgbm.txt"
    weights_format = "lightgbm"

    def __init__(
        self,
        n_estimators: int = 100,
        learning_rate: float = 0.1,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 20,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 0.0,
        early_stopping_rounds: int | None = None,
        random_state: int = 7,
        n_jobs: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def __sklearn_tags__(self):
        # Real (0) vs fake (1) only: scikit-learn's checks then pose binary problems.
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # -- training -----------------------------------------------------------
    def _booster_params(self) -> dict[str, Any]:
        checks = {
            "n_estimators": self.n_estimators >= 1,
            "learning_rate": self.learning_rate > 0,
            "num_leaves": self.num_leaves >= 2,
            "min_child_samples": self.min_child_samples >= 1,
            "subsample": 0 < self.subsample <= 1,
            "colsample_bytree": 0 < self.colsample_bytree <= 1,
            "reg_lambda": self.reg_lambda >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"LightGBM option {name}={getattr(self, name)!r} is out of range")
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": self.subsample,
            "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": self.colsample_bytree,
            "lambda_l2": self.reg_lambda,
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }

    def fit(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | Sequence[tuple[Any, Any]] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> "NoiseLightGBM":
        """Train on X (n_faces, n_features) and y (0 real / 1 fake).

        eval_set: (X_val, y_val) or a list of them; their log-loss per round
        lands in `evals_result_`, and with early_stopping_rounds the first one
        picks the number of trees.
        """
        import lightgbm as lgb

        params = self._booster_params()
        matrix = _as_matrix(X, "training features X")
        labels = _as_labels(y, matrix.shape[0], "training labels y")
        if np.unique(labels).size < 2:
            raise InputError("training labels y hold only one class; the classifier needs both real (0) and fake (1) faces")
        if feature_names is not None and len(feature_names) != matrix.shape[1]:
            raise InputError(f"got {len(feature_names)} feature names for {matrix.shape[1]} feature columns")
        names = list(feature_names) if feature_names is not None else "auto"
        train = lgb.Dataset(matrix, labels, feature_name=names, free_raw_data=True)

        valid_sets, valid_names = [], []
        if eval_set is not None:
            pairs = [eval_set] if isinstance(eval_set, tuple) else list(eval_set)
            for i, pair in enumerate(pairs):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise InputError("eval_set must be (X_val, y_val) or a list of such pairs")
                val_x = _as_matrix(pair[0], f"eval_set[{i}] features")
                if val_x.shape[1] != matrix.shape[1]:
                    raise InputError(f"eval_set[{i}] has {val_x.shape[1]} feature columns, training data has {matrix.shape[1]}")
                val_y = _as_labels(pair[1], val_x.shape[0], f"eval_set[{i}] labels")
                valid_sets.append(lgb.Dataset(val_x, val_y, reference=train))
                valid_names.append(f"valid_{i}")
        if self.early_stopping_rounds and not valid_sets:
            raise ConfigError("early_stopping_rounds needs an eval_set to watch")

        evals: dict[str, Any] = {}
        callbacks = [lgb.record_evaluation(evals)]
        if self.early_stopping_rounds and valid_sets:
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False))
        params["metric"] = "binary_logloss"
        self.booster_ = lgb.train(
            params,
            train,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets or None,
            valid_names=valid_names or None,
            callbacks=callbacks,
        )
        self.evals_result_ = evals
        self._set_fitted_attributes()
        return self

    def _set_fitted_attributes(self) -> None:
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = self.booster_.num_feature()
        self.feature_names_ = list(self.booster_.feature_name())

    # -- inference ----------------------------------------------------------
    def _check_fitted(self) -> None:
        if getattr(self, "booster_", None) is None:
            raise ConfigError("the LightGBM classifier is not trained yet: call fit() or load a saved model first")

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, 2) probabilities: column 0 real, column 1 fake."""
        self._check_fitted()
        matrix = _as_matrix(X, "features X")
        if matrix.shape[1] != self.n_features_in_:
            raise InputError(
                f"features X has {matrix.shape[1]} columns but the model was trained on {self.n_features_in_}; "
                "compute the features with the same extractor version"
            )
        fake = self.booster_.predict(matrix, num_iteration=self.booster_.best_iteration or None)
        return np.column_stack([1.0 - fake, fake])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)

    # -- persistence --------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the model as LightGBM text (atomically)."""
        self._check_fitted()
        path = Path(path)
        write_text_atomic(path, self.booster_.model_to_string(num_iteration=self.booster_.best_iteration or None))
        return path

    def load(self, path: str | Path) -> "NoiseLightGBM":
        """Replace this estimator's model with the one in `path` (LightGBM text format)."""
        import lightgbm as lgb

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"LightGBM model file not found: {path}")
        size = path.stat().st_size
        if size == 0 or size > MAX_MODEL_BYTES:
            raise CheckpointError(f"{path} is {size} bytes: not a LightGBM model file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is not a LightGBM text model: {exc}") from None
        header = text[:4096]
        missing = [key for key in _REQUIRED_MODEL_LINES if f"\n{key}" not in header]
        if not header.startswith("tree\n") or missing or "end of trees" not in text:
            raise CheckpointError(f"{path} is not a complete LightGBM text model (bad header or truncated); re-save or re-train it")
        if "\nobjective=binary" not in header or "\nnum_class=1\n" not in header:
            raise CheckpointError(f"{path} is not a binary real/fake LightGBM model")
        try:
            booster = lgb.Booster(model_str=text)
        except lgb.basic.LightGBMError as exc:
            raise CheckpointError(f"{path} could not be parsed as a LightGBM model: {exc}") from None
        self.booster_ = booster
        self.evals_result_ = {}
        self._set_fitted_attributes()
        return self


def build_lgbm_noise(**kwargs) -> NoiseLightGBM:
    try:
        return NoiseLightGBM(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"lgbm_noise: {exc}") from None


register_model(
    ModelSpec(
        name="lgbm_noise",
        builder=build_lgbm_noise,
        description="LightGBM over handcrafted residual statistics (DFDC student study's noise-pattern classifier)",
        family="lgbm",
        input_kind="features",
        input_size=0,  # the feature count comes from the data
        mean=(),
        std=(),
        train=TrainDefaults(optimizer="gbdt", lr=0.1, lr_decay=1.0, epochs=100, batch_size=0, seed=7, augment=()),
        paper="DeepFake Detection in Deep Learning (DFDC student study), noise-pattern classifier",
    )
)
