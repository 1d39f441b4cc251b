"""Options several commands share, defined once so they read and behave the same everywhere."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ddtool.media.faces import DEFAULT_SCAN_DETECTOR, DETECTORS

# typer lists an Enum's values as the choices and rejects others (exit 2).
DetectorName = Enum("DetectorName", {name: name for name in DETECTORS}, type=str)
DetectorModel = Optional[Path]


def detector_option(default: str = DEFAULT_SCAN_DETECTOR) -> Any:
    """`--detector NAME` (scan, explain, extract); an unknown name is a usage error."""
    return typer.Option(
        DetectorName(default), "--detector", case_sensitive=False,
        help="Face detector: centerface (CNN, most faces found; scan's default), blazeface (CNN, fastest), blazeface-back, "
        "blazeface-front, mtcnn, hog (dlib, the papers'; extract's default), cnn (dlib MMOD, slow) or yunet (needs --detector-model). "
        "See docs/media.md.",
    )


def device_option() -> Any:
    """`--device` (scan, explain, eval, report, profile): one default everywhere, ddtool.device.DEFAULT_DEVICE."""
    from ddtool.device import DEFAULT_DEVICE

    return typer.Option(DEFAULT_DEVICE, "--device", help="auto (the GPU when torch sees one, else the CPU), cpu, cuda or cuda:N.")


def detector_model_option() -> Any:
    """`--detector-model PATH`: the model file (a folder for mtcnn) replacing the detector's default."""
    return typer.Option(
        None, "--detector-model",
        help="Model file for the face detector: required for yunet (ONNX); optional for centerface (.onnx), cnn (.dat), "
        "blazeface-back or blazeface-front (.safetensors), blazeface and mtcnn (a folder of their .safetensors files).",
    )

