"""Evaluation: metrics, frame -> video aggregation, checkpoint evaluation and comparison reports.

Modules:
  metrics        compute_metrics(labels, scores, threshold) and the ROC curve
  aggregate      aggregate / aggregate_video / suspicious_segments (also used by scan)
  predict        scores for a face cache with the model's own preprocessing
  evaluation     evaluate_checkpoint: predictions.csv + metrics.json, reused when unchanged
  report         build_report: cross-dataset / intra-dataset / ablation tables, ROC figure
  registry_data  named face caches (`ddtool data add`)
"""

from ddtool.evaluate.aggregate import RULES, Segment, aggregate, aggregate_video, suspicious_segments  # noqa: F401
from ddtool.evaluate.metrics import compute_metrics, roc_curve  # noqa: F401
