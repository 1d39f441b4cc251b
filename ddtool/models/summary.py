"""Size and speed of registered models: what `ddtool models` and `ddtool profile` report.

Parameters and MACs are counted on the "meta" device (shapes only, no
arithmetic, no memory), so even VGG19 at 256 x 256 takes well under a second;
a model whose forward cannot run on meta tensors falls back to a real CPU
pass. Throughput is measured on real tensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from ddtool.device import resolve_device
from ddtool.errors import ConfigError
from ddtool.models.complexity import count_macs, count_params, measure_throughput
from ddtool.models.registry import ModelSpec, create_model, get_spec, list_models


@dataclass
class ModelSummary:
    name: str
    family: str
    input_kind: str
    input_shape: tuple[int, ...] | None  # one example, without the batch dimension
    params: int | None
    macs: int | None  # at input_shape, batch 1
    paper_params: int | None
    paper_macs: int | None
    description: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProfileResult:
    name: str
    device: str
    batch: int
    input_shape: tuple[int, ...]
    amp: bool
    params: int
    macs: int | None
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def example_shape(spec: ModelSpec, size: int | None = None) -> tuple[int, ...] | None:
    """Input shape of one example (no batch dim) for `spec`, or None for non-tensor models.

    Image models take (3, S, S) with S = `size` or the spec's input size;
    "volume" and "sequence" models take `spec.input_size` as it is.
    """
    if spec.input_kind == "features":
        return None
    if spec.input_kind == "image":
        if size is not None:
            return (3, size, size)
        s = spec.input_size
        return (3, s, s) if isinstance(s, int) else (3, *s[-2:])
    if size is not None:
        raise ConfigError(f"--size applies to image models only; {spec.name} takes {spec.input_kind} input {spec.input_size}")
    s = spec.input_size
    return tuple(s) if isinstance(s, (tuple, list)) else (s,)


def _build_counted(name: str, shape: tuple[int, ...] | None, with_macs: bool) -> tuple[int | None, int | None]:
    try:
        with torch.device("meta"):
            model = create_model(name)
        example_device = "meta"
    except Exception:
        model, example_device = create_model(name), "cpu"
    if not isinstance(model, nn.Module):
        return None, None
    params = count_params(model)
    if not with_macs or shape is None:
        return params, None
    try:
        return params, count_macs(model, torch.randn(1, *shape, device=example_device))
    except Exception:
        if example_device == "cpu":
            raise
    # Some forward passes (data-dependent Python control flow) need real values.
    model = create_model(name)
    return params, count_macs(model, torch.randn(1, *shape))


def summarize(name: str, with_macs: bool = True, size: int | None = None) -> ModelSummary:
    spec = get_spec(name)
    shape = example_shape(spec, size)
    params, macs = _build_counted(name, shape, with_macs)
    return ModelSummary(
        name=spec.name,
        family=spec.family,
        input_kind=spec.input_kind,
        input_shape=shape,
        params=params,
        macs=macs,
        paper_params=spec.paper_params,
        paper_macs=spec.paper_macs if size is None else None,
        description=spec.description,
    )


def summarize_all(with_macs: bool = True, names: list[str] | None = None) -> list[ModelSummary]:
    return [summarize(n, with_macs) for n in (names or list_models())]


def profile(
    name: str,
    batch: int = 1,
    device: str = "cpu",
    size: int | None = None,
    amp: bool = False,
    warmup: int = 2,
    runs: int = 5,
) -> ProfileResult:
    """Parameters, MACs per example and measured examples/s (median of `runs` after `warmup`)."""
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    device = str(resolve_device(device))
    if amp and not device.startswith("cuda"):
        raise ConfigError("--amp needs --device cuda (mixed precision is only measured on GPUs)")
    spec = get_spec(name)
    shape = example_shape(spec, size)
    if shape is None:
        raise ConfigError(f"{name} is a {spec.input_kind} model with no forward pass to profile; pick a neural model")
    summary = summarize(name, with_macs=True, size=size)
    model = create_model(name)
    example = torch.randn(batch, *shape)
    speed = measure_throughput(model, example, warmup=warmup, runs=runs, device=device, amp=amp)
    return ProfileResult(
        name=name,
        device=device,
        batch=batch,
        input_shape=shape,
        amp=amp,
        params=summary.params,
        macs=summary.macs,
        images_per_s=speed,
    )
