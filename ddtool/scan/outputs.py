"""The evidence folder of one scanned input: result.json, scores.csv, timeline.png,
segments.srt, report.html and manifest.sha256, each written atomically."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from ddtool.io import write_bytes_atomic, write_json_atomic, write_text_atomic

CSV_COLUMNS = ["frame_index", "timestamp", "track_id", "x0", "y0", "x1", "y1", "score"]


def scores_csv(result) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    # `score` is the panel score (or the one model's P(fake)); then each detector's P(fake) of the face.
    members = list(result.frames[0].scores) if result.frames else []
    writer.writerow(CSV_COLUMNS + [f"p_fake_{name}" for name in members])
    for f in sorted(result.frames, key=lambda f: (f.frame_index, f.track_id)):
        ts = "" if not math.isfinite(f.timestamp) else f"{f.timestamp:.4f}"
        writer.writerow([f.frame_index, ts, f.track_id, *(f"{v:.1f}" for v in f.box), f"{f.score:.6f}",
                         *(f"{f.scores[name]:.6f}" for name in members)])
    return buffer.getvalue()


def srt_time(seconds: float) -> str:
    millis = int(round(max(0.0, seconds) * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{millis:03d}"


def segments_srt(result, min_duration: float = 1.0) -> str:
    """One subtitle per suspicious segment, shown for at least `min_duration` s so a
    one-sample segment is readable in a player."""
    warning = " [UNTRAINED MODEL]" if result.model.get("untrained") else ""
    label = "panel score" if getattr(result, "score_kind", "p_fake") == "panel" else "P(fake)"
    blocks = []
    for number, seg in enumerate(result.segments, start=1):
        end = max(seg["end"], seg["start"] + min_duration)
        text = f"SUSPICIOUS face {seg['track_id']}: peak {label} {seg['peak']:.2f}, mean {seg['mean']:.2f}{warning}"
        blocks.append(f"{number}\n{srt_time(seg['start'])} --> {srt_time(end)}\n{text}\n")
    return "\n".join(blocks)


def output_dir_name(path: str | Path, root: str | Path | None = None) -> str:
    """The evidence folder name of one input, unique per input (scan.naming.evidence_name)."""
    from ddtool.scan.naming import evidence_name

    return evidence_name(path, root).name


def write_outputs(result, out_dir: str | Path, detector=None, report: bool = True) -> list[Path]:
    """Write the evidence files for one result into out_dir; returns their paths.

    A failed input gets result.json only (its error entry); an image gets no
    timeline and no SRT (one frame has no time axis). Segments.srt is written
    when there is a suspicious segment. Last comes manifest.sha256: the sha256
    of every file written, which `ddtool verify` checks. The HTML report
    needs the detector for its Grad-CAM overlays; without one it says so.
    """
    from ddtool.scan.manifest import write_manifest

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(out_dir)
    document = result.to_dict()
    written = [out_dir / "result.json"]
    write_json_atomic(written[0], document)
    if result.scanned:
        write_text_atomic(out_dir / "scores.csv", scores_csv(result))
        written.append(out_dir / "scores.csv")
        timeline = None
        if result.kind == "video":
            from ddtool.scan.timeline import timeline_png

            timeline = timeline_png(result)
            write_bytes_atomic(out_dir / "timeline.png", timeline)
            written.append(out_dir / "timeline.png")
            if result.segments:
                write_text_atomic(out_dir / "segments.srt", segments_srt(result))
                written.append(out_dir / "segments.srt")
        if report:
            from ddtool.scan.report import report_html

            write_text_atomic(out_dir / "report.html", report_html(document, result.evidence, timeline, detector))
            written.append(out_dir / "report.html")
    elif report:
        from ddtool.scan.report import report_html

        write_text_atomic(out_dir / "report.html", report_html(document, [], None, None))
        written.append(out_dir / "report.html")
    written.append(write_manifest(out_dir, written))
    return written


# Files a previous scan into the same folder may have left; a new scan's folder holds only its own.
# The manifest goes first: a folder without one is never taken for complete (scan --resume re-does it).
EVIDENCE_FILES = ("manifest.sha256", "result.json", "scores.csv", "timeline.png", "segments.srt", "report.html")


def _remove_stale(out_dir: Path) -> None:
    for name in EVIDENCE_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for leftover in out_dir.glob(".*.tmp"):  # temp files of a write that a kill interrupted (ddtool.io.atomic_path)
        leftover.unlink(missing_ok=True)


def results_document(results) -> dict:
    """The `--json` document: every input plus a summary."""
    from ddtool.scan.pipeline import exit_code_for

    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    return {
        "schema": "ddtool.scan/1",
        "exit_code": exit_code_for(results),
        "summary": counts,
        "inputs": [r.to_dict() for r in results],
    }


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, default=str)
