"""A scan into an evidence folder (`ddtool scan PATH --out DIR`): one folder per input, nothing lost.

- Each input gets its own folder (scan.naming: unique by construction), named in its result.json.
- Every per-input failure (unreadable, undecodable, a folder that cannot be written, even a bug) stays that
  input's error; the batch goes on.
- A folder scan's index (index.html, summary.csv, the top manifest.sha256) holds exactly one row per input and is
  written at the end whatever happened, also when the scan is interrupted (its rows then say which inputs were
  never reached).
- `resume`: an input whose folder is complete (its manifest verifies, the input still has the recorded sha256,
  same options and detectors) is kept, not scanned again; every other input is scanned; the index is rebuilt.
  Files are written atomically and the manifest last, so a kill at any point leaves folders that either verify or
  are re-done.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ddtool.errors import DDToolError
from ddtool.scan.index import index_row, pending_row, write_index
from ddtool.scan.inputs import Inputs, find_inputs
from ddtool.scan.manifest import MANIFEST, verify_evidence
from ddtool.scan.naming import EvidenceName, ascii_fallback, evidence_name
from ddtool.scan.outputs import write_outputs
from ddtool.scan.pipeline import ERROR, ScanOptions, ScanResult, as_panel, exit_code_for_verdicts, make_extractor, scan_file


@dataclass
class BatchResult:
    rows: list[dict[str, Any]]  # one index row per input, in input order
    verdicts: list[str]
    levels: list[str | None]  # each verdict's strength level
    kept: int = 0  # inputs whose complete evidence folder from an earlier run was kept (--resume)
    skipped_folders: list[tuple[Path, str]] = field(default_factory=list)  # folders not scanned (--out, evidence folders)

    @property
    def exit_code(self) -> int:
        return exit_code_for_verdicts(self.verdicts, self.levels)


# Called once per input: (the fresh ScanResult or None when kept, its result.json document, kept from an earlier run?)
OnResult = Callable[[ScanResult | None, dict[str, Any], bool], None]


def scan_to_folder(
    path: str | Path,
    out_dir: str | Path,
    options: ScanOptions,
    panel,
    session: dict[str, Any],
    report: bool = True,
    resume: bool = False,
    progress=None,
    on_result: OnResult | None = None,
    inputs: Inputs | None = None,
    shard: tuple[int, int] | None = None,
) -> BatchResult:
    """Scan every input under `path` into `out_dir` (see the module docstring); returns the rows and verdicts.

    `shard` (I, N): scan only this job's share of the folder's inputs and write its shard record instead of the
    index (scan.shards; `ddtool index OUT` merges the records once every shard is done). `inputs`, when given,
    are the inputs already listed (and, with `shard`, already this job's share).
    """
    from ddtool.scan.provenance import detector_facts

    path, out_dir = Path(path), Path(out_dir)
    if inputs is None:
        inputs = find_inputs(path, exclude=(out_dir,))
        if shard is not None:
            from ddtool.scan.shards import select_inputs

            inputs = Inputs(select_inputs(inputs.files, path, shard), inputs.skipped)
    root = path if path.is_dir() else None
    panel = as_panel(panel)
    extractor = make_extractor(options, panel)
    detectors = [detector_facts(m) for m in panel.members]
    names = {item: evidence_name(item, root) for item in inputs.files}
    outcome = BatchResult([], [], [], skipped_folders=list(inputs.skipped))
    fingerprint = _fingerprint(session, detectors)
    done = 0
    try:
        for item in inputs.files:
            name = names[item]
            kept = _complete_folder(out_dir / name.name, item, name, fingerprint) if resume else None
            if kept is not None:
                document, result = kept, None
                row = index_row(document, name.name, has_report=(out_dir / name.name / "report.html").is_file())
                outcome.kept += 1
                if progress is not None:
                    progress.end_file(None)
            else:
                result = _scan_one(item, options, panel, extractor, progress, session, detectors)
                folder = _write_evidence(result, out_dir, name, item, root, panel.members[0], report)
                document = result.to_dict()
                row = index_row(document, folder, has_report=report and folder is not None)
                result.evidence = []  # crops and thumbnails are in the report now; keep only the row
            outcome.rows.append(row)
            outcome.verdicts.append(document.get("verdict") or ERROR)
            outcome.levels.append((document.get("strength") or {}).get("level"))
            done += 1
            if on_result is not None:
                on_result(result, document, kept is not None)
    finally:
        if root is not None:
            pending = [pending_row(str(item)) for item in inputs.files[done:]]
            if shard is not None:  # the other shards may still be writing: the index waits for `ddtool index OUT`
                from ddtool.scan.shards import write_record

                write_record(out_dir, shard, path, outcome.rows + pending, session, fingerprint, complete=not pending)
            else:
                write_index(out_dir, outcome.rows + pending, session, 130 if pending else outcome.exit_code, str(path), complete=not pending)
    return outcome


def _scan_one(item: Path, options: ScanOptions, panel, extractor, progress, session, detectors) -> ScanResult:
    """scan_file, with anything unexpected turned into this input's error so the batch goes on."""
    try:
        return scan_file(item, options, panel, extractor, progress, session=session, detectors=detectors)
    except Exception as exc:  # a bug met on one input must not cost the others their scan
        if os.environ.get("DDTOOL_DEBUG"):
            raise
        result = ScanResult(str(item), "video", ERROR, None, options.threshold, options.aggregate, model=panel.provenance())
        result.session, result.detectors = session, detectors
        result.errors.append(f"internal error while scanning: {type(exc).__name__}: {exc} (set DDTOOL_DEBUG=1 for the traceback)")
        return result


def _write_evidence(result: ScanResult, out_dir: Path, name: EvidenceName, item: Path, root: Path | None, detector, report: bool) -> str | None:
    """Write the input's folder; returns its name, or None when no folder could be written (the result then says why)."""
    folder = out_dir / name.name
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in (errno.EILSEQ, errno.EINVAL, errno.ENAMETOOLONG):
                raise
            name = ascii_fallback(item, root)  # a filesystem that refuses the unicode name gets the ASCII one
            folder = out_dir / name.name
            folder.mkdir(parents=True, exist_ok=True)
        result.evidence_folder = name.to_dict()
        write_outputs(result, folder, detector, report=report)
        return name.name
    except (OSError, DDToolError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if result.verdict != ERROR:
            result.errors.append(f"scanned (verdict {result.verdict}), but its evidence folder {folder} could not be written ({reason}); "
                                 "free space or fix permissions and run the same command with --resume")
        else:
            result.errors.append(f"its evidence folder {folder} could not be written ({reason})")
        result.verdict, result.score = ERROR, None
        result.frames, result.tracks, result.segments, result.evidence = [], [], [], []
        try:  # the error entry alone is small: it may still fit where the evidence did not
            write_outputs(result, folder, None, report=report)
            return name.name
        except (OSError, DDToolError):
            _remove_partial(folder)
            return None


def _remove_partial(folder: Path) -> None:
    """Take away what a failed write left, so the evidence folder holds only listed folders (best effort)."""
    from ddtool.scan.outputs import EVIDENCE_FILES

    try:
        for name in EVIDENCE_FILES:
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass  # left behind: `ddtool verify` reports it as not in the manifest


def _fingerprint(session: dict[str, Any], detectors: list[dict[str, Any]]) -> dict[str, Any]:
    """What must match for an earlier folder to stand for this scan: the options, every detector's weights, the case fields."""
    return {
        "options": json.loads(json.dumps(session.get("options") or {}, default=str)),
        "weights": [d.get("sha256") for d in detectors],
        "case": session.get("case") or {},
    }


def _complete_folder(folder: Path, item: Path, name: EvidenceName, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The folder's result.json document when the folder is complete, verifies, and was made from this input with
    these options and detectors; else None (the input is scanned again). Failed inputs are always tried again."""
    if not (folder / MANIFEST).is_file():
        return None
    try:
        document = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("verdict") in (None, ERROR):
            return None
        if (document.get("evidence_folder") or {}).get("relative_path") != name.relative_path:
            return None
        earlier = {"options": (document.get("scan") or {}).get("options"), "weights": [d.get("sha256") for d in document.get("detectors") or []],
                   "case": document.get("case") or {}}
        if earlier != fingerprint:
            return None
        return document if verify_evidence(folder, check_input=True, input_path=item).intact else None
    except (OSError, ValueError, DDToolError):
        return None
