"""Comparison reports over runs and test sets: the papers' tables, ROC curves, md/csv/html.

Layout follows SFIConv's Tables V-VI: one row per model + training data, one
column group per test set with the chosen metrics (AUC, BACC by default) in
percent, the best value of every column in bold. Without cross test sets each
run is scored on its own training cache's test split (intra-dataset table:
one column group per training dataset). Ablation mode adds one column per
switch (model kwargs and training config) whose value differs between runs.

Every run x test set pair goes through `evaluate_checkpoint`, so predictions
already on disk (same weights, same manifest) are reused, not recomputed.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ddtool.errors import CheckpointError, ConfigError
from ddtool.evaluate.evaluation import Evaluation, evaluate_checkpoint, level_scores, resolve_checkpoint
from ddtool.evaluate.metrics import BOOTSTRAP_RESAMPLES, INTERVAL_METRICS, SMALL_SAMPLE_VIDEOS, compute_metrics, roc_curve
from ddtool.evaluate.registry_data import resolve_dataset
from ddtool.io import atomic_path, write_bytes_atomic, write_text_atomic
from ddtool.models.checkpoint import CHECKPOINT_IS, card_path_for, read_card
from ddtool.weights import resolve_weights

METRICS = ("auc", "bacc", "acc", "ap", "eer", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001")
LOWER_IS_BETTER = {"eer"}
METRIC_LABELS = {"auc": "AUC", "bacc": "BACC", "acc": "ACC", "ap": "AP", "eer": "EER", "tpr_at_fpr_0.01": "TPR@1%", "tpr_at_fpr_0.001": "TPR@0.1%"}
# Config keys that change where or how fast a run went, not what it learned.
NOT_SWITCHES = {"out", "data", "device", "workers", "resume", "amp", "compile", "max_steps"}

ProgressHook = Callable[[str], None]


@dataclass
class RunInfo:
    label: str
    card_path: Path
    card: dict[str, Any]
    switches: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    out_dir: Path
    table: pd.DataFrame  # one row per run; columns "<test set>:<metric>" (fractions)
    best: dict[str, list[int]]  # column -> row positions holding the best value
    evaluations: dict[tuple[int, str], Evaluation]
    files: list[Path]


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METRICS]
    if not names or unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}")
    return names


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, into)
    else:
        into[prefix] = tuple(value) if isinstance(value, list) else value


def run_switches(card: dict[str, Any]) -> dict[str, Any]:
    """Every setting that shapes what a run learns: model, model kwargs, training config."""
    flat: dict[str, Any] = {"model": card.get("model")}
    _flatten("", card.get("model_kwargs") or {}, flat)
    config = card.get("config") if isinstance(card.get("config"), dict) else {}
    for key, value in config.items():
        if key in NOT_SWITCHES or key == "model_kwargs":
            continue
        _flatten(key, value, flat)
    return flat


def differing_switches(runs: list[RunInfo]) -> list[str]:
    keys: list[str] = []
    for run in runs:
        keys.extend(k for k in run.switches if k not in keys)
    return [k for k in keys if len({repr(run.switches.get(k)) for run in runs}) > 1]


def load_runs(paths: list[str | Path]) -> list[RunInfo]:

    if not paths:
        raise ConfigError("give at least one run with --runs RUN_DIR (or a checkpoint .json/.safetensors)")
    runs: list[RunInfo] = []
    for path in paths:
        path = Path(path)
        if not path.exists() and not card_path_for(resolve_weights(path)).is_file():
            raise CheckpointError(
                f"--runs {path}: no such run folder or checkpoint; pass a `ddtool train` run folder (it holds best.json) "
                f"or a checkpoint: {CHECKPOINT_IS}"
            )
        card_path = resolve_checkpoint(run=path) if path.is_dir() else resolve_checkpoint(weights=path)
        card = read_card(card_path)
        runs.append(RunInfo(run_label(card, card_path), card_path, card, run_switches(card)))
    labels = [r.label for r in runs]
    for index, run in enumerate(runs):
        if labels.count(run.label) > 1:
            run.label = f"{run.label} #{labels[:index + 1].count(run.label)}"
    return runs


def run_label(card: dict[str, Any], card_path: Path) -> str:
    """What a row is: model, weights name (the run folder for a run's best.json), training cache."""
    from ddtool.evaluate.evaluation import run_folder_of, training_data_label

    run = run_folder_of(card_path)
    weights = f"{run.name}/{card_path.stem}" if run is not None else card_path.stem
    return f"{card['model']} · {weights} · trained on {training_data_label(card)}"


def _own_test_set(run: RunInfo) -> tuple[str, Path]:
    config = run.card.get("config") if isinstance(run.card.get("config"), dict) else {}
    data = config.get("data")
    training = run.card.get("training_data")
    if not data and isinstance(training, dict):
        data = training.get("cache") or training.get("path") or training.get("data")
    if not data:
        raise ConfigError(f"{run.card_path} does not record its training cache; pass test sets with --cross NAME|CACHE")
    # Cards store paths relative to their own folder (checkpoint.strip_machine_paths).
    beside_card = run.card_path.parent / str(data)
    if not Path(str(data)).is_absolute() and not Path(str(data)).exists() and (beside_card / "manifest.csv").is_file():
        data = beside_card
    name, cache = resolve_dataset(str(data))
    return name, cache


def _best_rows(values: list[float], metric: str) -> list[int]:
    finite = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not finite:
        return []
    target = min(v for _, v in finite) if metric in LOWER_IS_BETTER else max(v for _, v in finite)
    return [i for i, v in finite if abs(v - target) < 1e-12]


def _cell(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def cell_text(row: pd.Series, column: str) -> str:
    """A metric in percent with its bootstrap 95% interval when it has one: `91.20 [85.1, 97.0]`."""
    text = _cell(row[column])
    low, high = row.get(f"{column}:low"), row.get(f"{column}:high")
    if text == "–" or low is None:
        return text
    if math.isfinite(low) and math.isfinite(high):
        return text + f" [{100 * low:.1f}, {100 * high:.1f}]"
    return text + " [–]"


def sample_text(row: pd.Series, name: str) -> str:
    """Sample size of one test set: `real/fake videos, faces`, starred when small."""
    real, fake, faces = row.get(f"{name}:videos_real"), row.get(f"{name}:videos_fake"), row.get(f"{name}:faces")
    if real is None or real != real:
        return "–"
    star = " *" if row.get(f"{name}:small_sample") else ""
    return f"{int(real)}/{int(fake)} videos, {int(faces)} faces{star}"


SAMPLE_NOTE = (
    f"[a, b]: bootstrap 95% interval (AUC, BACC, EER; {BOOTSTRAP_RESAMPLES} stratified resamples of whole videos; "
    "[–]: under 2 videos in a class, no interval can be estimated). "
    f"n: real/fake videos and faces scored. * small sample: under {SMALL_SAMPLE_VIDEOS} videos in a class, "
    "where one video more or less moves a score by several points; compare intervals, not values."
)


def roc_figure(curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]], level: str) -> bytes:
    """PNG with one ROC panel per test set, one curve per run (label -> labels, scores)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    names = list(curves)
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 4.2 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for label, y, s in curves[name]:
            if len(set(y.tolist())) < 2:
                continue  # one class only: no curve exists
            fpr, tpr, _ = roc_curve(y, s)
            auc = compute_metrics(y, s)["auc"]
            ax.plot(fpr, tpr, lw=1.6, label=f"{label} (AUC {100 * auc:.1f})")
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        ax.set(title=f"{name} ({level} level)", xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right", fontsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def build_report(
    runs: list[str | Path],
    cross: list[str] | None = None,
    out: str | Path = "report",
    metrics: list[str] | tuple[str, ...] = ("auc", "bacc"),
    level: str = "video",
    split: str = "test",
    ablation: bool = False,
    batch_size: int = 64,
    device: str = "auto",
    rule: str = "mean",
    threshold: float = 0.5,
    on_progress: ProgressHook | None = None,
) -> Report:
    """Evaluate every run on every test set (reusing cached predictions) and write the report files."""
    if level not in ("frame", "video"):
        raise ConfigError(f"--level must be frame or video (got {level!r})")
    metrics = list(metrics)
    parse_metrics(",".join(metrics))
    infos = load_runs(runs)
    out_dir = Path(out)

    # (run index, test name) pairs: every run on every cross set, or each run on its own data
    pairs: list[tuple[int, str, Path]] = []
    test_sets: dict[str, Path] = {}
    if cross:
        for item in cross:
            name, cache = resolve_dataset(item)
            if name in test_sets and test_sets[name].resolve() != cache.resolve():
                name = f"{name}@{cache.resolve().parent.name}"
            test_sets[name] = cache
        pairs = [(i, name, cache) for i in range(len(infos)) for name, cache in test_sets.items()]
    else:
        for i, run in enumerate(infos):
            name, cache = _own_test_set(run)
            test_sets.setdefault(name, cache)
            pairs.append((i, name, cache))

    evaluations: dict[tuple[int, str], Evaluation] = {}
    for i, name, cache in pairs:
        if on_progress is not None:
            on_progress(f"{infos[i].label} on {name}")
        evaluations[(i, name)] = evaluate_checkpoint(
            infos[i].card_path, cache, split=split, batch_size=batch_size, device=device, rule=rule,
            threshold=threshold, dataset_name=name, eval_root=out_dir / "eval",
        )

    switches = differing_switches(infos) if ablation else []
    records = []
    for i, run in enumerate(infos):
        record: dict[str, Any] = {"run": run.label, "model": run.card.get("model"), "checkpoint": str(run.card_path)}
        for key in switches:
            record[key] = run.switches.get(key)
        for name in test_sets:
            evaluation = evaluations.get((i, name))
            m = evaluation.metrics[level] if evaluation else {}
            for metric in metrics:
                value = m.get(metric)
                record[f"{name}:{metric}"] = float("nan") if value is None else float(value)
                if metric in INTERVAL_METRICS:
                    interval = (m.get("ci95") or {}).get(metric) or (None, None)
                    record[f"{name}:{metric}:low"], record[f"{name}:{metric}:high"] = (float("nan") if v is None else float(v) for v in interval)
            record[f"{name}:videos_real"] = m.get("n_videos_real")
            record[f"{name}:videos_fake"] = m.get("n_videos_fake")
            record[f"{name}:faces"] = evaluation.metrics.get("n_crops") if evaluation else None
            record[f"{name}:small_sample"] = m.get("small_sample")
        records.append(record)
    table = pd.DataFrame(records)
    metric_columns = [f"{name}:{metric}" for name in test_sets for metric in metrics]
    best = {c: _best_rows(table[c].tolist(), c.rsplit(":", 1)[1]) for c in metric_columns}

    curves: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {name: [] for name in test_sets}
    for (i, name), evaluation in evaluations.items():
        y, s = level_scores(evaluation, level)
        curves[name].append((infos[i].label, y, s))
    png = roc_figure(curves, level)

    context = {
        "level": level, "rule": rule, "threshold": threshold, "split": split, "metrics": metrics,
        "test_sets": test_sets, "switches": switches, "cross": bool(cross), "evaluations": evaluations, "infos": infos,
    }
    files = [out_dir / "report.csv", out_dir / "report.md", out_dir / "report.html", out_dir / "roc.png"]
    with atomic_path(files[0]) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6f")
    write_text_atomic(files[1], render_markdown(table, best, metric_columns, context))
    write_text_atomic(files[2], render_html(table, best, metric_columns, context, png))
    write_bytes_atomic(files[3], png)
    return Report(out_dir, table, best, evaluations, files)


REPORT_SCHEMA = "ddtool.report/1"


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def report_document(report: Report, level: str) -> dict[str, Any]:
    """The report as one JSON-ready document (`report --json`): every cell with its interval and sample size."""
    names = list(dict.fromkeys(c.rsplit(":", 1)[0] for c in report.best))
    metrics = list(dict.fromkeys(c.rsplit(":", 1)[1] for c in report.best))
    rows = []
    for position, row in report.table.iterrows():
        test_sets = {}
        for name in names:
            entry: dict[str, Any] = {}
            for metric in metrics:
                column = f"{name}:{metric}"
                low, high = row.get(f"{column}:low"), row.get(f"{column}:high")
                entry[metric] = {
                    "value": _number(row[column]),
                    "ci95": [_number(low), _number(high)] if metric in INTERVAL_METRICS else None,
                    "best": position in report.best[column],
                }
            for key in ("videos_real", "videos_fake", "faces"):
                value = row.get(f"{name}:{key}")
                entry[key] = None if value is None or value != value else int(value)
            entry["small_sample"] = bool(row.get(f"{name}:small_sample"))
            test_sets[name] = entry
        rows.append({"run": row["run"], "model": row["model"], "checkpoint": row["checkpoint"], "test_sets": test_sets})
    return {
        "schema": REPORT_SCHEMA,
        "level": level,
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "confidence": 0.95, "unit": "video", "stratified": True},
        "small_sample_videos": SMALL_SAMPLE_VIDEOS,
        "rows": rows,
        "files": [str(f) for f in report.files],
    }


def _notes(context: dict[str, Any]) -> list[str]:
    notes = []
    for (i, name), evaluation in context["evaluations"].items():
        m = evaluation.metrics
        note = m[context["level"]].get("note")
        if note:
            notes.append(f"{context['infos'][i].label} on {name}: {note}")
    for name, cache in context["test_sets"].items():
        any_eval = next(e for (_, n), e in context["evaluations"].items() if n == name)
        notes.append(f"{name}: {cache.resolve()} ({any_eval.metrics['split_note']}, {any_eval.metrics['n_videos']} videos, {any_eval.metrics['n_crops']} faces)")
    return notes


def _header_lines(context: dict[str, Any]) -> list[str]:
    kind = "Cross-dataset" if context["cross"] else "Intra-dataset (each run on its own test split)"
    if context["switches"]:
        kind += ", ablation"
    return [
        f"{kind} evaluation, {context['level']}-level metrics in percent (video score = {context['rule']} of its face scores, "
        f"max over face tracks); BACC/ACC at threshold {context['threshold']}. Best per column in bold.",
        SAMPLE_NOTE,
    ]


def render_markdown(table: pd.DataFrame, best: dict[str, list[int]], metric_columns: list[str], context: dict[str, Any]) -> str:
    switches = context["switches"]
    names = list(context["test_sets"])
    head = ["Run", *switches, *(f"{c.rsplit(':', 1)[0]} {METRIC_LABELS[c.rsplit(':', 1)[1]]}" for c in metric_columns), *(f"{n} n" for n in names)]
    lines = ["# ddtool report", "", *_header_lines(context), "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for position, row in table.iterrows():
        cells = [str(row["run"]), *(str(row[s]) for s in switches)]
        for column in metric_columns:
            text = cell_text(row, column)
            cells.append(f"**{text}**" if position in best[column] else text)
        cells += [sample_text(row, n) for n in names]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "![ROC curves](roc.png)", "", "## Test sets and notes", ""]
    lines += [f"- {note}" for note in _notes(context)]
    return "\n".join(lines) + "\n"


HTML_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #bbb;padding:.3rem .6rem;text-align:right}
th{background:#f0f0f0}td.run{text-align:left}td.best{font-weight:bold;background:#e6f4e6}
img{max-width:100%}li{margin:.2rem 0}
"""


