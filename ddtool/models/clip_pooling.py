"""How a CLIP probe pools a layer's tokens into features (numpy: scan's fast path and the torch model share it).

- `cls_mean`: the class token and the mean patch token (Ojha et al.'s linear
  probe reads the class token; the patch mean adds the spatial average).
- `face_regions`: the class token, the mean over the inner face and the mean
  over the ring outside the face box. ddtool crops faces with a 0.3 margin
  (the detector's box is 1/1.6 of the crop), so on the 14x14 patch grid the box
  is the central 9x9 patches (rows and columns 3-11) and the inner face the
  7x7 from 4 to 10 (half a patch below and right of the centre, as in the
  features the rule chose). A face swap changes the inside and keeps the
  outside: pooled apart, the probe can compare them (chosen by the
  cross-source rule, docs/models-clip.md).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from ddtool.errors import ConfigError

POOLINGS = {"cls_mean": 2, "face_regions": 3}  # pooling -> tokens per layer
DEFAULT_POOLING = "face_regions"


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown CLIP probe pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    return pooling


def feature_dim(pooling: str, width: int, n_layers: int) -> int:
    return POOLINGS[check_pooling(pooling)] * width * n_layers


@lru_cache(maxsize=4)  # one grid size in practice; called per face and layer on scan's path
def face_regions(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Patch indices (0-based, row-major over side x side) of the inner face and of the ring outside the box."""
    if side < 4:
        raise ConfigError(f"face_regions pooling needs a patch grid of at least 4x4 (input of 64 px or more), not {side}x{side}")
    grid = np.arange(side * side).reshape(side, side)
    at = lambda k: round(side * k / 14)  # noqa: E731  (the 14x14 grid of a 224 px input, scaled)
    inner = grid[at(4) : at(11), at(4) : at(11)].ravel()
    ring = np.setdiff1d(grid.ravel(), grid[at(3) : at(12), at(3) : at(12)].ravel())
    return inner, ring


def pool_np(tokens: np.ndarray, pooling: str) -> np.ndarray:
    """(N, 1 + side*side, C) tokens of one layer -> (N, k*C) pooled features."""
    cls, patches = tokens[:, 0], tokens[:, 1:]
    if pooling == "cls_mean":
        return np.concatenate([cls, patches.mean(axis=1)], axis=1)
    inner, ring = face_regions(int(round(np.sqrt(patches.shape[1]))))
    return np.concatenate([cls, patches[:, inner].mean(axis=1), patches[:, ring].mean(axis=1)], axis=1)


def probe_features_np(states: dict[int, np.ndarray], layers: Sequence[int], pooling: str = DEFAULT_POOLING) -> np.ndarray:
    """Per probe layer in order, the pooled tokens, concatenated."""
    check_pooling(pooling)
    return np.concatenate([pool_np(states[i], pooling) for i in layers], axis=1)
