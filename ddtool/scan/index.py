"""A folder scan's front page: index.html and summary.csv, one row per input, linking each report.

Rows hold only what the index shows (path, hash, verdict, scores, errors),
so a scan of any number of inputs keeps a few hundred bytes per input, not
its evidence. The top folder's manifest.sha256 lists both files and every
input folder's manifest, so `ddtool verify OUT` checks the whole case.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from ddtool.io import write_text_atomic

SUMMARY_COLUMNS = ["path", "sha256", "kind", "verdict", "headline", "confidence", "score", "score_kind", "threshold", "detector_scores",
                   "errors", "folder", "report"]
# What a score column holds, as the index's headers and docs/scan.md say it.
SCORE_UNITS = {"panel": "panel score, 0-1", "p_fake": "P(fake), 0-1"}
NOT_SCANNED = "not scanned"  # the verdict of an input an interrupted scan never reached


def index_row(doc: dict[str, Any], folder: str | None, has_report: bool = True) -> dict[str, Any]:
    """The little an index keeps of one input's result.json document; links its report (or, without one, its result.json).
    `folder` None: its evidence folder could not be written (the errors say why)."""
    from ddtool.scan.report import panel_of

    panel = panel_of(doc) if doc.get("verdict") != "error" else []
    link = "" if folder is None else (f"{folder}/report.html" if has_report else f"{folder}/result.json")
    return {
        "path": doc.get("path"),
        "sha256": (doc.get("input") or {}).get("sha256") or "",
        "kind": doc.get("kind"),
        "verdict": doc.get("verdict"),
        "headline": doc.get("headline") or str(doc.get("verdict")).upper(),
        "confidence": (doc.get("strength") or {}).get("level", ""),
        "score": doc.get("score"),
        "score_kind": doc.get("score_kind") or "",
        # the cut this input's score was judged against: a video's and a photo's differ (calibration.band_for)
        "threshold": doc.get("threshold") if doc.get("score") is not None else None,
        "detector_scores": {p.get("name"): p.get("score") for p in panel if p.get("score") is not None},
        "errors": list(doc.get("errors") or []),
        "folder": folder or "",
        "report": link,
    }


def pending_row(path: str) -> dict[str, Any]:
    """The row of an input an interrupted scan never reached: the index still holds one row per input."""
    return {"path": path, "sha256": "", "kind": "", "verdict": NOT_SCANNED, "headline": "NOT SCANNED (interrupted)", "confidence": "",
            "score": None, "score_kind": "", "threshold": None, "detector_scores": {}, "folder": "", "report": "",
            "errors": ["the scan was interrupted before this input; run the same command again with --resume"]}


def summary_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for r in rows:
        scores = "; ".join(f"{k}={v:.6f}" for k, v in r["detector_scores"].items())
        score = "" if r["score"] is None else f"{r['score']:.6f}"
        threshold = "" if r.get("threshold") is None else f"{r['threshold']:g}"
        writer.writerow([r["path"], r["sha256"], r["kind"], r["verdict"], r["headline"], r["confidence"], score, r["score_kind"], threshold, scores,
                         " | ".join(r["errors"]), r["folder"], r["report"]])
    return buffer.getvalue()


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.9em}
td.hash{font-family:monospace;font-size:.75em;word-break:break-all;max-width:16em}
span.v{font-weight:bold;padding:0 .4em;border-radius:3px;white-space:nowrap}
.fake.high{background:#b00;color:#fff}.fake.low{color:#a22;border:1px dashed #c44}
.real.high{background:#0a6e2a;color:#fff}.real.low{color:#334;border:1px dashed #667}
.uncertain,.fake.low{background:#fff0c0;color:#640}.not-scanned{background:#eee;color:#900}.inconclusive{background:#eee;color:#444}.error{background:#fde2c8;color:#7a3300}
.small{color:#666;font-size:.85em}.cut{white-space:nowrap}
@media print{body{max-width:none;margin:0}span.v{-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{break-inside:avoid}a{color:inherit}}
"""


