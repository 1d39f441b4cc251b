"""A panel of detectors that score the same faces, each cut the way it learned them.

`ddtool scan` runs the default panel (weights/panel.txt, one shipped weights
name per line) unless --weights picks one model. Faces are detected once;
every member's crop view (crop style, margin, size, interpolation from its
card, data.preprocess) is cut from the same frame and box; each member
scores its own view. With operating points in every member's card, a face's
panel score is the mean of the members' reference percentiles
(scan.calibration); a single uncalibrated model keeps its raw P(fake) and
the --threshold cut.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ddtool.errors import CheckpointError, ConfigError
from ddtool.scan.calibration import reference_percentile
from ddtool.scan.detector import Detector, load_detector
from ddtool.weights import panel_names

@dataclass
class Panel:
    members: list[Detector]

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("a detector panel needs at least one member")
        keys = [m.key for m in self.members]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"the panel names a detector twice ({', '.join(keys)}); list each once")

    @property
    def calibrated(self) -> bool:
        """Every member has an operating point: scores are fused reference percentiles, verdicts use the band."""
        return all(m.operating_point for m in self.members)

    @property
    def single(self) -> Detector | None:
        return self.members[0] if len(self.members) == 1 else None

    @property
    def untrained(self) -> bool:
        return any(m.untrained for m in self.members)

    @property
    def device(self) -> str:
        """Where the members score, as --device spells it (result.json records it, not "auto")."""
        return ", ".join(dict.fromkeys(m.device for m in self.members))

    def notes(self) -> list[str]:
        """One line per member that torch scores although onnxruntime could have (why, and what fixes it)."""
        return [f"{m.key} scored with torch: {m.note}" for m in self.members if m.note]

    def views(self) -> dict[tuple, Any]:
        from ddtool.media.crops import view_cropper

        return {view: view_cropper(view) for view in {m.preprocess.view for m in self.members}}

    def extractor(self, options):
        """One face extractor cutting every member's view (plus the gallery crop at the first member's size and margin)."""
        from dataclasses import replace

        from ddtool.media.crops import view_cropper
        from ddtool.media.faces import FaceExtractor, scan_face_detector

        first = self.members[0].preprocess
        margin = first.margin if options.margin is None else options.margin
        views, cutters = {}, {}
        member_views = [(member.preprocess if options.margin is None else replace(member.preprocess, margin=options.margin)).view
                        for member in self.members]
        for member, view in zip(self.members, member_views):
            # Members that cut the face the same way share one cutter, so the crop is made once per face.
            views[member.key] = cutters.setdefault(view, view_cropper(view))
        face_detector = scan_face_detector(options.detector, options.detector_model, all_faces=options.all_faces)
        size = max(first.size)
        # The gallery crop is the first member's own view when that is a plain box crop of the same size (cut once).
        style, view_margin, view_size, _ = member_views[0]
        same = style == "box" and view_margin == round(margin, 4) and view_size == size
        return FaceExtractor(face_detector, size=size, margin=margin, all_faces=options.all_faces, views=views,
                             image_view=self.members[0].key if same else None)

    def score(self, crops: Sequence, batch: int = 32, timings: dict[str, float] | None = None) -> tuple[list[dict[str, float]], np.ndarray]:
        """Per face: {member: P(fake)}, and the panel score (mean reference percentile, or the one raw P(fake)).

        `timings`, when given, gets each member's seconds added under "model:NAME" (a panel only).
        """
        raw = {}
        for m in self.members:
            tick = time.perf_counter()
            raw[m.key] = m.fake_probability([c.views[m.key] for c in crops], batch=batch)
            if timings is not None and self.single is None:
                timings[f"model:{m.key}"] = timings.get(f"model:{m.key}", 0.0) + time.perf_counter() - tick
        per_face = [{k: float(v[i]) for k, v in raw.items()} for i in range(len(crops))]
        if self.calibrated:
            fused = np.mean([reference_percentile(raw[m.key], m.operating_point) for m in self.members], axis=0)
        else:
            fused = raw[self.members[0].key]
        return per_face, np.asarray(fused, np.float64).reshape(len(crops))

    def provenance(self) -> dict[str, Any]:
        if self.single is not None:
            return self.single.provenance()
        return {
            "model": "panel: " + ", ".join(m.key for m in self.members),
            "weights": None,
            "weights_sha256": None,
            "untrained": self.untrained,
            "warning": next((m.provenance()["warning"] for m in self.members if m.untrained), None),
        }


def panel_for(options) -> Panel:
    """The panel a scan's options ask for (scan.options.ScanOptions): its detectors on its device, each scoring with
    the threads the pipeline's scoring stage gets (ddtool.device.scoring_threads: --threads, one stage's share, or
    every core for a heavy model)."""
    return load_panel(options.panel, options.model, options.weights, options.untrained, options.device, threads=options.threads, pipelined=True)


def load_panel(names: Sequence[str] | None = None, model: str | None = None, weights: str | Path | None = None,
               untrained: bool = False, device: str = "cpu", threads: int | None = None, engine: str = "auto",
               pipelined: bool = False) -> Panel:
    """--panel names, else --weights/--untrained (one model), else the default panel (weights/panel.txt).

    A panel of several members needs an operating point in every card
    (`ddtool weights calibrate NAME`), because their raw scores are not comparable.
    `threads`, `engine` and `pipelined` go to every member's loader (scan.detector.load_detector).
    """
    def load(name=None, path=None, test_only=False):
        return load_detector(name, path, test_only, device, threads=threads, engine=engine, pipelined=pipelined)

    if names:
        if weights is not None or untrained:
            raise ConfigError("--panel and --weights/--untrained exclude each other; drop one")
        members = [load(path=name) for name in names]
    elif weights is not None or untrained:
        return Panel([load(model, weights, untrained)])
    else:
        default = panel_names()
        if not default:
            return Panel([load(model)])  # no panel.txt: the one default model
        members = [load(path=name) for name in default]
        for member in members:
            member.shipped_name = member.key
    missing = [m.key for m in members if not m.operating_point]
    if len(members) > 1 and missing:
        raise CheckpointError(
            f"panel member(s) {', '.join(missing)} have no operating point in their card; "
            "run `ddtool weights calibrate NAME --reference REAL_MEDIA` first, or scan with --weights NAME alone"
        )
    if model is not None and len(members) > 1:
        raise ConfigError("--model applies to one model; with a panel drop it")
    return Panel(members)
