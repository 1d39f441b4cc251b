"""Which torch device a --device value means: one rule for train, eval, scan and explain."""

from __future__ import annotations

import torch

from ddtool.errors import ConfigError


def resolve_device(option: str) -> torch.device:
    """auto -> cuda when torch sees a GPU, else cpu; cpu, cuda, cuda:N and mps as given.

    A GPU asked for on a machine without one, or a word that is no device, is
    a one-line ConfigError (checked before any slow work).
    """
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
