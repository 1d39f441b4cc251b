"""Scan one input or a folder: sample frames, find and track faces, score them, judge.

    scan_path(path, options) -> list[ScanResult]

Per input: probe, sample `frames` evenly spaced indices, decode only those,
detect + track faces, score every face crop in batches with the detector's
own preprocessing, aggregate each track with the chosen rule (the video
score is the maximum over tracks, so one swapped face among real ones is not
diluted) and judge fake (score >= threshold), real, or inconclusive (no
usable face). A folder scan records a bad file as an error and goes on.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from ddtool.device import opencv_threads, scoring_threads, stage_threads, torch_threads
from ddtool.errors import DDToolError, InputError
from ddtool.evaluate.rules import RULES  # noqa: F401 (re-exported)
from ddtool.scan.detector import Detector
from ddtool.scan.calibration import band_for
from ddtool.scan.options import ScanOptions
from ddtool.scan.panel import Panel, panel_for
from ddtool.scan.verdict import (  # noqa: F401 (re-exported)
    ERROR, EXIT_FAILED_SOME, EXIT_FAILED_SOME_FAKE, EXIT_UNCERTAIN, FAKE, INCONCLUSIVE, REAL, UNCERTAIN,
    exit_code_for, exit_code_for_verdicts, judge, segment_gap, track_segments,
)
from ddtool.scan.evidence import EVIDENCE_CROPS, NATIVE_CROP_MAX, THUMB_WIDTH, EvidenceImages, FaceEvidence, box_tuple, pick_evidence  # noqa: F401 (re-exported)
from ddtool.scan.inputs import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES, list_inputs  # noqa: F401 (re-exported)

# Faces per hand-over to the scorer thread: small enough that scoring starts
# while frames are still being detected; on CPU batches of 4 ran faster per
# face than 8 or 32 (cache), docs/scan.md "Speed".
SCORE_CHUNK = 4


@dataclass
class FrameScore:
    frame_index: int
    timestamp: float
    track_id: int
    box: tuple[float, float, float, float]
    score: float  # the panel score (mean reference percentile), or the one uncalibrated model's P(fake)
    scores: dict[str, float] = field(default_factory=dict)  # each detector's P(fake) of this face

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_index": self.frame_index,
            "timestamp": _finite_or_none(self.timestamp),
            "track_id": self.track_id,
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 6),
            "scores": {k: round(float(v), 6) for k, v in self.scores.items()},
        }


@dataclass
class ScanResult:
    path: str
    kind: str  # video | image
    verdict: str  # fake | real | uncertain | inconclusive | error
    score: float | None
    threshold: float
    aggregate: str
    model: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    frames_sampled: int = 0
    tracks: list[dict[str, Any]] = field(default_factory=list)
    frames: list[FrameScore] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    evidence: list[FaceEvidence] = field(default_factory=list)
    input: dict[str, Any] = field(default_factory=dict)  # path as given, size, mtime, sha256
    container: dict[str, Any] = field(default_factory=dict)  # PyAV's container/stream facts
    session: dict[str, Any] = field(default_factory=dict)  # provenance.session_facts of the run
    detectors: list[dict[str, Any]] = field(default_factory=list)  # provenance.detector_facts each
    panel: list[dict[str, Any]] = field(default_factory=list)  # per detector: score, operating point, percentile (verdict.panel_rows)
    face_detector: dict[str, Any] = field(default_factory=dict)  # which face detector found the faces, and how (face_detector_facts)
    faces_found: dict[str, Any] = field(default_factory=dict)  # faces the detector found per frame, beside the ones scored
    credentials: dict[str, Any] = field(default_factory=dict)  # C2PA content credentials (media.credentials)
    evidence_folder: dict[str, Any] = field(default_factory=dict)  # the folder --out wrote it to and why that name (scan.naming)
    score_kind: str = "p_fake"  # "panel": mean reference percentile of the detectors; "p_fake": one model's P(fake)
    started_utc: str | None = None

    @property
    def band(self) -> tuple[float, float]:
        """The panel-score band this input is judged by (a video's differs from a photo's)."""
        return band_for(self.kind)

    @property
    def scanned(self) -> bool:
        return self.verdict != ERROR

    def strength(self) -> dict[str, Any]:
        from ddtool.scan.wording import panel_accuracy_reason, verdict_strength

        strength = verdict_strength(self.verdict, self.score, self.threshold, self.detectors)
        reason = panel_accuracy_reason([p["name"] for p in self.panel]) if self.score_kind == "panel" and strength["level"] != "none" else None
        if reason:
            strength["reasons"].append(reason)
            strength["level"] = "low"
        mismatch = self.face_detector_mismatch() if strength["level"] != "none" else None
        if mismatch:
            strength["reasons"].append(mismatch)
            strength["level"] = "low"
        return strength

    def face_detector_mismatch(self) -> str | None:
        """Operating points measured on another face detector's crops than this scan's (they may not hold)."""
        used = self.face_detector.get("name") or (self.session.get("options") or {}).get("detector")
        measured = {
            d["key"]: ((d.get("operating_point") or {}).get("reference") or {}).get("face_detector")
            for d in self.detectors if d.get("operating_point")
        }
        other = sorted(k for k, v in measured.items() if used and v and v != used)
        if not other:
            return None
        return (f"the operating points of {', '.join(other)} were measured on {measured[other[0]]} face crops; "
                f"this scan found faces with {used}, so their thresholds may not hold")

    def to_dict(self) -> dict[str, Any]:
        from ddtool.scan.wording import headline

        strength = self.strength()
        return {
            "path": self.path,
            "kind": self.kind,
            "verdict": self.verdict,
            "headline": headline(self.verdict, strength["level"]),
            "score": None if self.score is None else round(float(self.score), 6),
            "score_kind": self.score_kind,
            "threshold": self.threshold,
            "band": list(self.band) if self.score_kind == "panel" else None,
            "aggregate": self.aggregate,
            "model": self.model.get("model"),
            "weights": self.model.get("weights"),
            "weights_sha256": self.model.get("weights_sha256"),
            "untrained": bool(self.model.get("untrained")),
            "warning": self.model.get("warning"),
            "info": self.info,
            "frames_sampled": self.frames_sampled,
            "faces": len(self.frames),
            "tracks": self.tracks,
            "frames": [f.to_dict() for f in self.frames],
            "segments": self.segments,
            "errors": self.errors,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "strength": strength,
            "input": self.input,
            "container": self.container,
            "case": self.session.get("case", {}),
            "scan": {
                **{k: v for k, v in self.session.items() if k != "case"},
                "run_started_utc": self.session.get("started_utc"),
                "started_utc": self.started_utc,
                "duration_s": round(self.timings.get("total", 0.0), 4),
            },
            "detectors": self.detectors,
            "panel": self.panel,
            "face_detector": self.face_detector,
            "faces_found": self.faces_found,
            "content_credentials": self.credentials,
            "evidence_folder": self.evidence_folder or None,
        }


class ScanProgress(Protocol):
    """What a caller (the CLI's progress bar) is told while scanning."""

    def start_file(self, path: Path, frames: int) -> None: ...

    def advance(self, frames: int) -> None: ...

    def end_file(self, result: ScanResult) -> None: ...


class _Silent:
    def start_file(self, path: Path, frames: int) -> None:
        pass

    def advance(self, frames: int) -> None:
        pass

    def end_file(self, result: ScanResult) -> None:
        pass


def scan_path(
    path: str | Path,
    options: ScanOptions | None = None,
    detector: Detector | Panel | None = None,
    progress: ScanProgress | None = None,
    on_result: Callable[[ScanResult], None] | None = None,
    session: dict[str, Any] | None = None,
) -> list[ScanResult]:
    """Scan a video, an image or a folder; one ScanResult per input file.

    Problems with one file become that result's `errors` (verdict "error");
    only a missing path, an empty folder or bad options raise. `on_result`
    is called as each file finishes (e.g. to write its evidence folder
    before the next file, so a long folder scan leaves results behind).
    Keeps every result; for a large folder iterate `scan_iter` instead.
    """
    results = []
    for result in scan_iter(path, options, detector, progress, session):
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def scan_iter(
    path: str | Path,
    options: ScanOptions | None = None,
    detector: Detector | Panel | None = None,
    progress: ScanProgress | None = None,
    session: dict[str, Any] | None = None,
    inputs: list[Path] | None = None,
) -> Iterator[ScanResult]:
    """Yield one ScanResult per input as it finishes; nothing is kept here, so a
    caller that writes each result and drops it scans any number of files in flat memory.
    `inputs`: the files to scan when the caller listed them already (else every input under `path`)."""
    from ddtool.scan.provenance import detector_facts, session_facts

    options = options or ScanOptions()
    options.validate()
    inputs = list_inputs(path) if inputs is None else inputs
    panel = as_panel(detector) if detector is not None else panel_for(options)
    extractor = make_extractor(options, panel)
    progress = progress or _Silent()
    session = session if session is not None else session_facts(options)
    detectors = [detector_facts(m) for m in panel.members]
    for item in inputs:
        yield scan_file(item, options, panel, extractor, progress, session=session, detectors=detectors)


def as_panel(detector: Detector | Panel) -> Panel:
    return detector if isinstance(detector, Panel) else Panel([detector])


def make_extractor(options: ScanOptions, detector: Detector | Panel):
    """Face extractor cutting every panel member's view (crop style, margin, size from its card)."""
    return as_panel(detector).extractor(options)


def scan_file(
    path: Path,
    options: ScanOptions,
    detector: Detector | Panel,
    extractor=None,
    progress: ScanProgress | None = None,
    session: dict[str, Any] | None = None,
    detectors: list[dict[str, Any]] | None = None,
) -> ScanResult:
    """Scan one file; input problems are returned as an "error" result, never raised."""
    from ddtool.scan.provenance import detector_facts, utc_now

    panel = as_panel(detector)
    progress = progress or _Silent()
    extractor = extractor or make_extractor(options, panel)
    result = ScanResult(str(path), "video", ERROR, None, options.threshold, options.aggregate, model=panel.provenance())
    result.score_kind = "panel" if panel.calibrated else "p_fake"
    result.session = session or {}
    result.detectors = detectors if detectors is not None else [detector_facts(m) for m in panel.members]
    result.started_utc = utc_now()
    result.face_detector = face_detector_facts(extractor.detector)
    started = time.perf_counter()
    try:
        _scan_into(result, Path(path), options, panel, extractor, progress)
    except (DDToolError, OSError) as exc:
        result.verdict = ERROR
        result.score = None
        # An OSError here is the file's (unreadable, vanished, too long a name): that input's error, not the batch's.
        result.errors.append(str(exc) if isinstance(exc, DDToolError) else f"{path}: cannot be read ({exc.strerror or exc}); check the file and its permissions")
        result.frames, result.tracks, result.segments, result.evidence = [], [], [], []
        result.input = result.input or _input_facts_if_readable(Path(path))
        if not result.container and result.input.get("sha256"):
            from ddtool.media.container import container_facts

            result.container = container_facts(path)  # what FFmpeg makes of a damaged file is evidence too
        if not result.credentials and result.input.get("sha256"):
            from ddtool.media.credentials import content_credentials

            result.credentials = content_credentials(path)
    result.timings["total"] = time.perf_counter() - started
    progress.end_file(result)
    return result


def face_detector_facts(detector) -> dict[str, Any]:
    """The face detector as this scan ran it: name, search sizes, score cut, model file (name only)."""
    model = getattr(detector, "model_path", None)
    return {
        "name": detector.name,
        "max_side": detector.max_side,
        "coarse_side": detector.first_side,  # searched at this size first, at max_side only where nothing was found
        "min_score": detector.min_score,
        "model_file": Path(model).name if model else None,
    }


def faces_found_facts(found: list[int], all_faces: bool) -> dict[str, Any]:
    """How many faces the detector found per sampled frame, so a reader knows when faces went unscored."""
    several = sum(1 for n in found if n > 1)
    return {
        "most_in_one_frame": max(found, default=0),
        "frames_with_several": several,
        "scored": "every face" if all_faces else "the largest face of each frame",
        "unscored": 0 if all_faces else sum(n - 1 for n in found if n > 1),
    }


def _input_facts_if_readable(path: Path) -> dict[str, Any]:
    """A failed input's hash still identifies what was handed in (when it can be read at all)."""
    from ddtool.media.container import file_facts

    try:
        return file_facts(path) if path.is_file() else {"path": str(path)}
    except OSError:
        return {"path": str(path)}


def _scan_into(result: ScanResult, path: Path, options: ScanOptions, panel: Panel, extractor, progress: ScanProgress) -> None:
    from ddtool.media.container import container_facts, file_facts
    from ddtool.media.credentials import content_credentials
    from ddtool.media.video import prefetch, probe, read_frames, sample_indices

    started = time.perf_counter()
    info = probe(path)
    timings = {"probe": time.perf_counter() - started}
    tick = time.perf_counter()
    result.input = file_facts(path)
    timings["hash"] = time.perf_counter() - tick
    tick = time.perf_counter()
    result.credentials = content_credentials(path)
    timings["credentials"] = time.perf_counter() - tick
    result.kind = "image" if info.is_image else "video"
    result.container = container_facts(path, is_image=info.is_image)
    result.info = {
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "frame_count": info.frame_count,
        "duration": info.duration,
    }
    indices = [0] if info.is_image else sample_indices(info.frame_count, frames=options.frames)
    result.frames_sampled = len(indices)
    progress.start_file(path, len(indices))
    timings.update(decode=0.0, detect=0.0, crop=0.0, model=0.0)

    decoded = 0

    def timed_frames():
        # Runs in the reader thread (prefetch): decode time is its own.
        reader = iter(read_frames(path, indices))
        while True:
            tick = time.perf_counter()
            frame = next(reader, None)
            timings["decode"] += time.perf_counter() - tick
            if frame is None:
                return
            yield frame

    def counted(frames):
        nonlocal decoded
        for frame in frames:
            decoded += 1
            progress.advance(1)
            yield frame

    def score(batch: list) -> list[tuple[dict[str, float], float]]:
        tick = time.perf_counter()
        per_face, fused = panel.score(batch, batch=options.batch, timings=timings)
        timings["model"] += time.perf_counter() - tick
        return list(zip(per_face, fused.tolist()))

    # Three stages overlap: a thread decodes ahead, this thread detects and
    # crops frame by frame, and a scorer thread scores faces in chunks; the
    # timings are each stage's own, so their sum can exceed the total.
    face_crops, waiting, pending, found = [], [], [], []
    # The report's face-at-its-own-resolution and frame thumbnail, cut while the frame is in memory
    # (no second decode); kept only for faces that can still be among the evidence.
    images = EvidenceImages(extractor.margin) if options.evidence_images else None
    chunk = min(options.batch, SCORE_CHUNK)
    threads = stage_threads(options.threads)
    # A model heavy per face scores on more threads (ddtool.device.scoring_threads; onnxruntime got them at load).
    scoring = max(scoring_threads(options.threads, getattr(m.spec, "heavy_per_face", False)) for m in panel.members)
    # torch's thread count is per thread: the scorer sets its own; OpenCV's pool (detection) is process-wide, restored after.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddtool-scorer", initializer=torch_threads, initargs=(scoring,)) as scorer, \
            opencv_threads(threads):
        for frame, frame_crops in extractor.iter_frames(counted(prefetch(timed_frames())), timings, found):
            if images is not None and frame_crops:
                images.add(frame, frame_crops, first=len(face_crops))
                images.prune(pending)
            face_crops += frame_crops
            waiting += frame_crops
            if len(waiting) >= chunk:
                pending.append(scorer.submit(score, waiting))
                waiting = []
        if waiting:
            pending.append(scorer.submit(score, waiting))
        scores = [s for future in pending for s in future.result()]
    crops = list(zip(face_crops, scores))
    if decoded == 0:
        raise InputError(f"{path}: none of the sampled frames could be decoded; the file is corrupt")
    if decoded < len(indices):
        result.errors.append(f"only {decoded} of {len(indices)} sampled frames could be decoded (truncated file?)")
    result.faces_found = faces_found_facts(found, options.all_faces)

    result.frames = [
        FrameScore(c.frame_index, float(c.timestamp), int(c.track_id), tuple(float(v) for v in box_tuple(c.box)), float(fused), members)
        for c, (members, fused) in crops
    ]
    # Gallery and Grad-CAM show the first panel member's own view of each face (what it scored).
    first = panel.members[0].key
    result.evidence = pick_evidence([(c, fused) for c, (_, fused) in crops], view=first)
    judge(result, options, panel)
    if images is not None:
        images.attach(result.evidence, face_crops)
    after = file_facts(path, with_hash=False)
    if (after["size_bytes"], after["modified_utc"]) != (result.input["size_bytes"], result.input["modified_utc"]):
        raise InputError(f"{path}: the file changed while it was being scanned (size or modification time); scan a copy that nothing writes to")
    result.timings = timings


def _finite_or_none(value: float) -> float | None:
    return round(float(value), 4) if value is not None and math.isfinite(value) else None


__all__ = [
    "judge", "exit_code_for_verdicts", "make_extractor", "RULES", "ScanOptions", "ScanResult", "FrameScore", "scan_path", "scan_iter", "scan_file",
    "exit_code_for", "list_inputs",
]
