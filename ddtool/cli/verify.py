"""`ddtool verify EVIDENCE_DIR`: is the evidence folder (and the input) exactly what the scan wrote?"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ddtool.cli.app import app, console


@app.command()
def verify(
    folder: Path = typer.Argument(..., help="An evidence folder written by `ddtool scan --out` (one input's folder or a folder scan's top folder)."),
    input_path: Optional[Path] = typer.Option(None, "--input", help="Where the scanned file is now, if it moved (one input's folder only)."),
    check_input: bool = typer.Option(True, "--input-check/--no-input", help="Also re-hash the scanned input file(s)."),
) -> None:
    """Re-hash every file listed in manifest.sha256 and the scanned input; one line: intact or what changed.

    Exit codes: 0 intact, 1 something changed, is missing or was added, 3 not an evidence folder.
    """
    from ddtool.scan.manifest import verify_evidence

    result = verify_evidence(folder, check_input=check_input, input_path=input_path)
    console.print(result.line(folder), highlight=False, soft_wrap=True, style=None if result.intact else "bold red")
    raise typer.Exit(0 if result.intact else 1)
