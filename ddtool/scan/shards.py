"""A folder scan spread over N jobs (`ddtool scan DIR --out EV --shard I/N`), and the one index over all of them.

Each job lists the folder itself and scans only its share: the inputs whose
path relative to DIR hashes to I (data.shards: the same split on every
machine and in every listing, so no job needs to know another). All jobs
write into the same EV: every input's evidence folder has a name of its own
(scan.naming), so no two jobs touch the same file. Instead of the index, a
job writes its shard record, EV/.shards/shard-I-of-N.json (atomically, at
the end, also when interrupted): its index rows and the scan's facts. When
every job is done, `ddtool index EV` (`merge_shards`) checks that all N
records are there and come from one scan (same folder, options, detectors
and case fields) and writes index.html, summary.csv and the top
manifest.sha256 over all inputs, in the order one unsharded scan lists them:
the same rows, summary and verdicts (tests/test_scan_shards.py).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ddtool.data.shards import select_shard
from ddtool.errors import ConfigError, InputError
from ddtool.io import write_json_atomic

SHARDS_FOLDER = ".shards"  # hidden: `ddtool verify` checks what the manifest lists and ignores dot files
SCHEMA = "ddtool.scan-shard/1"
_RECORD = re.compile(r"^shard-(\d+)-of-(\d+)\.json$")


def relative_key(item: Path, root: Path) -> str:
    """An input's name in every job's listing: its path relative to the scanned folder, with forward slashes."""
    return item.relative_to(root).as_posix()


def select_inputs(files: list[Path], root: Path, shard: tuple[int, int]) -> list[Path]:
    """This job's share of a folder's inputs, in the folder's order."""
    if not root.is_dir():
        raise ConfigError(f"--shard splits the inputs of a folder; {root} is a file: scan it without --shard")
    chosen = set(select_shard(files, shard, key=lambda item: relative_key(item, root)))
    return [item for item in files if item in chosen]


def record_path(out_dir: Path, shard: tuple[int, int]) -> Path:
    return Path(out_dir) / SHARDS_FOLDER / f"shard-{shard[0]}-of-{shard[1]}.json"


def write_record(out_dir: Path, shard: tuple[int, int], root: Path, rows: list[dict[str, Any]], session: dict[str, Any],
                 fingerprint: dict[str, Any], complete: bool) -> Path:
    """This job's rows and the facts a merge checks; replaces the job's earlier record (a resumed job writes it again)."""
    path = record_path(out_dir, shard)
    write_json_atomic(path, {
        "schema": SCHEMA,
        "shard": list(shard),
        "root": str(root),
        "root_absolute": os.path.realpath(root),
        "complete": complete,
        "fingerprint": fingerprint,
        "session": session,
        "keys": [relative_key(Path(row["path"]), root) for row in rows],
        "rows": rows,
    })
    return path


@dataclass
class Merged:
    rows: int
    shards: int
    exit_code: int
    complete: bool
    manifest: Path


def merge_shards(out_dir: str | Path) -> Merged:
    """index.html, summary.csv and the top manifest.sha256 of EV over every shard record (see the module docstring)."""
    from ddtool.scan.index import write_index
    from ddtool.scan.verdict import exit_code_for_verdicts

    out_dir = Path(out_dir)
    records = _read_records(out_dir)
    count = records[0]["shard"][1]
    first = records[0]
    for record in records[1:]:
        name = f"shard {record['shard'][0]}/{count}"
        if record["root_absolute"] != first["root_absolute"]:
            raise InputError(f"{out_dir}: {name} scanned {record['root_absolute']}, shard {first['shard'][0]}/{count} scanned "
                             f"{first['root_absolute']}; merge the shards of one folder only")
        if record["fingerprint"] != first["fingerprint"]:
            raise InputError(f"{out_dir}: {name} ran with other options, detectors or case fields than shard {first['shard'][0]}/{count}; "
                             "rerun it with the same command (its --shard aside) and --resume")
    keyed = [(PurePosixPath(key).parts, row) for record in records for key, row in zip(record["keys"], record["rows"])]
    keyed.sort(key=lambda item: item[0])  # the order of one unsharded scan: sorted paths under the same folder
    rows = [row for _, row in keyed]
    complete = all(record["complete"] for record in records)
    exit_code = exit_code_for_verdicts([r["verdict"] for r in rows], [r["confidence"] or None for r in rows]) if complete else 130
    session = {**first["session"], "command": f"{first['session'].get('command')} (one of {count} shards, merged by `ddtool index`)"}
    files = write_index(out_dir, rows, session, exit_code, first["root"], complete=complete)
    return Merged(len(rows), count, exit_code, complete, files[-1])


def _read_records(out_dir: Path) -> list[dict[str, Any]]:
    folder = out_dir / SHARDS_FOLDER
    if not out_dir.is_dir():
        raise InputError(f"{out_dir}: no such folder; pass the --out folder of a `ddtool scan DIR --shard I/N` run")
    found = sorted((int(m.group(2)), int(m.group(1)), p) for p in (folder.iterdir() if folder.is_dir() else []) if (m := _RECORD.match(p.name)))
    if not found:
        raise InputError(f"{out_dir}: no shard records in {folder}; only a scan run with --shard I/N --out {out_dir} leaves them")
    counts = sorted({count for count, _, _ in found})
    if len(counts) > 1:
        raise InputError(f"{folder}: records of splits into {' and '.join(map(str, counts))} shards; remove the records of the split "
                         "you no longer use (and its evidence folders if they are of other inputs), then merge again")
    count = counts[0]
    present = {index for _, index, _ in found}
    missing = [i for i in range(count) if i not in present]
    if missing:
        shown = ", ".join(f"{i}/{count}" for i in missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise InputError(f"{out_dir}: shard(s) {shown} wrote no record yet (not run, or killed before the end); "
                         "run each with the same command and --resume, then merge again")
    records = []
    for _, index, path in found:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable shard record ({exc}); rerun shard {index}/{count} with --resume") from None
        if not isinstance(record, dict) or record.get("schema") != SCHEMA or record.get("shard") != [index, count]:
            raise InputError(f"{path}: not a shard record of this ddtool ({SCHEMA}); rerun shard {index}/{count} with --resume")
        records.append(record)
    return records
