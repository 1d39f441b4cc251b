"""What a scan will read and write, checked before any slow work (no torch, no model).

A missing input or an output folder that is really a file must fail in a
fraction of a second, not after the model has loaded or the scan has run.
A folder scan never reads ddtool's own output: `--out` and every evidence
folder inside the scanned folder (recognised by its manifest or result.json)
are left out, so a re-scan does not score its own timeline.png.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ddtool.errors import ConfigError, InputError
from ddtool.media.suffixes import IMAGE_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES  # noqa: F401 (re-exported)
from ddtool.scan.manifest import MANIFEST

# The files an evidence folder's manifest lists first: result.json (one input) or summary.csv (a folder scan's top).
_EVIDENCE_MARKERS = {"result.json", "summary.csv"}


@dataclass
class Inputs:
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # folders left out, and why


def is_evidence_folder(folder: str | Path) -> bool:
    """A folder `ddtool scan --out` wrote: its manifest.sha256 lists result.json or summary.csv, or (a scan killed
    before its manifest) its result.json is a scan result."""
    folder = Path(folder)
    try:
        if (folder / MANIFEST).is_file():
            names = {line.partition("  ")[2].strip() for line in (folder / MANIFEST).read_text(encoding="utf-8", errors="replace").splitlines()}
            if names & _EVIDENCE_MARKERS:
                return True
        if (folder / "result.json").is_file() and (folder / "result.json").stat().st_size < 64 << 20:
            document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
            return isinstance(document, dict) and {"verdict", "input", "scan"} <= document.keys()
    except (OSError, ValueError):
        return False
    return False


def find_inputs(path: str | Path, exclude: tuple[str | Path, ...] = ()) -> Inputs:
    """The file itself, or every video/image under a folder (recursive, sorted), leaving out `exclude`
    (the scan's --out) and evidence folders."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; check the path")
    if not path.is_dir():
        return Inputs([path])
    excluded = {os.path.realpath(p) for p in exclude}
    if os.path.realpath(path) in excluded or is_evidence_folder(path):
        raise InputError(f"{path}: is an evidence folder written by `ddtool scan --out`, not media; scan the folder of the original files")
    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    failures: list[OSError] = []
    for here, folders, names in os.walk(path, onerror=failures.append):
        kept = []
        for name in folders:
            sub = Path(here) / name
            if os.path.realpath(sub) in excluded:
                skipped.append((sub, "the scan's --out folder"))
            elif is_evidence_folder(sub):
                skipped.append((sub, "an evidence folder written by ddtool scan"))
            else:
                kept.append(name)
        folders[:] = kept
        files += [Path(here) / n for n in names if Path(n).suffix.lower() in MEDIA_SUFFIXES and not n.startswith(".")]
    for failure in failures:
        if os.path.realpath(failure.filename or "") == os.path.realpath(path):
            raise InputError(f"{path}: cannot list the folder ({failure.strerror}); check its permissions") from None
        skipped.append((Path(failure.filename or "?"), f"cannot be listed ({failure.strerror})"))
    if not files:
        left_out = f"; left out: {len(skipped)} folder(s) ({skipped[0][1]}, ...)" if skipped else ""
        raise InputError(
            f"{path}: no videos or images inside (looked for {', '.join(sorted(MEDIA_SUFFIXES))}){left_out}; pass a media file or folder"
        )
    return Inputs(sorted(files), sorted(skipped))


def list_inputs(path: str | Path, exclude: tuple[str | Path, ...] = ()) -> list[Path]:
    """The file itself, or every video/image under a folder (recursive, sorted); see `find_inputs`."""
    return find_inputs(path, exclude).files


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the evidence folder now; a path that is (or lies under) a file is a one-line error."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is an existing file, not a folder; pass a folder path (it is created if missing)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"--out {out_dir}: a part of the path is a file, not a folder; pass a folder path") from None
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the folder ({exc.strerror}); check the path and its permissions") from None
    return out_dir
