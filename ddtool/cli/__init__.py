"""The `ddtool` command line.

Thin by design: each command module parses options, calls one library
function and prints with rich. Command modules register themselves on `app`
when imported below; a command appears only once its module is listed here.
"""

from ddtool.cli.app import app, main  # noqa: F401

# Command modules (each adds its commands to `app` on import), one line each.
from ddtool.cli import models  # noqa: F401,E402
from ddtool.cli import train  # noqa: F401,E402
import ddtool.cli.eval  # noqa: F401,E402
import ddtool.cli.report  # noqa: F401,E402
import ddtool.cli.data  # noqa: F401,E402
from ddtool.cli import extract  # noqa: F401,E402
from ddtool.cli import features  # noqa: F401,E402
from ddtool.cli import explain, scan  # noqa: F401,E402
