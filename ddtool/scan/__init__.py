"""The analyst's one command: verdict + evidence for videos, images and folders.

`scan_path(path, options) -> list[ScanResult]`; `write_outputs` writes the
per-input evidence folder (CSV, JSON, timeline, SRT, HTML report).
Names are imported on first use so `ddtool.scan.detector` stays importable by
ddtool.explain without pulling in the whole pipeline.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "scan_path": "ddtool.scan.pipeline",
    "scan_iter": "ddtool.scan.pipeline",
    "verify_evidence": "ddtool.scan.manifest",
    "scan_file": "ddtool.scan.pipeline",
    "ScanOptions": "ddtool.scan.pipeline",
    "ScanResult": "ddtool.scan.pipeline",
    "exit_code_for": "ddtool.scan.pipeline",
    "write_outputs": "ddtool.scan.outputs",
    "output_dir_name": "ddtool.scan.outputs",
    "scan_to_folder": "ddtool.scan.batch",
    "load_detector": "ddtool.scan.detector",
    "Detector": "ddtool.scan.detector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ddtool.scan' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
