"""Operating points from real media only, reference percentiles, and the panel's verdict rule.

A detector's raw P(fake) means little on media unlike its training data; what
can be measured without fakes is how unusual a score is among real faces.
`ddtool weights calibrate` (scan.calibrate) scores real reference faces
(none of them in any detector's training data) and stores in the card:

    operating_point = {threshold, target_fpr, measured_fpr, n_faces, n_inputs,
                       reference, quantiles (101 values: 0th..100th percentile)}

threshold = the score flagging `target_fpr` (5%) of the reference faces.

Fusion rule (docs/scan.md "Verdicts"): every face gets, per detector, its
reference percentile (share of real reference faces scoring lower); the
face's panel score is the mean over the detectors; a track's score is the
`--aggregate` of its faces' panel scores and the input's is the maximum over
tracks. Verdict: fake when the panel score >= band[1], real when < band[0],
uncertain in between; inconclusive when no face was scored. The band is
`band_for(kind)`: BAND for a photo (one face), VIDEO_BAND for a video (a mean
over many faces, held to its own cut).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ddtool.errors import ConfigError, InputError

TARGET_FPR = 0.05
N_QUANTILES = 101
# The band of a photo's panel score (docs/benchmark-results/cross-source/RULE.md "The band", chosen for the default
# panel, clip_probe_ffpp_sbi alone): fake from the 99th percentile of real reference faces, the lowest of the 95th,
# 97th and 99th that flags at most 5% of realdf-dev's real photos (10.7%, 5.4%, 3.6%), real below it (no uncertain
# zone, as when the band also judged videos: every lower real cut scored fewer right verdicts then).
# Measured by `benchmarks/realdf.py`; docs/scan.md "Verdicts".
BAND = (0.99, 0.99)
# The band of a video's panel score (RULE.md "The video cut"): a video's score is the mean of many faces'
# percentiles, so fakes whose faces are only moderately unusual average out below a photo's cut (with 0.97 for
# both, 27% of fake videos were caught). The cut was chosen from 0.80-0.97 by mean video verdict accuracy over
# FF++ test, Celeb-DF and realdf-dev; chosen on two sources and measured on the third it scored 66.7% (realdf-dev),
# 70.8% (Celeb-DF) and 100% (FF++ test), 71.0% [64.9, 77.1] of the 148 videos. It flags 16.9% of those real videos
# (docs/benchmark-results/cross-source/verdicts.md).
VIDEO_BAND = (0.90, 0.90)


def operating_point(scores: Sequence[float], target_fpr: float = TARGET_FPR, reference: Any = None, n_inputs: int | None = None) -> dict[str, Any]:
    """The threshold flagging at most `target_fpr` of `scores` (real faces) and the percentile table."""
    values = np.sort(np.asarray(scores, np.float64))
    if values.size < 20:
        raise InputError(f"only {values.size} real reference faces were scored; calibration needs at least 20 (add reference media)")
    if not 0.0 < target_fpr < 1.0:
        raise ConfigError(f"target false-positive rate {target_fpr} must be between 0 and 1")
    threshold = float(np.quantile(values, 1.0 - target_fpr, method="higher"))
    if np.mean(values >= threshold) > target_fpr:  # ties at the quantile: move just above them
        threshold = float(np.nextafter(threshold, np.inf))
    return {
        "threshold": round(threshold, 6),
        "target_fpr": target_fpr,
        "measured_fpr": round(float(np.mean(values >= threshold)), 6),
        "n_faces": int(values.size),
        "n_inputs": n_inputs,
        "reference": reference,
        # Significant digits, not decimals: saturated detectors separate real faces at 1e-7 vs 1e-9.
        "quantiles": [float(f"{q:.7g}") for q in np.quantile(values, np.linspace(0.0, 1.0, N_QUANTILES))],
    }


def reference_percentile(scores: np.ndarray | float, point: dict[str, Any]) -> np.ndarray:
    """Share of real reference faces scoring strictly below each score, from the card's quantiles.

    A score tied with a block of reference faces counts none of them as below:
    a saturated P(fake) of 0 that most real faces share is "more unusual than 0%".
    """
    table = np.asarray(point["quantiles"], np.float64)
    steps = np.linspace(0.0, 1.0, table.size)
    scores = np.atleast_1d(np.asarray(scores, np.float64))
    lo = np.searchsorted(table, scores, side="left")
    hi = np.searchsorted(table, scores, side="right")
    # Strictly between two table values: linear interpolation; on a table value: the share below it.
    between = np.interp(scores, table, steps) if np.all(np.diff(table) > 0) else None
    out = np.empty_like(scores)
    for i, (a, b, s) in enumerate(zip(lo, hi, scores)):
        if b > a:
            out[i] = steps[a]
        elif a == 0:
            out[i] = 0.0
        elif a >= table.size:
            out[i] = 1.0
        elif between is not None:
            out[i] = between[i]
        else:
            x0, x1 = table[a - 1], table[a]
            out[i] = steps[a - 1] + (steps[a] - steps[a - 1]) * (s - x0) / (x1 - x0)
    return out


def band_words(band: Sequence[float], kind: str | None = None) -> str:
    """The verdict rule in words: "fake at 0.97 or above, real below" (no uncertain zone) or with one; a video's
    own cut says so (kind "video")."""
    low, high = float(band[0]), float(band[1])
    words = f"fake at {high:g} or above, real below" if low >= high else f"fake at {high:g} or above, real below {low:g}, uncertain between"
    if kind == "video" and tuple(band) != tuple(BAND):
        words += f" (a video's cut; a single photo's is {BAND[1]:g})"
    return words


def band_for(kind: str | None) -> tuple[float, float]:
    """The panel-score band a scanned input is judged by: VIDEO_BAND for a video, BAND for an image."""
    return VIDEO_BAND if kind == "video" else BAND


def verdict_for(score: float | None, band: tuple[float, float] = BAND) -> str:
    """fake / real / uncertain for a panel score in [0, 1]; inconclusive without one."""
    if score is None:
        return "inconclusive"
    if score >= band[1]:
        return "fake"
    if score < band[0]:
        return "real"
    return "uncertain"


def unusual_words(percentile: float) -> str:
    """What a reference percentile means, in the words scan and the report use."""
    return f"more unusual than {100 * percentile:.0f}% of real reference faces"
