"""edgefer's own errors. A leaf.

`EdgeferError` (a ValueError, so older `except ValueError` callers still work) is bad input that edgefer
recognised: the CLI prints its message as one line and exits 2 (or the error's `exit_code`). Anything else
that escapes a command is a bug and keeps its traceback.
"""

from __future__ import annotations


class EdgeferError(ValueError):
    """Bad input, said in one line that names the file, row or option and what was expected."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class OptionError(EdgeferError):
    """An option (or config field) outside its declared range or choices."""
