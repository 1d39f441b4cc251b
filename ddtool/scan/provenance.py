"""Who scanned what, when, with which tool and which detector: the facts a doubter asks for first.

`session_facts` describes the scan run (UTC start, host, versions, command
line, options, case fields); `detector_facts` describes one detector
(name, weights file, sha256, what its card says in plain words).
"""

from __future__ import annotations

import platform
import shlex
import socket
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ddtool import __version__


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def software_versions() -> dict[str, str]:
    """The versions of what scored: read from the installed packages' metadata (a scan on onnxruntime never imports torch)."""
    import cv2
    import numpy

    versions = {
        "ddtool": __version__,
        "python": platform.python_version(),
        "torch": _installed("torch"),
        "onnxruntime": _installed("onnxruntime"),
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import av

        versions["pyav"] = av.__version__
    except ImportError:  # pragma: no cover
        pass
    return versions


def _installed(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def case_fields(case: str | None = None, examiner: str | None = None, note: str | None = None) -> dict[str, str]:
    """The optional case fields the analyst gave (--case, --examiner, --note); empty ones left out."""
    return {k: v for k, v in (("case", case), ("examiner", examiner), ("note", note)) if v}


def session_facts(options, argv: Sequence[str] | None = None, case: dict[str, str] | None = None) -> dict[str, Any]:
    """The scan run: start (UTC), host, OS, versions, full command line and resolved options, case fields."""
    argv = list(sys.argv if argv is None else argv)
    option_values = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    return {
        "started_utc": utc_now(),
        "host": socket.gethostname(),
        "os": platform.platform(),
        "versions": software_versions(),
        "command": shlex.join(argv),
        "options": option_values,
        "case": dict(case or {}),
    }


def detector_facts(detector) -> dict[str, Any]:
    """One detector as the report cites it; never the card's own path, never raw card JSON."""
    from ddtool.scan.wording import card_limits, measured_auc
    from ddtool.weights import training_summary

    card = detector.card or {}
    auc, on = measured_auc(card)
    weights = Path(detector.weights_path) if detector.weights_path else None
    return {
        "name": detector.name,
        "weights": weights.name if weights else None,
        "weights_path": str(weights) if weights else None,
        "sha256": detector.weights_sha256,
        "untrained": detector.untrained,
        "card_created": card.get("created"),
        "card_ddtool_version": card.get("ddtool_version"),
        "architecture": card.get("architecture") or (detector.spec.description if detector.spec else None),
        "paper": detector.spec.paper if detector.spec else None,
        # What scored: onnxruntime runs the card's ONNX export (its own file and sha256), torch the weights themselves.
        "engine": detector.engine,
        "engine_file": Path(detector.engine_file).name if detector.engine_file else None,
        "engine_sha256": ((detector.card.get("onnx") or {}).get("sha256") if detector.engine_file else None),
        "input": f"{detector.input_hw[0]}x{detector.input_hw[1]} px face crops, "
                 + (f"margin {detector.crop_margin:g}" if detector.crop_style == "box" else f"{detector.crop_style} crop"),
        "key": detector.key,
        "operating_point": {k: v for k, v in (detector.operating_point or {}).items() if k != "quantiles"} or None,
        "trained_on": "random weights" if detector.untrained else training_summary(card),
        "measured_auc": auc,
        "measured_on": on,
        "limits": card_limits(card, untrained=detector.untrained),
    }
