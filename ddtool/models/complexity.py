"""Model size and cost: parameters, MACs and measured throughput."""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass on `example` (FLOPs / 2).

    torch's FlopCounterMode counts matmul/conv FLOPs as 2 x MACs, which is what
    the papers report as "FLOPs (GMac)".
    """
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(example)
    model.train(was_training)
    return counter.get_total_flops() // 2


@torch.no_grad()
def measure_throughput(
    model: nn.Module,
    example: torch.Tensor,
    warmup: int = 2,
    runs: int = 5,
    device: str = "cpu",
    amp: bool = False,
) -> float:
    """Items per second of forward passes on `example` (median over `runs`)."""
    model = model.to(device).eval()
    example = example.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if amp and device.startswith("cuda") else _nullcontext()
    times = []
    with autocast:
        for i in range(warmup + runs):
            sync()
            start = time.perf_counter()
            model(example)
            sync()
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return example.shape[0] / statistics.median(times)


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
