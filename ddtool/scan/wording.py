"""Plain words for an analyst: what a detector's card says it can and cannot do, and how strong a verdict is.

The report, the index and result.json all take these sentences from here,
so the same limits and the same "low confidence" reasons appear everywhere.
"""

from __future__ import annotations

from typing import Any

# A verdict this close to the threshold is not called confident.
MARGIN_FOR_CONFIDENCE = 0.15
# A detector whose measured AUC is below this is weak evidence whatever its score.
AUC_FOR_CONFIDENCE = 0.9


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def measured_auc(card: dict[str, Any]) -> tuple[float | None, str]:
    """The detector's best-documented AUC and what it was measured on (benchmark test split, else validation)."""
    bench = card.get("benchmark") if isinstance(card.get("benchmark"), dict) else {}
    auc = _num(bench.get("auc"))
    if auc is not None:
        if bench.get("described"):  # a benchmark over several sources says in its card what it measured on
            return auc, str(bench["described"])
        n = f"{bench.get('n_real', '?')} real and {bench.get('n_fake', '?')} fake faces"
        return auc, f"the {bench.get('split', 'test')} split of {bench.get('name', 'its benchmark')} ({n})"
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    auc = _num(metrics.get("val_auc"))
    if auc is not None:
        return auc, "its validation set"
    return None, ""


def card_limits(card: dict[str, Any], untrained: bool = False) -> dict[str, str]:
    """Four sentences from a model card: trained on, tested on, measured, never tested on."""
    if untrained:
        return {
            "trained_on": "nothing: these are random weights (testing the pipeline only)",
            "tested_on": "nothing",
            "measured": "nothing: the scores are meaningless",
            "never_tested_on": "any real data",
        }
    training = card.get("training_data") if isinstance(card.get("training_data"), dict) else {}
    trained_on = (
        training.get("summary")
        or (f"face cache {training['cache']}" if training.get("cache") else None)
        or (f"dataset {training['dataset']}" if training.get("dataset") else None)
        or "not recorded in the card"
    )
    bench = card.get("benchmark") if isinstance(card.get("benchmark"), dict) else {}
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    tested, measured = [], []
    if bench.get("described"):
        tested.append(str(bench["described"]))
        if _num(bench.get("auc")) is not None:
            measured.append(f"AUC {bench['auc']:.2f} ({bench.get('metric', 'video level')})")
    elif bench:
        faces = f"{bench.get('n_real', '?')} real and {bench.get('n_fake', '?')} fake faces"
        cache = f" of face cache {bench['cache']}" if bench.get("cache") else ""
        tested.append(f"the {bench.get('split', 'test')} split{cache} ({faces}, never used for training), scored per {bench.get('level', 'face')}")
        parts = []
        if _num(bench.get("auc")) is not None:
            parts.append(f"AUC {bench['auc']:.2f}")
        if _num(bench.get("bacc")) is not None:
            parts.append(f"balanced accuracy {bench['bacc']:.2f}")
        if parts:
            measured.append(f"{' and '.join(parts)} on that test split")
    val = training.get("val") if isinstance(training.get("val"), dict) else {}
    if _num(metrics.get("val_auc")) is not None:
        on = f" ({val.get('crops')} faces: {val.get('real')} real, {val.get('fake')} fake)" if val.get("crops") else ""
        line = f"AUC {metrics['val_auc']:.2f}"
        if _num(metrics.get("val_acc")) is not None:
            line += f", accuracy {metrics['val_acc']:.2f} at threshold 0.5"
        measured.append(f"{line} on the validation set{on} the checkpoint was chosen on")
        if not tested:
            tested.append(f"its validation set{on}")
    auc, _ = measured_auc(card)
    scale = " (AUC 0.5 is chance, 1.0 is perfect ranking of fakes above reals"
    if auc is not None and auc < AUC_FOR_CONFIDENCE:
        scale += f"; {auc:.2f} means this detector is weak evidence on its own"
    scale += ")"
    statement = card.get("statement") or "not stated in the card: assume it was tested on nothing beyond the lines above"
    return {
        "trained_on": str(trained_on),
        "tested_on": "; ".join(tested) or "not recorded in the card",
        "measured": ("; ".join(measured) + scale) if measured else "no measurement recorded in the card",
        "never_tested_on": str(statement),
    }


