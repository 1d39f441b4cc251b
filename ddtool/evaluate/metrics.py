"""Binary detection metrics (label 1 = fake, score = fake probability).

Computed with numpy from one ROC sweep so that AUC, AP, EER and TPR@FPR come
from the same curve; values equal scikit-learn's (the tests compare them).

Choices the papers leave open:
- Predicted fake means `score >= threshold`; the threshold is 0.5 for ACC and
  BACC as in SFIConv (footnote 7), never tuned on the test set.
- EER is where the false-positive and false-negative rates cross, linearly
  interpolated between the two ROC points around the crossing;
  `eer_threshold` is the score threshold of the first ROC point at which the
  false-negative rate no longer exceeds the false-positive rate.
- TPR at a fixed FPR uses the conservative step rule: the best TPR of an
  actual threshold whose FPR does not exceed the target (no interpolation
  between thresholds, which would report a rate no threshold achieves). With
  fewer than 1/target real samples this is the TPR at FPR 0.
- With one class only, AUC, AP, EER and TPR@FPR are NaN and `note` says why;
  ACC and BACC (the recall of the present class) are still reported.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ddtool.errors import InputError

FPR_TARGETS = (1e-2, 1e-3)


def _validate(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size == 0:
        raise InputError("no samples to evaluate: the label list is empty (is the split empty?)")
    if y.shape != s.shape:
        raise InputError(f"{y.size} labels but {s.size} scores; every sample needs one score")
    if np.isnan(s).any():
        raise InputError(f"{int(np.isnan(s).sum())} score(s) are NaN; drop unscored samples before computing metrics")
    if not np.isin(y, (0, 1)).all():
        bad = sorted({str(v) for v in y[~np.isin(y, (0, 1))]})[:5]
        raise InputError(f"labels must be 0 (real) or 1 (fake); found {', '.join(bad)}")
    return y.astype(np.int64), s


def roc_curve(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) over every distinct score, starting at (0, 0) with threshold +inf.

    Point i classifies `score >= thresholds[i]` as fake. Needs both classes.
    """
    y, s = _validate(labels, scores)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError("an ROC curve needs both real and fake samples")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # last index of every run of equal scores: ties move the curve diagonally
    distinct = np.flatnonzero(np.diff(s_sorted)) if s_sorted.size > 1 else np.array([], dtype=np.int64)
    ends = np.r_[distinct, s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[ends]
    fps = (ends + 1) - tps
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s_sorted[ends]]
    return fpr, tpr, thresholds


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise AP = sum_n (R_n - R_{n-1}) P_n over distinct thresholds (scikit-learn's definition)."""
    order = np.argsort(-scores, kind="mergesort")
    s_sorted, y_sorted = scores[order], labels[order]
    ends = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[ends]
    precision = tps / (ends + 1)
    recall = tps / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _eer(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
    fnr = 1.0 - tpr
    diff = fnr - fpr  # starts at 1, ends at -1, never increases
    i = int(np.argmax(diff <= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i]), float(thresholds[i])
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    eer = fpr[i - 1] + t * (fpr[i] - fpr[i - 1])
    return float(eer), float(thresholds[i])


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """Best TPR among ROC points whose FPR <= target (conservative step rule)."""
    allowed = fpr <= target + 1e-12
    return float(tpr[allowed].max())


def fpr_key(target: float) -> str:
    return f"tpr_at_fpr_{target:g}"


def compute_metrics(
    labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """AUC, AP, ACC, BACC, EER (+ threshold), TPR@FPR 1e-2/1e-3 and confusion counts.

    Every value is a plain float/int (JSON-ready); undefined ones are NaN and
    explained in `note` (empty string when everything is defined).
    """
    y, s = _validate(labels, scores)
    predicted = (s >= threshold).astype(np.int64)
    tp = int(((predicted == 1) & (y == 1)).sum())
    tn = int(((predicted == 0) & (y == 0)).sum())
    fp = int(((predicted == 1) & (y == 0)).sum())
    fn = int(((predicted == 0) & (y == 1)).sum())
    n_fake, n_real = tp + fn, tn + fp
    recalls = [r for r, n in ((tp / n_fake if n_fake else None, n_fake), (tn / n_real if n_real else None, n_real)) if n]

    result: dict[str, Any] = {
        "n": int(y.size),
        "n_real": n_real,
        "n_fake": n_fake,
        "threshold": float(threshold),
        "auc": float("nan"),
        "ap": float("nan"),
        "acc": (tp + tn) / y.size,
        "bacc": float(np.mean(recalls)),
        "eer": float("nan"),
        "eer_threshold": float("nan"),
        **{fpr_key(t): float("nan") for t in FPR_TARGETS},
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "note": "",
    }
    if n_real == 0 or n_fake == 0:
        present = "fake" if n_fake else "real"
        result["note"] = (
            f"only {present} samples ({y.size}): AUC, AP, EER and TPR@FPR need both classes and are undefined; "
            f"BACC is the recall of the {present} class"
        )
        return result

    fpr, tpr, thresholds = roc_curve(y, s)
    result["auc"] = _auc(fpr, tpr)
    result["ap"] = _average_precision(y, s)
    result["eer"], result["eer_threshold"] = _eer(fpr, tpr, thresholds)
    for target in FPR_TARGETS:
        result[fpr_key(target)] = tpr_at_fpr(fpr, tpr, target)
    return result


# --------------------------------------------------------------------------- uncertainty

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
INTERVAL_METRICS = ("auc", "bacc", "eer")
# Fewer videos than this in either class and a score says little on its own:
# one video more or less moves AUC by several points. Reports flag such cells.
SMALL_SAMPLE_VIDEOS = 30
MIN_UNITS_FOR_INTERVAL = 2  # per class; below it no interval is given


def _auc_bacc_eer(y: np.ndarray, s: np.ndarray, threshold: float) -> tuple[float, float, float]:
    fpr, tpr, thresholds = roc_curve(y, s)
    predicted = s >= threshold
    fake, real = y == 1, y == 0
    bacc = 0.5 * (predicted[fake].mean() + (~predicted[real]).mean())
    return _auc(fpr, tpr), float(bacc), _eer(fpr, tpr, thresholds)[0]


def bootstrap_intervals(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float = 0.5,
    groups: Sequence[Any] | np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> dict[str, list[float] | None]:
    """Percentile bootstrap intervals of AUC, BACC and EER: {"auc": [low, high], ...}.

    Stratified: every resample draws, with replacement, as many real and as
    many fake units as the sample holds, so each resample has both classes and
    the class balance of the test set. A unit is one sample, or with `groups`
    one group (a video) with all of its rows: the faces of one video are not
    independent draws, and resampling them one by one would give intervals far
    narrower than the evidence supports. With one class only every interval
    is None (the metrics are undefined), as with fewer than 2 units in a class. Seeded, so a report is reproducible.
    """
    y, s = _validate(labels, scores)
    undefined = {name: None for name in INTERVAL_METRICS}
    if groups is None:
        units_by_class = [[np.array([i]) for i in np.flatnonzero(y == c)] for c in (0, 1)]
    else:
        keys = np.asarray(groups).ravel()
        if keys.shape != y.shape:
            raise InputError(f"{keys.size} group keys for {y.size} samples; every sample needs one")
        units_by_class = []
        for c in (0, 1):
            rows = np.flatnonzero(y == c)
            _, inverse = np.unique(keys[rows], return_inverse=True)
            units_by_class.append([rows[inverse == g] for g in range(inverse.max() + 1)] if rows.size else [])
    if min(len(units_by_class[0]), len(units_by_class[1])) < MIN_UNITS_FOR_INTERVAL:
        return undefined  # one unit a class resamples to itself: a zero-width "interval" would claim certainty
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, len(INTERVAL_METRICS)))
    for r in range(resamples):
        picked = []
        for units in units_by_class:
            picked.extend(units[i] for i in rng.integers(0, len(units), size=len(units)))
        index = np.concatenate(picked)
        draws[r] = _auc_bacc_eer(y[index], s[index], threshold)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(draws, [tail, 100 - tail], axis=0)
    return {name: [float(low[k]), float(high[k])] for k, name in enumerate(INTERVAL_METRICS)}


def with_uncertainty(
    metrics: dict[str, Any],
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    threshold: float,
    groups: Sequence[Any] | np.ndarray | None,
    videos_real: int,
    videos_fake: int,
) -> dict[str, Any]:
    """`metrics` plus its sample size in videos, 95% bootstrap intervals (`ci95`) and the small-sample flag."""
    result = dict(metrics)
    result["ci95"] = bootstrap_intervals(labels, scores, threshold, groups)
    result["bootstrap"] = {
        "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "confidence": CONFIDENCE,
        "unit": "video" if groups is not None else "sample", "stratified": True,
    }
    result["n_videos_real"], result["n_videos_fake"] = int(videos_real), int(videos_fake)
    result["small_sample"] = min(videos_real, videos_fake) < SMALL_SAMPLE_VIDEOS
    return result
