"""report.html: one self-contained page (every image a base64 data URI) an analyst can
mail or archive: verdict, model provenance, timeline, Grad-CAM evidence."""

from __future__ import annotations

import base64
import html
import json

import cv2
import numpy as np

from ddtool.scan.pipeline import EVIDENCE_CROPS

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1 span.fake{color:#b00}h1 span.real{color:#070}h1 span.inconclusive,h1 span.error{color:#a60}
.warn{background:#b00;color:#fff;padding:.8em;font-weight:bold;font-size:1.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
.gallery{display:flex;flex-wrap:wrap;gap:12px}.gallery figure{margin:0;text-align:center;font-size:.85em}
.gallery img{width:160px;height:160px;display:block}
code{background:#f3f3f3;padding:0 .3em}
"""


def data_uri_png(image_rgb: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _gallery(items: list[tuple[np.ndarray, str]]) -> str:
    figures = "".join(
        f'<figure><img src="{data_uri_png(img)}" alt="{_esc(caption)}"><figcaption>{_esc(caption)}</figcaption></figure>'
        for img, caption in items
    )
    return f'<div class="gallery">{figures}</div>'


def _evidence_section(result, detector) -> str:
    if not result.evidence:
        return "<p>No face was found in the sampled frames, so there is nothing to explain.</p>"
    ranked = sorted(result.evidence, key=lambda e: -e.score)
    top = ranked[:EVIDENCE_CROPS]
    bottom = [e for e in ranked[::-1] if e not in top][:EVIDENCE_CROPS]
    overlays: list[np.ndarray] = []
    note = ""
    if detector is not None:
        from ddtool.explain.gradcam import explain_faces

        overlays = explain_faces(detector, [e.image for e in top])
    else:
        note = "<p>(Grad-CAM overlays need the model; this report was written without it.)</p>"

    def caption(e):
        when = f"t={e.timestamp:.2f}s " if np.isfinite(e.timestamp) and result.kind == "video" else ""
        return f"frame {e.frame_index} {when}face {e.track_id} P(fake)={e.score:.3f}"

    parts = ["<h2>Most suspicious faces</h2>", note]
    parts.append(_gallery([(e.image, caption(e)) for e in top]))
    if overlays:
        parts.append("<h3>Grad-CAM: where the model saw evidence of forgery</h3>")
        parts.append(_gallery([(o, caption(e)) for o, e in zip(overlays, top)]))
    if bottom:
        parts.append("<h2>Least suspicious faces (for contrast)</h2>")
        parts.append(_gallery([(e.image, caption(e)) for e in bottom]))
    return "".join(parts)


def _provenance(result) -> str:
    model = result.model
    rows = [
        ("model", model.get("model")),
        ("weights", model.get("weights") or ("none: UNTRAINED random weights" if model.get("untrained") else None)),
        ("weights sha256", model.get("weights_sha256")),
        ("training data", json.dumps(model.get("training_data")) if model.get("training_data") is not None else "not recorded"),
        ("measured metrics", json.dumps(model.get("metrics")) if model.get("metrics") is not None else "not recorded"),
        ("created", model.get("created")),
        ("paper", model.get("paper")),
        ("aggregation", f"{result.aggregate} per face track, max over tracks"),
        ("threshold", result.threshold),
    ]
    return "<table>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows) + "</table>"


def _tracks_table(result) -> str:
    if not result.tracks:
        return ""
    head = "<tr><th>face</th><th>faces scored</th><th>frames</th><th>score</th><th>mean</th><th>confident</th><th>max</th></tr>"
    body = "".join(
        f"<tr><td>{t['track_id']}</td><td>{t['faces']}</td><td>{t['first_frame']}-{t['last_frame']}</td>"
        f"<td>{t['score']:.3f}</td><td>{t['mean']:.3f}</td><td>{t['confident']:.3f}</td><td>{t['max']:.3f}</td></tr>"
        for t in result.tracks
    )
    return f"<h2>Face tracks</h2><table>{head}{body}</table>"


def _segments_table(result) -> str:
    if result.kind != "video":
        return ""
    if not result.segments:
        return "<h2>Suspicious segments</h2><p>None: no sampled face scored at or above the threshold.</p>"
    rows = "".join(
        f"<tr><td>{s['track_id']}</td><td>{s['start']:.2f}-{s['end']:.2f} s</td><td>{s['start_frame']}-{s['end_frame']}</td>"
        f"<td>{s['peak']:.3f}</td><td>{s['mean']:.3f}</td></tr>"
        for s in result.segments
    )
    return "<h2>Suspicious segments</h2><table><tr><th>face</th><th>time</th><th>frames</th><th>peak</th><th>mean</th></tr>" + rows + "</table>"


def report_html(result, timeline_png: bytes, detector=None) -> str:
    warn = ""
    if result.model.get("untrained"):
        warn = f'<div class="warn">WARNING: {_esc(result.model.get("warning"))}</div>'
    score = "n/a" if result.score is None else f"{result.score:.3f}"
    timeline = "data:image/png;base64," + base64.b64encode(timeline_png).decode("ascii")
    errors = "".join(f"<li>{_esc(e)}</li>" for e in result.errors)
    info = result.info or {}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ddtool scan: {_esc(result.path)}</title><style>{STYLE}</style></head>
<body>
{warn}
<h1>Verdict: <span class="{_esc(result.verdict)}">{_esc(result.verdict.upper())}</span></h1>
<p><code>{_esc(result.path)}</code> ({_esc(result.kind)}, {_esc(info.get('width'))}x{_esc(info.get('height'))},
{_esc(result.frames_sampled)} frames sampled, {len(result.frames)} faces scored).
Score {score} against threshold {result.threshold:g}: P(fake) from the model, aggregated with
<code>{_esc(result.aggregate)}</code>.</p>
{f'<h2>Problems</h2><ul>{errors}</ul>' if errors else ''}
<h2>Model</h2>
{_provenance(result)}
<h2>Timeline</h2>
<img src="{timeline}" alt="score timeline" style="max-width:100%">
{_tracks_table(result)}
{_segments_table(result)}
{_evidence_section(result, detector)}
<p style="color:#777;font-size:.8em">Written by ddtool. A score is evidence, not proof: check the segments and faces above.</p>
{warn}
</body></html>
"""
