"""report.html: one self-contained page (every image a base64 data URI) an analyst can
mail, print to PDF or archive: case, verdict at its real strength, the detector's limits
in plain words, timeline or score bar, where the detector looked, and provenance.

It is written from the input's result.json document (so every field the JSON
carries, such as a detector panel, can appear) plus the few evidence crops,
which the JSON does not hold.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import cv2
import numpy as np

from ddtool.scan.calibration import band_words
from ddtool.scan.pipeline import EVIDENCE_CROPS, segment_gap

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.verdict{border:3px solid #888;padding:.8em 1em;margin:1em 0;border-radius:6px}
.verdict .label{font-size:2em;font-weight:bold;letter-spacing:.03em}
.verdict.fake.high{background:#b00;border-color:#b00;color:#fff}
.verdict.fake.low{background:#fff7e0;border-color:#c90;border-style:dashed;color:#640}
.verdict.real.high{background:#eef7f0;border-color:#0a6e2a;color:#0a4e1a}
.verdict.real.low{background:#f2f4f7;border-color:#667;border-style:dashed;color:#334}
.verdict.uncertain{background:#fff7e0;border-color:#c90;color:#640}
.verdict.inconclusive,.verdict.error{background:#f4f4f4;border-color:#999;color:#444}
.verdict ul{margin:.3em 0 0 1.2em;padding:0}
.limits{border-left:6px solid #c90;background:#fffaf0;padding:.6em 1em;margin:1em 0}
.limits dt{font-weight:bold;margin-top:.4em}.limits dd{margin:0 0 0 1em}
.warn{background:#b00;color:#fff;padding:.8em;font-weight:bold;font-size:1.2em}
.case{background:#eef3fa;padding:.5em 1em;border-radius:4px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
td.hash,code.hash{font-family:monospace;font-size:.85em;word-break:break-all}
.gallery{display:flex;flex-wrap:wrap;gap:14px}.gallery figure{margin:0;font-size:.85em;max-width:100%}
.gallery .row{display:flex;gap:6px;align-items:flex-start}
.gallery img.face{width:180px;height:180px;display:block;image-rendering:auto}
.gallery img.frame{height:180px;display:block}
.scorebar{position:relative;height:26px;background:linear-gradient(90deg,#e8f3ea,#fbe9e9);border:1px solid #aaa;max-width:600px}
.scorebar .fill{position:absolute;top:0;bottom:0;left:0;background:rgba(90,90,90,.35)}
.scorebar .thr{position:absolute;top:-4px;bottom:-4px;width:2px;background:#000}
.scorebar .val{position:absolute;top:3px;left:6px;font-weight:bold}
.colorbar img{width:260px;height:14px;vertical-align:middle;border:1px solid #999}
code{background:#f3f3f3;padding:0 .3em}.small{color:#666;font-size:.85em}
@media print{
 body{max-width:none;margin:0;font-size:10pt}
 .verdict,.warn,.limits,.scorebar,.case{-webkit-print-color-adjust:exact;print-color-adjust:exact}
 h2{break-after:avoid}table,figure,.limits,.verdict{break-inside:avoid}
 a{color:inherit;text-decoration:none}
}
"""


