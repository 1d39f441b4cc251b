"""The `ddtool` command line.

Thin by design: each command module parses options, calls one library
function and prints with rich. Command modules register themselves on `app`
when imported below; a command appears only once its module is listed here.
"""

from ddtool.cli.app import app, main  # noqa: F401

# Command modules (each adds its commands to `app` on import); the import
# order is the order `ddtool --help` lists them: the analyst's job first.
from ddtool.cli import (  # noqa: E402,F401
    scan,
    index,
    verify,
    explain,
    extract,
    features,
    train,
    eval,
    report,
    data,
    models,
    offline,
    weights,
)
