"""Which device a --device value means: one rule for train, eval, scan and explain, for torch and for onnxruntime."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ddtool.errors import ConfigError

if TYPE_CHECKING:
    import torch

# Every command's --device default: the GPU when torch sees one, else the CPU (one rule for scan, explain, eval, report, profile, train).
DEFAULT_DEVICE = "auto"


def resolve_device(option: str) -> "torch.device":
    """auto -> cuda when torch sees a GPU, else cpu; cpu, cuda, cuda:N and mps as given.

    A GPU asked for on a machine without one, or a word that is no device, is
    a one-line ConfigError (checked before any slow work).
    """
    import torch  # here, not at the top: the CLI reads DEFAULT_DEVICE before anything slow loads

    if option == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if option.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {option}: torch sees no GPU here (no CUDA device); use --device cpu or auto")
    unknown = f"unknown device {option!r}; use cpu, cuda, cuda:N or auto"
    if not (option in ("cpu", "cuda", "mps") or option.startswith("cuda:")):
        raise ConfigError(unknown)
    try:
        return torch.device(option)
    except RuntimeError:
        raise ConfigError(unknown) from None


CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def onnx_providers(option: str, available: list[str]) -> list | None:
    """onnxruntime execution providers for a --device value, given the providers this onnxruntime offers.

    auto -> the CUDA provider when onnxruntime offers it, else the CPU; cpu -> the CPU; cuda / cuda:N -> the
    CUDA provider on GPU N (then the CPU for operators it lacks). None where this onnxruntime cannot run on that
    device (a GPU without its CUDA provider, mps): the caller then runs torch there. A word that is no device is a
    ConfigError. No torch here: whether torch sees a GPU does not decide where onnxruntime runs.
    """
    if option == "auto":
        return [CUDA_PROVIDER, CPU_PROVIDER] if CUDA_PROVIDER in available else [CPU_PROVIDER]
    if option == "cpu":
        return [CPU_PROVIDER]
    if option == "cuda" or (option.startswith("cuda:") and option[5:].isdigit()):
        return [(CUDA_PROVIDER, {"device_id": int(option[5:] or 0)}), CPU_PROVIDER] if CUDA_PROVIDER in available else None
    if option == "mps":
        return None
    raise ConfigError(f"unknown device {option!r}; use cpu, cuda, cuda:N or auto")


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a Slurm task's or a container's share), else the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on macOS and Windows
        return max(1, os.cpu_count() or 1)


def stage_threads(requested: int | None = None) -> int:
    """CPU threads for each stage of a pipelined scan (decode, detect, score run at once).

    None: about half the cores minus the decoder's share, at least 1. On 2
    cores that is 1: one thread per stage did the same work in less CPU time
    than two, which only wait on each other (docs/scan.md "Speed").
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ConfigError(f"--threads {requested!r}: must be a whole number of at least 1")
        return requested
    return max(1, (usable_cores() - 1) // 2)


def scoring_threads(requested: int | None, heavy_per_face: bool) -> int:
    """CPU threads for the scoring stage of a pipelined scan: stage_threads, except that a model whose face costs
    more than decoding and detecting a frame (ModelSpec.heavy_per_face: the CLIP tower, 145 ms a face on one thread
    against about 50 ms a frame) gets every core unless --threads says otherwise. It is the bottleneck: the other
    stages wait on it anyway, and a 32-frame 720p scan took 3.5-4.0 s with two scoring threads against 5.2 s with
    one on 2 cores (docs/scan.md "Speed")."""
    if requested is not None or not heavy_per_face:
        return stage_threads(requested)
    return usable_cores()


@contextmanager
def opencv_threads(count: int):
    """OpenCV's thread pool (cv2.dnn, resizes) at `count` for a block, restored after (it is process-wide)."""
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def torch_threads(count: int) -> None:
    """torch's intra-op threads for the calling thread (a thread pool's initializer: the setting is per thread).

    Nothing to do when torch was never imported (a scan whose every model runs on onnxruntime sets threads per session).
    """
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