def data_uri_png(image_rgb: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _esc(value) -> str:
    return html.escape("" if value is None else str(value))


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return str(value)


def _rows(pairs) -> str:
    return "<table>" + "".join(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>" for k, v in pairs if v not in (None, "")) + "</table>"


def _words(mapping: dict | None) -> str:
    """A small dict (tags, options) as 'key: value' lines, never as JSON."""
    if not mapping:
        return ""
    return "<br>".join(f"{_esc(k)}: {_esc('default' if v is None else v)}" for k, v in mapping.items())


def panel_of(doc: dict) -> list[dict]:
    """The detector panel when the result has one, else today's single model as a one-entry panel."""
    if doc.get("panel"):
        return list(doc["panel"])
    return [
        {
            "name": doc.get("model"),
            "weights": Path(doc["weights"]).name if doc.get("weights") else None,
            "sha256": doc.get("weights_sha256"),
            "score": doc.get("score"),
            "operating_point": doc.get("threshold"),
            "reference_percentile": None,
            "verdict": doc.get("verdict"),
        }
    ]


def frame_count_words(n: int) -> str:
    return f"{n} frame" if n == 1 else f"{n} frames"


# ------------------------------------------------------------------ sections


def _case(doc: dict) -> str:
    case = doc.get("case") or {}
    if not case:
        return ""
    names = {"case": "case", "examiner": "examiner", "note": "note"}
    return '<div class="case">' + _rows((names.get(k, k), _esc(v)) for k, v in case.items()) + "</div>"


# What each headline does and does not say (verdict.claim_of), printed under it.
CLAIM_WORDS = {
    "manipulated": "The detectors found strong signs of manipulation, and their measured accuracy supports the call.",
    "review": "Signs of manipulation the detectors cannot call: a fake verdict at low confidence, or a score in the uncertain "
              "band. Look at the faces, segments and limits below before drawing any conclusion.",
    "no_strong_evidence": "The detectors found no strong sign of manipulation. This is not a finding that the file is authentic: "
                          "the detectors miss fakes they were not trained on (see their limits below).",
}


def _verdict(doc: dict) -> str:
    from ddtool.scan.verdict import claim_of
    from ddtool.scan.wording import headline

    verdict = doc.get("verdict") or "error"
    strength = doc.get("strength") or {"level": "none", "reasons": []}
    level = strength.get("level", "none")
    label = headline(verdict, level)
    claim = CLAIM_WORDS.get(claim_of(verdict, level), "")
    score = doc.get("score")
    if score is None:
        sentence = "No score." if verdict != "error" else "The input could not be scanned: see the problem below."
        if verdict == "inconclusive":
            sentence = "No usable face was found in the sampled frames, so the detector could not judge this input."
    elif doc.get("score_kind") == "panel":
        low, high = doc.get("band") or (doc.get("threshold"), doc.get("threshold"))
        sentence = (
            f"Panel score {score:.3f}: for every face, each detector's score is placed among real reference faces "
            f"(the share of them it finds less unusual), the detectors' shares are averaged, then aggregated with "
            f"<code>{_esc(doc.get('aggregate'))}</code> per face track, maximum over tracks. {band_words((low, high), doc.get('kind')).capitalize()} (docs/scan.md, Verdicts)."
        )
    else:
        sentence = (
            f"Score {score:.3f} (the detector's P(fake), aggregated with <code>{_esc(doc.get('aggregate'))}</code> per face track, "
            f"maximum over tracks) against threshold {doc.get('threshold'):g}."
        )
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in strength.get("reasons", []) if level == "low")
    why = f"<p>Why the confidence is low:</p><ul>{reasons}</ul>" if reasons else ""
    claim = f"<p><strong>{_esc(claim)}</strong></p>" if claim else ""
    return f'<div class="verdict {_esc(verdict)} {_esc(level)}"><div class="label">{_esc(label)}</div>{claim}<p>{sentence}</p>{why}</div>'


def _limits(doc: dict) -> str:
    detectors = doc.get("detectors") or []
    if not detectors:
        return ""
    parts = ['<div class="limits"><strong>What the detector can and cannot tell you</strong>']
    for det in detectors:
        limits = det.get("limits") or {}
        parts.append(f"<p><strong>{_esc(det.get('key') or det.get('name'))}</strong> ({_esc(det.get('name'))}, {_esc(det.get('weights') or 'no weights file')})</p><dl>")
        for key, title in (
            ("trained_on", "Trained on"),
            ("tested_on", "Tested on"),
            ("measured", "Measured"),
            ("never_tested_on", "Never tested on"),
        ):
            parts.append(f"<dt>{title}</dt><dd>{_esc(limits.get(key, 'not recorded'))}</dd>")
        parts.append("</dl>")
    parts.append("<p class='small'>A score is evidence, not proof. Check the faces and segments below, and weigh the measured accuracy above.</p></div>")
    return "".join(parts)


def _credentials(doc: dict) -> str:
    """Content credentials (C2PA): present, valid or invalid, signer and claims; and that absence proves nothing."""
    facts = doc.get("content_credentials") or {}
    if not facts:
        return ""
    status = facts.get("status", "not_checked")
    signer = facts.get("signer") or {}
    rows = [
        ("status", f"<strong>{_esc(status.replace('_', ' '))}</strong>: {_esc(facts.get('summary'))}"),
        ("what valid means", _esc(facts.get("meaning"))),
        ("signer", _esc(signer.get("common_name"))),
        ("certificate issuer", _esc(signer.get("issuer"))),
        ("signature", _esc(" ".join(str(v) for v in (signer.get("alg"), f"serial {signer['cert_serial_number']}" if signer.get("cert_serial_number") else None) if v))),
        ("signed at", _esc(signer.get("time"))),
        ("claim generator", _esc(facts.get("claim_generator"))),
        ("title", _esc(facts.get("title"))),
        ("claims", "<br>".join(_esc(c) for c in facts.get("claims") or [])),
        ("validation failures", "<br>".join(f"{_esc(f.get('code'))}: {_esc(f.get('explanation'))}" for f in facts.get("failures") or [])),
        ("manifests / ingredients", f"{facts['manifests']} / {facts.get('ingredients', 0)}" if facts.get("manifests") else None),
        ("read with", _esc(facts.get("reader"))),
    ]
    return "<h2>Content credentials (C2PA)</h2>" + _rows(rows) + f"<p class='small'>{_esc(facts.get('note'))}</p>"


def _faces_found(doc: dict) -> str:
    """Say when the detector found more faces than were scored (only the largest per frame, without --all-faces)."""
    found = doc.get("faces_found") or {}
    if not found.get("unscored"):
        return ""
    return (f"<p class='limits'>{found['most_in_one_frame']} faces found in one frame ({found['frames_with_several']} frame(s) with "
            f"more than one face); the largest face of each frame was scored, {found['unscored']} face(s) were not. "
            "Scan again with <code>--all-faces</code> to score every face.</p>")


def _percent(share) -> str:
    return "n/a" if share is None else f"{100 * share:.0f}%"


def _panel(doc: dict) -> str:
    panel = panel_of(doc)
    head = "<tr><th>detector</th><th>weights</th><th>sha256</th><th>score</th><th>operating point</th><th>more unusual than (share of real reference faces)</th><th>verdict</th></tr>"
    body = "".join(
        f"<tr><td>{_esc(p.get('name'))}</td><td>{_esc(p.get('weights') or 'none')}</td><td class='hash'>{_esc(p.get('sha256') or 'n/a')}</td>"
        f"<td>{_fmt(p.get('score'))}</td><td>{_fmt(p.get('operating_point'))}</td><td>{_percent(p.get('reference_percentile'))}</td>"
        f"<td>{_esc(p.get('verdict'))}</td></tr>"
        for p in panel
    )
    return f"<h2>Detectors</h2><table>{head}{body}</table>"


def _score_bar(doc: dict) -> str:
    score, threshold = doc.get("score"), doc.get("threshold") or 0.5
    if score is None:
        return ""
    return (
        "<h2>Score</h2>"
        f'<div class="scorebar"><div class="fill" style="width:{100 * score:.1f}%"></div>'
        f'<div class="thr" style="left:{100 * threshold:.1f}%"></div><div class="val">{"panel score" if doc.get("score_kind") == "panel" else "P(fake)"} {score:.3f}</div></div>'
        f"<p class='small'>0 (real) on the left, 1 (fake) on the right; the black line is the threshold {threshold:g}. One image: {frame_count_words(1)}, no timeline.</p>"
    )


def _segment_time(seg: dict) -> str:
    if seg["end"] <= seg["start"]:
        return f"at {seg['start']:.2f} s (one sample)"
    return f"{seg['start']:.2f}&ndash;{seg['end']:.2f} s"


def _segments(doc: dict) -> str:
    if doc.get("kind") != "video" or doc.get("verdict") == "error":
        return ""
    frames = doc.get("frames") or []
    fps = (doc.get("info") or {}).get("fps") or 0.0
    gap = segment_gap([f["timestamp"] for f in frames if f.get("timestamp") is not None], fps)
    rule = (
        f"<p class='small'>How segments are made: sampled faces of one track scoring at or above the threshold "
        f"{doc.get('threshold'):g} join one segment when consecutive suspicious samples are at most {gap:.2f} s apart "
        "(1.5 times the median sampling interval, at least 1 s), bridging lower-scoring samples between them; "
        "a segment runs from its first to its last suspicious sample, and its mean covers every sample inside, dips "
        "included. A segment of one suspicious sample is shown as one time. Only the sampled frames were scored, so "
        "a segment's true extent can reach to the neighbouring samples.</p>"
    )
    segments = doc.get("segments") or []
    if not segments:
        return "<h2>Suspicious segments</h2><p>None: no sampled face scored at or above the threshold.</p>" + rule
    rows = "".join(
        f"<tr><td>{s['track_id']}</td><td>{_segment_time(s)}</td>"
        f"<td>{s['start_frame'] if s['start_frame'] == s['end_frame'] else str(s['start_frame']) + '&ndash;' + str(s['end_frame'])}</td>"
        f"<td>{s['peak']:.3f}</td><td>{s['mean']:.3f}</td></tr>"
        for s in segments
    )
    return "<h2>Suspicious segments</h2><table><tr><th>face</th><th>time</th><th>frames</th><th>peak</th><th>mean</th></tr>" + rows + "</table>" + rule


def _tracks(doc: dict) -> str:
    tracks = doc.get("tracks") or []
    if not tracks:
        return ""
    head = "<tr><th>face</th><th>faces scored</th><th>frames</th><th>score</th><th>mean</th><th>confident</th><th>max</th></tr>"
    body = "".join(
        f"<tr><td>{t['track_id']}</td><td>{t['faces']}</td><td>{t['first_frame'] if t['first_frame'] == t['last_frame'] else str(t['first_frame']) + '&ndash;' + str(t['last_frame'])}</td>"
        f"<td>{t['score']:.3f}</td><td>{t['mean']:.3f}</td><td>{t['confident']:.3f}</td><td>{t['max']:.3f}</td></tr>"
        for t in tracks
    )
    return f"<h2>Face tracks</h2><table>{head}{body}</table>"


def _colour_bar() -> str:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (14, 1))
    rgb = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return f'<p class="colorbar small">least weight <img src="{data_uri_png(rgb)}" alt="colour scale: blue low, red high"> most weight</p>'


