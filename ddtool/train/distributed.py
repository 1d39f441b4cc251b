"""torchrun set-up for the training loop: which rank this process is, which device it trains on, seeding.

Under torchrun (WORLD_SIZE > 1) `train` runs DDP: one process per device,
each rank a stride of the shared per-epoch sample; rank 0 validates and writes.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from ddtool.device import resolve_device


@dataclass
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_option: str) -> Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_option != "cpu" and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return Distributed(rank, local_rank, world_size)


def pick_device(option: str, dist_info: Distributed) -> torch.device:
    """The --device value as a torch device; under DDP each rank takes its own GPU."""
    device = resolve_device(option)
    if device.type == "cuda" and dist_info.enabled:
        return torch.device("cuda", dist_info.local_rank)
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)

