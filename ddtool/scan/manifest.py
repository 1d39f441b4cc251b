"""manifest.sha256 and `ddtool verify`: is an evidence folder exactly what the scan wrote?

The manifest is in `sha256sum` format (`HASH  NAME` per line), so a doubter
can check it with coreutils (`sha256sum -c manifest.sha256`) as well as with
ddtool. A folder scan's top folder lists index.html, summary.csv and each
input folder's manifest, so one check covers the whole case. The input's
own sha256 lives in result.json (covered by the manifest); verify re-hashes
the input too when it can find it. A manifest proves the folder was not
changed after it was written; it cannot prove who wrote it (record the
manifest's own sha256, printed at the end of the scan, in the case notes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ddtool.errors import InputError
from ddtool.io import sha256_file, write_text_atomic

MANIFEST = "manifest.sha256"


def write_manifest(folder: str | Path, files: list[Path]) -> Path:
    """Write folder/manifest.sha256 for `files` (paths inside folder); returns its path."""
    folder = Path(folder)
    lines = []
    for path in sorted(files, key=lambda p: Path(p).relative_to(folder).as_posix()):
        name = Path(path).relative_to(folder).as_posix()
        if name != MANIFEST:
            lines.append(f"{sha256_file(path)}  {name}\n")
    target = folder / MANIFEST
    write_text_atomic(target, "".join(lines))
    return target


def read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise InputError(f"{path}: line {number} is not 'SHA256  NAME'; the manifest itself was changed")
        entries[name] = digest
    return entries


@dataclass
class Verification:
    checked: int = 0
    inputs_checked: int = 0
    folders: int = 0  # input evidence folders checked (a folder scan's top folder lists one per input)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def line(self, folder: Path) -> str:
        if self.intact:
            folders = f"{self.folders} input folder(s): " if self.folders else ""
            inputs = f" and {self.inputs_checked} input file(s)" if self.inputs_checked else ""
            extra = f" ({'; '.join(self.notes)})" if self.notes else ""
            return f"intact: {folder}: {folders}{self.checked} file(s){inputs} match the manifest{extra}"
        shown = "; ".join(self.problems[:6]) + (f"; +{len(self.problems) - 6} more" if len(self.problems) > 6 else "")
        return f"CHANGED: {folder}: {shown}"


def verify_evidence(folder: str | Path, check_input: bool = True, input_path: str | Path | None = None) -> Verification:
    """Re-hash every file the manifest lists (and, recursively, listed sub-manifests) and the input(s).

    Raises InputError when `folder` is not an evidence folder at all.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder; check the path (an evidence folder written by `ddtool scan --out`)")
    if not (folder / MANIFEST).is_file():
        raise InputError(f"{folder}: no {MANIFEST} here; pass an evidence folder written by `ddtool scan --out`")
    report = Verification()
    _verify_folder(folder, folder, report, check_input, input_path)
    entries = read_manifest(folder)
    if "summary.csv" in entries and (folder / "summary.csv").is_file():
        _verify_index(folder, entries, report)
    return report


def _verify_index(folder: Path, entries: dict[str, str], report: Verification) -> None:
    """A folder scan's summary.csv holds one row per input: each scanned row's folder must be listed, once."""
    import csv

    with open(folder / "summary.csv", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        rows = list(csv.DictReader(fh))
    listed = {Path(n).parent.as_posix() for n in entries if Path(n).name == MANIFEST and Path(n).parent != Path(".")}
    if rows and "folder" not in rows[0]:
        report.notes.append("summary.csv has no folder column (written by an older ddtool); input folders counted from the manifest")
        report.folders = len(listed)
        return
    folders = [r.get("folder") or "" for r in rows]
    report.folders = len([f for f in folders if f])
    seen: set[str] = set()
    for row, name in zip(rows, folders):
        if row.get("verdict") == "not scanned":
            report.problems.append(f"{row.get('path')} was never scanned (the scan was interrupted; rerun it with --resume)")
        elif not name:
            report.notes.append(f"{row.get('path')} has no evidence folder ({row.get('errors') or 'see summary.csv'})")
        elif name in seen:
            report.problems.append(f"summary.csv lists folder {name} for two inputs")
        elif name not in listed:
            report.problems.append(f"{name}/{MANIFEST} of input {row.get('path')} is not in the top manifest")
        seen.add(name)


def _verify_folder(root: Path, folder: Path, report: Verification, check_input: bool, input_path) -> None:
    label = folder.relative_to(root).as_posix()
    prefix = "" if label == "." else f"{label}/"
    entries = read_manifest(folder)
    for name, digest in entries.items():
        path = folder / name
        if not path.is_file():
            report.problems.append(f"{prefix}{name} is missing")
            continue
        report.checked += 1
        if sha256_file(path) != digest:
            report.problems.append(f"{prefix}{name} differs from its sha256 in the manifest")
        elif Path(name).name == MANIFEST and Path(name).parent != Path("."):
            _verify_folder(root, path.parent, report, check_input, input_path)
    listed = {Path(n).parts[0] for n in entries}
    for extra in sorted(folder.iterdir()):
        if extra.name != MANIFEST and extra.name not in listed and not extra.name.startswith("."):
            report.problems.append(f"{prefix}{extra.name} was added after the scan (not in the manifest)")
    if check_input and "result.json" in entries and (folder / "result.json").is_file():
        _verify_input(folder, prefix, report, input_path)


def _verify_input(folder: Path, prefix: str, report: Verification, input_path) -> None:
    try:
        item = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # its hash check above already reported a changed file
    facts = item.get("input") or {}
    expected = facts.get("sha256")
    if not expected:
        report.notes.append(f"{prefix}result.json records no input sha256")
        return
    candidates = [Path(input_path)] if input_path else [Path(p) for p in (facts.get("path"), facts.get("absolute_path")) if p]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        report.problems.append(f"{prefix}input not found at {facts.get('absolute_path') or facts.get('path')} (pass --input PATH, or --no-input to check the folder only)")
        return
    report.inputs_checked += 1
    if sha256_file(found) != expected:
        report.problems.append(f"input {found} differs from the sha256 recorded at scan time ({expected[:12]}...)")