def _frame_thumb(e) -> np.ndarray | None:
    if e.thumb is None:
        return None
    thumb = e.thumb.copy()
    x0, y0, x1, y1 = (int(round(v * e.thumb_scale)) for v in e.box)
    # the thumbnail is shown ~180 px high: a line this thick stays visible at that size
    cv2.rectangle(thumb, (x0, y0), (x1, y1), (255, 40, 40), max(2, round(max(thumb.shape[:2]) / 120)))
    return thumb


def _caption(doc: dict, e) -> str:
    when = f"t={e.timestamp:.2f} s, " if doc.get("kind") == "video" and np.isfinite(e.timestamp) else ""
    label = "panel score" if doc.get("score_kind") == "panel" else "P(fake)"
    return f"frame {e.frame_index} ({when}face {e.track_id}): {label} {e.score:.3f}"


def _face_figure(doc: dict, e, overlay: np.ndarray | None, note: str = "") -> str:
    face = e.native if e.native is not None else e.image
    images = []
    thumb = _frame_thumb(e)
    if thumb is not None:
        images.append(f'<img class="frame" src="{data_uri_png(thumb)}" alt="whole frame with the face box">')
    images.append(f'<img class="face" src="{data_uri_png(face)}" alt="face crop">')
    if overlay is not None:
        images.append(f'<img class="face" src="{data_uri_png(overlay)}" alt="Grad-CAM overlay">')
    size = f"crop {face.shape[1]}x{face.shape[0]} px"
    note = f"<br>{_esc(note)}" if note else ""
    return f'<figure><div class="row">{"".join(images)}</div><figcaption>{_esc(_caption(doc, e))}; {size}{note}</figcaption></figure>'