def verdict_strength(verdict: str, score: float | None, threshold: float, detectors: list[dict[str, Any]]) -> dict[str, Any]:
    """{"level": high|low|none, "reasons": [...]}: low when the score is near the threshold,
    a detector is weak (measured AUC below AUC_FOR_CONFIDENCE) or untrained, or the verdict is uncertain."""
    if verdict in ("inconclusive", "error") or score is None:
        return {"level": "none", "reasons": ["no score: " + ("no usable face was found" if verdict == "inconclusive" else "the input could not be scanned")]}
    reasons = []
    if verdict == "uncertain":
        reasons.append("the detectors disagree or the score lies in the uncertain band")
    if abs(score - threshold) < MARGIN_FOR_CONFIDENCE:
        reasons.append(f"the score {score:.3f} is within {MARGIN_FOR_CONFIDENCE} of the threshold {threshold:g}")
    for det in detectors:
        if det.get("untrained"):
            reasons.append(f"{det.get('name')} is UNTRAINED (random weights)")
            continue
        auc = _num(det.get("measured_auc"))
        if auc is None:
            reasons.append(f"{det.get('name')} has no measured AUC in its card")
        elif auc < AUC_FOR_CONFIDENCE:
            reasons.append(f"{det.get('name')} measured only AUC {auc:.2f} on {det.get('measured_on') or 'its test data'}")
    return {"level": "low" if reasons else "high", "reasons": reasons}


# A panel verdict right less often than this on real deepfakes is never called confident.
ACCURACY_FOR_CONFIDENCE = 0.9


def panel_accuracy_reason(members: list[str]) -> str | None:
    """Why the panel's verdict is weak evidence, from its accuracy measured on real deepfakes (benchmarks/realdf.py);
    None when that accuracy reached ACCURACY_FOR_CONFIDENCE."""
    from ddtool.weights import panel_measurement

    record = panel_measurement(members)
    if record is None:
        return "this panel's verdicts were never measured on real deepfakes (benchmarks/realdf.py)"
    if record["accuracy"] >= ACCURACY_FOR_CONFIDENCE:
        return None
    return (
        f"measured on {record.get('dataset', 'realdf-dev')}: this panel's verdicts were right on "
        f"{100 * record['accuracy']:.0f}% of {record['n_videos']} videos ({100 * record['uncertain']:.0f}% uncertain, "
        f"{100 * record['accuracy_when_decided']:.0f}% right when it decided); video AUC {record['auc']:.2f} "
        f"[{record['ci95'][0]:.2f}, {record['ci95'][1]:.2f}]"
        + (f"; with the video cut chosen on the other sources, {100 * record['leave_one_source_out_pooled']:.0f}% right"
           + (" [{:.0f}, {:.0f}]".format(*(100 * v for v in record["leave_one_source_out_pooled_ci95"]))
              if record.get("leave_one_source_out_pooled_ci95") else "")
           if record.get("leave_one_source_out_pooled") is not None else "")
    )


# The headline of a verdict, by what it may claim (verdict.claim_of): never "REAL" (a detector cannot show a file is
# authentic) and never a plain "MANIPULATED" at low confidence. Commercial tools word it the same way.
HEADLINES = {
    "manipulated": "MANIPULATED",
    "review": "NEEDS REVIEW",
    "no_strong_evidence": "NO STRONG EVIDENCE OF MANIPULATION",
    "inconclusive": "INCONCLUSIVE: NO USABLE FACE",
    "error": "NOT SCANNED: ERROR",
}


def claim_words(verdict: str, level: str | None) -> str:
    """A verdict's claim in a few lower-case words, for counts ("4 needs review, 2 no strong evidence of manipulation")."""
    from ddtool.scan.verdict import claim_of

    claim = claim_of(verdict, level)
    return {"manipulated": "manipulated", "review": "needs review", "no_strong_evidence": "no strong evidence of manipulation"}.get(claim, verdict)


def headline(verdict: str, level: str | None) -> str:
    """The words shown in large type for a verdict at its strength (report, index, terminal)."""
    from ddtool.scan.verdict import claim_of

    claim = claim_of(verdict, level)
    words = HEADLINES.get(claim, verdict.upper())
    if claim == "review":
        words += ": POSSIBLE MANIPULATION, LOW CONFIDENCE" if verdict == "fake" else ": UNCERTAIN"
    elif claim == "no_strong_evidence" and level == "low":
        words += " (low confidence)"
    return words
