"""`ddtool weights calibrate`: score real reference media with detectors and store their operating points.

The operating point's definition and the fusion rule live in scan.calibration;
this module does the work: find the reference media, find faces once, let
every detector score its own crop view, write each card.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ddtool.errors import ConfigError, InputError
from ddtool.io import write_json_atomic
from ddtool.media.faces import DEFAULT_SCAN_DETECTOR
from ddtool.scan.calibration import TARGET_FPR, operating_point
from ddtool.scan.detector import load_detector
from ddtool.scan.inputs import list_inputs
from ddtool.scan.panel import Panel
from ddtool.scan.pipeline import ScanOptions, scan_file




def reference_inputs(references: Sequence[str | Path], split: str | None = None, limit: int | None = None) -> list[Path]:
    """Media files of the reference: folders (recursive), files, or CSVs with `path` (+ optional `split`, `label`) columns."""
    found: list[Path] = []
    for ref in references:
        ref = Path(ref)
        if ref.suffix.lower() == ".csv" and ref.is_file():
            with open(ref, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            if rows and "path" not in rows[0]:
                raise ConfigError(f"{ref}: a reference CSV needs a `path` column")
            for row in rows:
                if split is not None and row.get("split") != split:
                    continue
                if str(row.get("label", "0")).strip() not in ("0", "real", ""):
                    continue  # calibration is on real media only
                path = Path(row["path"])
                found.append(path if path.is_absolute() else ref.parent / path)
        else:
            found += list_inputs(ref)
    if not found:
        raise InputError(f"no reference media found in {', '.join(map(str, references))}" + (f" with split {split!r}" if split else ""))
    if limit is not None and len(found) > limit:
        found = [found[i] for i in np.linspace(0, len(found) - 1, limit).round().astype(int)]
    return found


def score_reference(detectors, paths: Sequence[Path], frames: int = 8, face_detector: str = DEFAULT_SCAN_DETECTOR, progress=None) -> tuple[dict[str, np.ndarray], int]:
    """P(fake) of every face found in the reference media, per detector, each cut as its card says; (scores by key, inputs with a face).

    Faces are found once and scored by all detectors (one panel), so calibrating several costs one pass.
    """
    panel = Panel(list(detectors))
    options = ScanOptions(frames=frames, detector=face_detector)
    extractor = panel.extractor(options)
    scores: dict[str, list[float]] = {m.key: [] for m in panel.members}
    used = 0
    for i, path in enumerate(paths):
        result = scan_file(path, options, panel, extractor)
        for frame in result.frames:
            for key, value in frame.scores.items():
                scores[key].append(value)
        used += bool(result.frames)
        if progress is not None and (i + 1) % 100 == 0:
            progress.print(f"  {i + 1}/{len(paths)} reference inputs, {used} with a face", highlight=False)
    return {k: np.asarray(v, np.float64) for k, v in scores.items()}, used


def calibrate_weights(names: Sequence[str], references: Sequence[str | Path], split: str | None = None, label: str | None = None,
                      target_fpr: float = TARGET_FPR, frames: int = 8, face_detector: str = DEFAULT_SCAN_DETECTOR, limit: int | None = None,
                      write: bool = True, progress=None, save_scores: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Score real reference media with each weights NAME and (when `write`) store its operating point in its card."""
    from ddtool.models.cards import card_path_for
    from ddtool.weights import data_name

    paths = reference_inputs(references, split=split, limit=limit)
    detectors = [load_detector(weights=name) for name in names]  # bad names fail here, before the slow pass
    scores, used = score_reference(detectors, paths, frames=frames, face_detector=face_detector, progress=progress)
    if save_scores is not None:
        write_json_atomic(save_scores, {k: v.tolist() for k, v in scores.items()})
    points = {}
    for detector in detectors:
        reference = {
            "name": label or ", ".join(data_name(r) for r in references),
            "split": split,
            "inputs": len(paths),
            "face_detector": face_detector,
            "frames_per_video": frames,
            "crop": detector.crop_style,
        }
        # A card travels: the reference is named (its folder or file name), never where it lay on this machine.
        point = operating_point(scores[detector.key], target_fpr, reference=reference, n_inputs=used)
        if write:
            card_path = card_path_for(detector.weights_path)
            card = json.loads(card_path.read_text(encoding="utf-8"))
            card["operating_point"] = point
            write_json_atomic(card_path, card)
        points[detector.key] = point
    return points