def _evidence(doc: dict, evidence: list, detector) -> str:
    if doc.get("verdict") == "error":
        return ""
    if not evidence:
        return "<h2>Faces</h2><p>No face was found in the sampled frames, so there is nothing to show.</p>"
    ranked = sorted(evidence, key=lambda e: -e.score)
    top = ranked[:EVIDENCE_CROPS]
    bottom = [e for e in ranked[::-1] if e not in top][:EVIDENCE_CROPS]
    overlays: list = [None] * len(top)
    notes = [""] * len(top)
    parts = ["<h2>Where the detector looked</h2>"]
    if detector is not None:
        from ddtool.explain.gradcam import FLAT_MAP_NOTE, gradcam_maps, is_flat, overlay_heatmap

        maps = gradcam_maps(detector, [e.image for e in top])
        overlays = [overlay_heatmap(e.native if e.native is not None else e.image, m) for e, m in zip(top, maps)]
        key = getattr(detector, "key", None) or getattr(detector, "name", "the detector")
        notes = [f"Grad-CAM of {key}" + (f"; {FLAT_MAP_NOTE}" if is_flat(m) else "") for m in maps]
        others = [p.get("name") for p in doc.get("panel") or [] if p.get("name") != key]
        which = (f"The maps show <strong>{_esc(key)}</strong>, the panel's first detector; the other detectors "
                 f"({_esc(', '.join(others))}) have maps of their own, not shown here." if others else f"The maps show <strong>{_esc(key)}</strong>.")
        parts.append(
            "<p>The highest-scoring faces: the whole frame with the face box, the face as the file holds it, and a Grad-CAM "
            "overlay of the regions that weighed most in the detector's score (whatever the verdict). Grad-CAM shows where a "
            f"network's decision drew from, not what is forged. {which}</p>" + _colour_bar()
        )
    else:
        parts.append("<p>(Grad-CAM overlays need the model; this report was written without it.)</p>")
    parts.append('<div class="gallery">' + "".join(_face_figure(doc, e, o, n) for e, o, n in zip(top, overlays, notes)) + "</div>")
    if bottom:
        parts.append("<h2>Lowest-scoring faces (for contrast)</h2>")
        parts.append('<div class="gallery">' + "".join(_face_figure(doc, e, None) for e in bottom) + "</div>")
    return "".join(parts)


