"""onnxruntime sessions: the one place ddtool opens an ONNX graph to run it.

Every ONNX model ddtool runs goes through `open_session`: the shipped
detectors' exports (models.onnx_scorer), the CLIP encoder
(models.clip_encoder) and the CenterFace face detector (media.centerface).
It fixes what they share: which execution providers a --device value means
(`ddtool.device.onnx_providers`), one intra-op thread count per session
(scan's stages run at once, each with its own threads), sequential
execution, warnings off (onnxruntime logs unused initialisers of older
graphs at warning level), and one wording for a missing onnxruntime and for
a file it cannot load. A session is not imported torch: scan runs without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ddtool.errors import CheckpointError

ORT_PACKAGE = "onnxruntime"
INSTALL_HINT = f"pip install {ORT_PACKAGE} (onnxruntime-gpu for the CUDA provider)"
_ERROR_LOGS_ONLY = 3  # onnxruntime's severity levels: 0 verbose .. 3 error


def onnxruntime():
    """The onnxruntime module, or a one-line error saying how to install it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CheckpointError(f"ddtool runs ONNX models on onnxruntime, which is not installed here: {INSTALL_HINT}") from None
    return ort


def available_providers() -> list[str]:
    return list(onnxruntime().get_available_providers())


def open_session(model: str | Path | bytes, providers: list[Any], threads: int | None = None, what: str | None = None):
    """An onnxruntime InferenceSession over a file (or serialised graph bytes) with these providers and threads.

    `what` names the model in a load error (default: the file's path); the error is a CheckpointError.
    """
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = _ERROR_LOGS_ONLY
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime's own exception classes (InvalidProtobuf, Fail, ...) share no public base
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{what or source}: onnxruntime cannot load it as an ONNX model ({first[:300]})") from None


def session_device(session) -> str:
    """Where a session runs, as --device spells it: cuda:N for the CUDA provider, else cpu."""
    providers = session.get_providers()
    if providers and providers[0] == "CUDAExecutionProvider":
        options = session.get_provider_options().get("CUDAExecutionProvider", {})
        return f"cuda:{options.get('device_id', 0)}"
    return "cpu"
