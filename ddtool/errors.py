"""Errors a user can act on.

Library code raises these with a message that says what was wrong and what to
do; the CLI prints the message on one line and exits with the error's code,
never with a traceback.
"""


class DDToolError(Exception):
    """Base class: a problem with the user's input, data or environment."""

    exit_code = 3


class InputError(DDToolError):
    """A file or folder cannot be used: missing, unreadable, corrupt, wrong kind."""


class NoFaceError(InputError):
    """The input was readable but no face was found where one was needed."""


class LayoutError(DDToolError):
    """A dataset folder does not match the layout that was asked for or detected."""


class CheckpointError(DDToolError):
    """A weights file or model card is missing, corrupt, unsafe or does not match."""


class ConfigError(DDToolError):
    """An option or config file value is invalid."""
