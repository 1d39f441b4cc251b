"""`ddtool index EV`: the one index over the shards of a folder scan (`ddtool scan DIR --out EV --shard I/N`)."""

from __future__ import annotations

from pathlib import Path

import typer

from ddtool.cli.app import app, console


@app.command()
def index(
    out_dir: Path = typer.Argument(..., help="The --out folder every shard of `ddtool scan DIR --out EV --shard I/N` wrote into."),
) -> None:
    """Write index.html, summary.csv and the top manifest.sha256 over every shard of a folder scan.

    Checks that all N shards left their record (EV/.shards/) and come from one scan (same folder, options,
    detectors, case fields); the rows come in the order one unsharded scan gives them. Exits with the code
    the whole scan would have (docs/scan.md "Headline and exit codes"; 130 when a shard was interrupted).
    """
    from ddtool.cli.scan import print_manifest_hash
    from ddtool.scan.shards import merge_shards

    merged = merge_shards(out_dir)
    state = "" if merged.complete else " (INCOMPLETE: a shard was interrupted; rerun it with --resume, then index again)"
    console.print(f"index of {merged.rows} input(s) from {merged.shards} shard(s){state}: {out_dir / 'index.html'}, {out_dir / 'summary.csv'}",
                  highlight=False, soft_wrap=True, markup=False)
    print_manifest_hash(out_dir)
    raise typer.Exit(merged.exit_code)
