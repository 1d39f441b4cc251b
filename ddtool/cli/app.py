"""The typer application, console output and the one place errors become exit codes.

Exit codes (documented in docs/architecture.md and docs/cli.md):
  0  success (for `scan`: every input judged real)
  1  `scan`: at least one input judged fake
  2  usage error (unknown option, bad value), as every click/typer program
  3  bad input, data, layout, config or checkpoint (one-line message)
  4  `scan`: inconclusive (no usable face in any input)
  5  unexpected internal error (one line; set DDTOOL_DEBUG=1 for the traceback)
  130 interrupted
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from ddtool import __version__
from ddtool.errors import DDToolError

EXIT_INCONCLUSIVE = 4
EXIT_INTERNAL = 5

app = typer.Typer(
    name="ddtool",
    help="Deepfake forensics: scan videos, extract faces, train and compare detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# stdout is reserved for results (e.g. `scan --json`); messages go to stderr.
console = Console(stderr=True)
out = Console()


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"ddtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Deepfake forensics: scan videos, extract faces, train and compare detectors."""


def comma_list(text: str | None) -> list[str] | None:
    """A comma-separated option as a list of its non-empty, stripped items; None stays None (the default applies)."""
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]


_INVOCATION: list[str] = []


def command_line() -> list[str]:
    """The command as the user typed it (argv), for provenance records."""
    return list(_INVOCATION) or ["ddtool", *sys.argv[1:]]


def error(message: str) -> None:
    """Print a one-line error to stderr."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map every failure to an exit code.

    typer handles usage errors itself (message + exit 2); everything the
    library raises is turned into one line here.
    """
    debug = bool(os.environ.get("DDTOOL_DEBUG"))
    _INVOCATION[:] = ["ddtool", *(sys.argv[1:] if argv is None else argv)]
    try:
        app(args=argv, prog_name="ddtool")
    except DDToolError as exc:
        if debug:
            raise
        error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(130)
    except Exception as exc:  # last resort: one line, never a traceback
        if debug:
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set DDTOOL_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)
