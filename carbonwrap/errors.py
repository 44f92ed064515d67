"""Exit codes and the one error type a user can cause."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit statuses of carbonwrap itself; the child's own status passes through unchanged.

    A child killed by signal N gives 128 + N, as in a POSIX shell.
    """

    OK = 0
    BUDGET_STOPPED = 124  # --on-exceed stop stopped the command (its own status is logged)
    USAGE = 125  # carbonwrap's own error: bad option, bad value, unwritable log directory
    NOT_EXECUTABLE = 126  # the command exists but cannot be executed
    NOT_FOUND = 127  # the command was not found


def one_line(text: str, limit: int = 60) -> str:
    """User text as a one-line error may show it: unprintable characters escaped (a newline
    would start a second line, a control sequence would reach the terminal), cut to `limit`."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CarbonwrapError(Exception):
    """An error the user can fix: printed as one line, exits with `code`."""

    def __init__(self, message: str, code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
