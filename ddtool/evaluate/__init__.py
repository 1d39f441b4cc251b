"""Evaluation: metrics, frame -> video aggregation, checkpoint evaluation and comparison reports.

Modules:
  metrics        compute_metrics(labels, scores, threshold) and the ROC curve
  aggregate      aggregate / aggregate_video / suspicious_segments (also used by scan)
  predict        scores for a face cache with the model's own preprocessing
  evaluation     evaluate_checkpoint: predictions.csv + metrics.json, reused when unchanged
  report         build_report: cross-dataset / intra-dataset / ablation tables, ROC figure
  registry_data  named face caches (`ddtool data add`)
"""

from ddtool.evaluate.rules import RULES  # noqa: F401

_LAZY = {
    "Segment": "aggregate",
    "aggregate": "aggregate",
    "aggregate_video": "aggregate",
    "suspicious_segments": "aggregate",
    "compute_metrics": "metrics",
    "roc_curve": "metrics",
}


def __getattr__(name):
    # Imported on first use so `ddtool --help` does not pay for numpy/pandas.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"ddtool.evaluate.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ddtool.evaluate' has no attribute {name!r}")
