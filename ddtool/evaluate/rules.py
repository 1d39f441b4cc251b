"""Names of the frame -> video aggregation rules (kept apart from aggregate.py
so the CLI can list them without importing numpy/pandas)."""

RULES = ("mean", "median", "max", "top_k", "confident", "vote")
