"""Named face caches: `ddtool data add celebdf /data/cache/celebdf` once, then `--cross celebdf`.

Names live in `$DDTOOL_HOME/datasets.json` (default `~/.config/ddtool/`),
a JSON object {name: absolute cache path}, rewritten atomically.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ddtool.errors import ConfigError, InputError
from ddtool.io import write_json_atomic

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def config_home() -> Path:
    home = os.environ.get("DDTOOL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".config" / "ddtool"


def datasets_file() -> Path:
    return config_home() / "datasets.json"


def list_datasets() -> dict[str, str]:
    path = datasets_file()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix or delete it, then `ddtool data add` again") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"{path} must be a JSON object of name -> cache path; fix or delete it")
    return dict(sorted(data.items()))


def add_dataset(name: str, path: str | Path) -> Path:
    """Register `path` (a face cache with manifest.csv) under `name`; returns the stored absolute path."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"dataset name {name!r} must start with a letter or digit and use only letters, digits, _ . + -")
    cache = Path(path).expanduser().resolve()
    if not (cache / "manifest.csv").is_file():
        raise InputError(f"{cache} is not a face cache (no manifest.csv); create it with `ddtool extract` first")
    datasets = list_datasets()
    datasets[name] = str(cache)
    write_json_atomic(datasets_file(), dict(sorted(datasets.items())))
    return cache


def remove_dataset(name: str) -> None:
    datasets = list_datasets()
    if name not in datasets:
        raise ConfigError(f"no dataset named {name!r}; registered: {', '.join(datasets) or 'none'}")
    del datasets[name]
    write_json_atomic(datasets_file(), datasets)


def resolve_dataset(name_or_path: str) -> tuple[str, Path]:
    """(display name, cache path) for a registered name or a cache folder."""
    datasets = list_datasets()
    if name_or_path in datasets:
        cache = Path(datasets[name_or_path])
        if not (cache / "manifest.csv").is_file():
            raise InputError(f"dataset {name_or_path!r} points to {cache}, which has no manifest.csv any more; `ddtool data add` it again")
        return name_or_path, cache
    cache = Path(name_or_path).expanduser()
    if (cache / "manifest.csv").is_file():
        return cache.resolve().name, cache
    raise ConfigError(
        f"{name_or_path!r} is neither a registered dataset ({', '.join(datasets) or 'none registered'}) "
        "nor a face cache folder with manifest.csv; register one with `ddtool data add NAME PATH`"
    )
