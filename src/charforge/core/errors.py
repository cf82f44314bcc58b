"""Errors that front ends turn into one clear line (and exit status 2) instead of a traceback."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (a newline in a path must not split it)."""
    return str(exc).replace("\r", "\\r").replace("\n", "\\n")


class CharforgeError(Exception):
    """A user mistake or a bad input: the message says what happened and what to do."""


class MissingInput(CharforgeError):
    """A file the user named, or a run recorded, is not there (moved, renamed, deleted)."""


class ShapeError(CharforgeError, ValueError):
    """Arrays of the wrong shape, dtype or range were passed to the model."""


class CheckpointError(CharforgeError):
    """A checkpoint file that cannot be used: unreadable, corrupt, foreign or malformed."""