def _provenance(doc: dict) -> str:
    facts = doc.get("input") or {}
    parts = ["<h2>Evidence file</h2>"]
    parts.append(
        _rows(
            [
                ("path as given", f"<code>{_esc(facts.get('path') or doc.get('path'))}</code>"),
                ("absolute path", _esc(facts.get("absolute_path"))),
                ("size", f"{facts['size_bytes']:,} bytes" if facts.get("size_bytes") is not None else None),
                ("modified (UTC)", _esc(facts.get("modified_utc"))),
                ("sha256", f"<span class='hash'>{_esc(facts.get('sha256'))}</span>" if facts.get("sha256") else "not computed (the file could not be read)"),
            ]
        )
    )
    container = doc.get("container") or {}
    if container:
        video = container.get("video") or {}
        info = doc.get("info") or {}
        if container.get("error"):
            parts.append(f"<h2>Container</h2><p>{_esc(container['error'])}</p>")
        else:
            rows = [
                ("format", _esc(container.get("format_long") or container.get("format"))),
                ("streams", _esc(", ".join(container.get("streams") or []))),
                ("codec", _esc(" / ".join(str(v) for v in (video.get("codec_long") or video.get("codec"), video.get("profile"), video.get("pixel_format")) if v))),
                ("resolution", f"{video.get('width')}x{video.get('height')}" if video.get("width") else None),
                ("display rotation", f"{video['rotation']} degrees" if video.get("rotation") is not None else None),
                ("frame rate", f"{video['fps']:g} fps" if video.get("fps") else None),
                ("frames (container)", _esc(video.get("frame_count"))),
                ("frames (decoder)", _esc(info.get("frame_count")) if doc.get("kind") == "video" else None),
                ("duration", f"{container['duration_s']:.3f} s" if container.get("duration_s") else None),
                ("bit rate", f"{container['bit_rate'] / 1000:.0f} kbit/s" if container.get("bit_rate") else None),
                ("container tags", _words(container.get("tags"))),
                ("stream tags", _words(video.get("tags"))),
            ]
            parts.append("<h2>Container</h2>" + _rows(rows))
    scan = doc.get("scan") or {}
    versions = scan.get("versions") or {}
    parts.append("<h2>This scan</h2>")
    parts.append(
        _rows(
            [
                ("started (UTC)", _esc(scan.get("started_utc"))),
                ("run started (UTC)", _esc(scan.get("run_started_utc")) if scan.get("run_started_utc") != scan.get("started_utc") else None),
                ("duration", f"{scan['duration_s']:.2f} s" if scan.get("duration_s") is not None else None),
                ("host", _esc(scan.get("host"))),
                ("system", _esc(scan.get("os"))),
                ("software", _esc(", ".join(f"{k} {v}" for k, v in versions.items()))),
                ("command", f"<code>{_esc(scan.get('command'))}</code>" if scan.get("command") else None),
                ("options", _words(_options_as_used(doc))),
                ("frames sampled", _esc(frame_count_words(doc.get("frames_sampled") or 0)) if doc.get("verdict") != "error" else None),
                ("faces scored", _esc(doc.get("faces")) if doc.get("verdict") != "error" else None),
            ]
        )
    )
    for det in doc.get("detectors") or []:
        parts.append(f"<h2>Detector {_esc(det.get('name'))}</h2>")
        parts.append(
            _rows(
                [
                    ("weights file", _esc(det.get("weights") or "none: UNTRAINED random weights")),
                    ("weights sha256", f"<span class='hash'>{_esc(det.get('sha256'))}</span>" if det.get("sha256") else None),
                    ("architecture", _esc(det.get("architecture"))),
                    ("paper", _esc(det.get("paper"))),
                    ("input", _esc(det.get("input"))),
                    ("trained on", _esc(det.get("trained_on"))),
                    ("card written", _esc(det.get("card_created"))),
                ]
            )
        )
    return "".join(parts)


