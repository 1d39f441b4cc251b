"""Names of the frame -> video aggregation rules (kept apart from aggregate.py
so the CLI and scan's options can check them without importing numpy/pandas)."""

from ddtool.errors import ConfigError

RULES = ("mean", "median", "max", "top_k", "confident", "vote")


def check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ConfigError(f"unknown aggregation rule {rule!r}; choose one of: {', '.join(RULES)}")
    return rule
