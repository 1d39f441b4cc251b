"""Deterministic shards: split a list of inputs into N parts that N jobs can work on without talking to each other.

    parse_shard("3/16") -> (3, 16)
    shard_of(key, 16)   -> 0..15, from a hash of the key alone
    select_shard(items, (3, 16), key=...) -> the items of shard 3, sorted by key

A key is something that names an input wherever the job runs: a dataset's
video id (`ddtool extract --shard`), an input's path relative to the scanned
folder (`ddtool scan DIR --shard`). Because an item's shard depends on its
key alone, an item keeps its shard when other files are added or removed,
and every job of a Slurm array (or GNU parallel) can list the inputs itself.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, TypeVar

from ddtool.errors import ConfigError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """"I/N" with 0 <= I < N (Slurm's SLURM_ARRAY_TASK_ID with --array=0-(N-1))."""
    try:
        index, count = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/8), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_of(key: str, count: int) -> int:
    """Stable hash of the key: the same shard on every machine and in every listing.

    A file name that is not valid UTF-8 (kept by Python as surrogates) hashes its raw bytes.
    """
    return int(hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:12], 16) % count


def select_shard(items: Iterable[T], shard: tuple[int, int] | None, key: Callable[[T], str]) -> list[T]:
    """The items of shard (I, N), sorted by key (all items, sorted, for None)."""
    items = sorted(items, key=key)
    if shard is None:
        return items
    index, count = shard
    return [item for item in items if shard_of(key(item), count) == index]