def render_html(table: pd.DataFrame, best: dict[str, list[int]], metric_columns: list[str], context: dict[str, Any], png: bytes) -> str:
    esc = html.escape
    switches = context["switches"]
    names = list(context["test_sets"])
    metrics = context["metrics"]
    top = ["<tr><th rowspan=2>Run</th>" + "".join(f"<th rowspan=2>{esc(s)}</th>" for s in switches)]
    top += [f"<th colspan={len(metrics) + 1}>{esc(n)}</th>" for n in names]
    sub = "<tr>" + "".join("".join(f"<th>{METRIC_LABELS[m]}</th>" for m in metrics) + "<th>n</th>" for _ in names) + "</tr>"
    body = []
    for position, row in table.iterrows():
        cells = [f"<td class=run>{esc(str(row['run']))}</td>", *(f"<td>{esc(str(row[s]))}</td>" for s in switches)]
        for name in names:
            for column in (c for c in metric_columns if c.rsplit(":", 1)[0] == name):
                cls = " class=best" if position in best[column] else ""
                cells.append(f"<td{cls}>{esc(cell_text(row, column))}</td>")
            cells.append(f"<td>{esc(sample_text(row, name))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    image = base64.b64encode(png).decode("ascii")
    notes = "".join(f"<li>{esc(n)}</li>" for n in _notes(context))
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>ddtool report</title>"
        f"<style>{HTML_STYLE}</style></head><body><h1>ddtool report</h1>"
        + "".join(f"<p>{esc(line)}</p>" for line in _header_lines(context))
        + "<table><thead>" + "".join(top) + "</tr>" + sub + "</thead><tbody>" + "".join(body) + "</tbody></table>"
        + f'<h2>ROC curves</h2><img alt="ROC curves" src="data:image/png;base64,{image}">'
        + f"<h2>Test sets and notes</h2><ul>{notes}</ul></body></html>\n"
    )