def _options_as_used(doc: dict) -> dict:
    """The scan's options, with --threshold marked unused where the calibrated band decided (it showed 0.5 beside a 0.86 verdict)."""
    options = dict((doc.get("scan") or {}).get("options") or {})
    if doc.get("score_kind") == "panel" and "threshold" in options:
        low, high = doc.get("band") or (None, doc.get("threshold"))
        options["threshold"] = (f"{options['threshold']} (not used: the calibrated detectors' band decides, "
                                f"{band_words((low, high))})")
    return options


def report_html(doc: dict, evidence: list, timeline_png: bytes | None, detector=None) -> str:
    """The report for one input's result.json document (`ScanResult.to_dict()`)."""
    warn = f'<div class="warn">WARNING: {_esc(doc.get("warning"))}</div>' if doc.get("untrained") else ""
    info = doc.get("info") or {}
    errors = "".join(f"<li>{_esc(e)}</li>" for e in doc.get("errors") or [])
    kind = doc.get("kind") or "input"
    if doc.get("verdict") == "error":
        what = "could not be scanned"
    elif kind == "image":
        what = f"image, {info.get('width')}x{info.get('height')}, {frame_count_words(1)}, {doc.get('faces', 0)} face(s) scored"
    else:
        what = f"video, {info.get('width')}x{info.get('height')}, {frame_count_words(doc.get('frames_sampled') or 0)} sampled, {doc.get('faces', 0)} faces scored"
    timeline = ""
    if timeline_png is not None and kind == "video":
        uri = "data:image/png;base64," + base64.b64encode(timeline_png).decode("ascii")
        timeline = f'<h2>Timeline</h2><img src="{uri}" alt="score per sampled frame" style="max-width:100%">'
    elif kind == "image" and doc.get("verdict") != "error":
        timeline = _score_bar(doc)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ddtool scan: {_esc(doc.get('path'))}</title><style>{STYLE}</style></head>
<body>
{warn}
<h1>ddtool scan report</h1>
<p><code>{_esc(doc.get('path'))}</code> ({_esc(what)})</p>
{f"<p class='small'>{_esc((doc.get('content_credentials') or {}).get('summary'))} (details below)</p>" if doc.get('content_credentials') else ''}
{_case(doc)}
{_verdict(doc)}
{_faces_found(doc)}
{f'<h2>Problems</h2><ul>{errors}</ul>' if errors else ''}
{_limits(doc)}
{_panel(doc) if doc.get('verdict') != 'error' else ''}
{timeline}
{_segments(doc)}
{_tracks(doc)}
{_evidence(doc, evidence, detector)}
{_credentials(doc)}
{_provenance(doc)}
<p class="small">Written by ddtool {_esc(((doc.get('scan') or {}).get('versions') or {}).get('ddtool'))}. Every file of this evidence folder
is listed with its sha256 in <code>manifest.sha256</code>: <code>ddtool verify FOLDER</code> (or <code>sha256sum -c manifest.sha256</code>)
checks that nothing changed since the scan, and re-hashes the input.</p>
{warn}
</body></html>
"""
