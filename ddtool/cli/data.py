"""`ddtool data add|list|remove`: names for face caches used by `eval` and `report --cross`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from ddtool.cli.app import app, console, out
from ddtool.evaluate.registry_data import add_dataset, datasets_file, list_datasets, remove_dataset

data_app = typer.Typer(help="Name face caches so `eval --data` and `report --cross` can use the name.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("add")
def data_add(
    name: str = typer.Argument(..., help="Short name, e.g. celebdf."),
    path: Path = typer.Argument(..., help="Face cache folder (holds manifest.csv)."),
) -> None:
    """Register a face cache under NAME."""
    cache = add_dataset(name, path)
    console.print(f"registered [bold]{name}[/] -> {cache} (in {datasets_file()})")


@data_app.command("list")
def data_list() -> None:
    """Show the registered face caches."""
    datasets = list_datasets()
    if not datasets:
        console.print(f"no datasets registered yet ({datasets_file()}); add one with `ddtool data add NAME PATH`")
        return
    table = Table("name", "cache")
    for name, cache in datasets.items():
        table.add_row(name, cache)
    out.print(table)


@data_app.command("remove")
def data_remove(name: str = typer.Argument(..., help="Registered name to forget (the cache is not touched).")) -> None:
    """Forget a registered name."""
    remove_dataset(name)
    console.print(f"removed {name}")
