"""Where ddtool's shipped files live on this machine: the one rule for the weights folder.

Low in the import order so that face detection (media) and the detector
weights (ddtool.weights) find the same folder without one importing the other.

Where the folder is: `$DDTOOL_WEIGHTS` when set; otherwise `weights/` of the
source checkout ddtool runs from (an editable install or `python -m ddtool`
in the repository); otherwise `<sys.prefix>/share/ddtool/weights` (where a
packager may put data files).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ddtool.errors import ConfigError

WEIGHTS_ENV = "DDTOOL_WEIGHTS"


def source_checkout_weights() -> Path:
    # ddtool/locations.py -> <checkout>/weights; only meaningful when ddtool runs from a checkout
    return Path(__file__).resolve().parents[1] / "weights"


def shipped_weights_dir() -> Path:
    """The folder shipped weights are read from (it may not exist: then nothing ships)."""
    override = os.environ.get(WEIGHTS_ENV)
    if override:
        folder = Path(override).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"{WEIGHTS_ENV}={override} is not a folder; point it at a folder of NAME.safetensors + NAME.json files or unset it")
        return folder
    checkout = source_checkout_weights()
    if checkout.is_dir():
        return checkout
    installed = Path(sys.prefix) / "share" / "ddtool" / "weights"
    return installed if installed.is_dir() else checkout