def index_html(rows: list[dict[str, Any]], session: dict[str, Any], exit_code: int, root: str, complete: bool = True) -> str:
    from ddtool.scan.wording import claim_words

    esc = html.escape
    counts: dict[str, int] = {}
    for r in rows:
        words = claim_words(r["verdict"], r["confidence"])
        counts[words] = counts.get(words, 0) + 1
    names = sorted({n for r in rows for n in r["detector_scores"]})
    kinds = sorted({r["score_kind"] for r in rows if r["score_kind"]})
    score_unit = " / ".join(SCORE_UNITS.get(k, k) for k in kinds) or "0-1"
    head = "".join(f"<th>{esc(str(n))}<br><span class='small'>P(fake) 0-1</span></th>" for n in names)
    body = []
    for r in rows:
        level = r["confidence"] if r["verdict"] in ("fake", "real") else ""
        path = esc(str(r["path"]))
        link = f'<a href="{esc(r["report"])}">{path}</a>' if r["report"] else path
        scores = "".join(f"<td>{'' if r['detector_scores'].get(n) is None else format(r['detector_scores'][n], '.3f')}</td>" for n in names)
        score = "" if r["score"] is None else f"{r['score']:.3f}"
        if score and r.get("threshold") is not None:
            score += f"<br><span class='small cut'>fake from {r['threshold']:g}</span>"
        errors = "<br>".join(esc(e) for e in r["errors"])
        folder = f"<br><span class='small'>{esc(r['folder'])}/</span>" if r["folder"] else ""
        body.append(
            f"<tr><td>{link}{folder}</td><td><span class='v {esc(r['verdict'].replace(' ', '-'))} {esc(level)}'>{esc(r['headline'])}</span></td><td>{score}</td>{scores}"
            f"<td>{errors}</td><td class='hash'>{esc(r['sha256'])}</td></tr>"
        )
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    case = session.get("case") or {}
    case_line = "".join(f"<b>{esc(k)}</b>: {esc(str(v))} &nbsp; " for k, v in case.items())
    versions = ", ".join(f"{k} {v}" for k, v in (session.get("versions") or {}).items())
    missing = sum(1 for r in rows if r["verdict"] == NOT_SCANNED)
    incomplete = "" if complete else (
        f"<p class='v error'>INCOMPLETE: the scan was interrupted; {missing} of {len(rows)} input(s) were not scanned. "
        "Run the same command again with <code>--resume</code>: finished inputs are kept, the rest are scanned.</p>"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ddtool scan index: {esc(root)}</title><style>{_STYLE}</style></head>
<body>
<h1>ddtool scan: {esc(root)}</h1>
{f'<p>{case_line}</p>' if case_line else ''}
{incomplete}
<p>{len(rows)} input(s): {esc(summary)}. Exit code {exit_code}. Started {esc(str(session.get('started_utc')))} on {esc(str(session.get('host')))}.</p>
<table><tr><th>input (opens its report)<br><span class='small'>evidence folder</span></th><th>verdict</th><th>score<br><span class='small'>{esc(score_unit)}</span></th>{head}<th>errors</th><th>sha256 of the input</th></tr>
{''.join(body)}
</table>
<p class="small">Command: <code>{esc(str(session.get('command')))}</code><br>Software: {esc(versions)}<br>
Panel score: for every face, each detector's score placed among real reference faces (the share of them it finds less
unusual), averaged over the detectors; fake at the cut under each score or above (a video's cut is lower than a photo's: its score is a
mean over many faces). P(fake): a detector's own probability.<br>
"No strong evidence of manipulation" is not a finding that a file is authentic; "needs review" marks a low-confidence fake
verdict or a score in the uncertain band; open the report for the detectors' limits (docs/scan.md, "Verdicts").
summary.csv holds the same rows; manifest.sha256 lists this page, summary.csv and every input folder's manifest (<code>ddtool verify FOLDER</code>).</p>
</body></html>
"""


def write_index(out_dir: str | Path, rows: list[dict[str, Any]], session: dict[str, Any], exit_code: int, root: str, complete: bool = True) -> list[Path]:
    """index.html, summary.csv and the top manifest.sha256 (which also lists each input folder's manifest)."""
    from ddtool.scan.manifest import MANIFEST, write_manifest

    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "summary.csv", summary_csv(rows))
    write_text_atomic(out_dir / "index.html", index_html(rows, session, exit_code, root, complete))
    files = [out_dir / "summary.csv", out_dir / "index.html"]
    files += [out_dir / r["folder"] / MANIFEST for r in rows if r["folder"] and (out_dir / r["folder"] / MANIFEST).is_file()]
    files.append(write_manifest(out_dir, files))
    return files
