"""The typer application, console output and the one place errors become exit codes.

Exit codes (documented in docs/architecture.md and docs/scan.md):
  0  success (for `scan`: no strong evidence of manipulation; never a finding of authenticity)
  1  `scan`: at least one input judged manipulated (a fake verdict at high confidence)
  2  usage error (unknown option, bad value), as every click/typer program
  3  bad input, data, layout, config or checkpoint (one-line message)
  4  `scan`: inconclusive (no usable face in any input)
  5  unexpected internal error (one line; set DDTOOL_DEBUG=1 for the traceback)
  6/7 `scan`: some inputs failed (7: and another was judged manipulated)
  8  `scan`: none manipulated, at least one needs review (low-confidence fake, or uncertain)
  130 interrupted
"""

from __future__ import annotations

import os
import re
import sys

import typer
import typer.core
from rich.console import Console, ConsoleDimensions

from ddtool import __version__
from ddtool.errors import DDToolError

EXIT_INCONCLUSIVE = 4
EXIT_INTERNAL = 5
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="ddtool",
    help="Deepfake forensics: scan videos, extract faces, train and compare detectors.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Width of result tables written to a pipe or file: rich's 80-column default
# would cut columns that a reader of the file (or `less`) wants whole.
NON_TERMINAL_WIDTH = 400


class ResultConsole(Console):
    """stdout: terminal width on a terminal, full width in a pipe or file (unless COLUMNS says otherwise)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is None and not self.is_terminal and not os.environ.get("COLUMNS"):
            return ConsoleDimensions(max(size.width, NON_TERMINAL_WIDTH), size.height)
        return size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


# stdout is reserved for results (e.g. `scan --json`, tables); messages go to stderr.
console = Console(stderr=True)
out = ResultConsole()


def plain_type(label: str | None) -> str | None:
    """A value's type in words, not Python's: <list[Path]> -> <path>, <str> -> <text> (a repeatable option says so in its help)."""
    if label is None:
        return None
    label = re.sub(r"list\[(\w+)\]", lambda m: m.group(1).lower(), label)
    return re.sub(r"\bstr\b", "text", label)


def _flag_type_hidden(original):
    # typer >= 0.2x shows a `<bool>` type column on plain on/off flags, which take
    # no value; hiding it also leaves the help text room for whole defaults.
    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else plain_type(original(self, ctx))

    return display_type_rich


def _usage_name(self) -> str:
    # An argument in the usage line as every CLI writes it: PATH (required), [PATH] (optional), PATH... (several);
    # typer's own is {path}.
    name = (self.metavar or self.name or "").upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


if hasattr(typer.core.TyperOption, "display_type_rich"):
    typer.core.TyperOption.display_type_rich = _flag_type_hidden(typer.core.TyperOption.display_type_rich)
if hasattr(typer.core.TyperArgument, "display_type_rich"):
    typer.core.TyperArgument.display_type_rich = _flag_type_hidden(typer.core.TyperArgument.display_type_rich)
if hasattr(typer.core.TyperArgument, "_usage_display_name"):
    typer.core.TyperArgument._usage_display_name = _usage_name


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


def usage_line(exc: Exception) -> str:
    """A click/typer usage error as one line: what was wrong, the allowed range, where help is."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message.replace("Invalid value for ", "invalid value for ")
    message = message.replace("Input should be greater than or equal to", "must be at least")
    message = message.replace("Input should be less than or equal to", "must be at most")
    ctx = getattr(exc, "ctx", None)
    where = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
    return f"{message}{where}"


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's time limit, `kill`) stops a command as Ctrl-C does: a folder scan still writes its index or
    shard record, and exits 130 "interrupted", instead of dying mid-file."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():  # only the main thread may set a handler
        signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app and map every failure to an exit code.

    Usage errors (unknown option, value out of range) become one line and
    exit 2, as click's own code; everything the library raises becomes one
    line with its error's code.
    """
    # click's base error, found through a public name (newer typer vendors click)
    click_exception = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
    debug = bool(os.environ.get("DDTOOL_DEBUG"))
    _INVOCATION[:] = ["ddtool", *(sys.argv[1:] if argv is None else argv)]
    _stop_on_sigterm()
    try:
        code = app(args=argv, prog_name="ddtool", standalone_mode=False)
        if code == EXIT_INTERRUPTED:  # typer turns Ctrl-C into a silent exit 130: say so, as below
            error("interrupted")
        sys.exit(code if isinstance(code, int) else 0)
    except click_exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(exc.exit_code)  # the help was printed already
        error(usage_line(exc))
        sys.exit(exc.exit_code)
    except typer.Abort:
        error("aborted")
        sys.exit(1)
    except DDToolError as exc:
        if debug:
            raise
        error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # last resort: one line, never a traceback
        if debug:
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set DDTOOL_DEBUG=1 for the traceback)")
        sys.exit(EXIT_INTERNAL)
