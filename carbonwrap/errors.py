"""Exit codes, the one error type a user can cause, and text from others made safe to show."""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    import re


class ExitCode:
    """Exit statuses of carbonwrap itself; the child's own status passes through unchanged.

    A child killed by signal N gives 128 + N, as in a POSIX shell. Plain ints (an IntEnum
    would import enum on every run's start-up).
    """

    OK = 0
    BUDGET_STOPPED = 124  # --on-exceed stop stopped the command (its own status is logged)
    USAGE = 125  # carbonwrap's own error: bad option, bad value, unwritable log directory
    NOT_EXECUTABLE = 126  # the command exists but cannot be executed
    NOT_FOUND = 127  # the command was not found


# What a terminal must never be handed from others' text: C0 controls (ESC starts CSI and OSC
# sequences, CR and BS overwrite), DEL, C1 controls (U+009B is a CSI, U+009D an OSC on its own),
# lone surrogates (bytes of argv that were not UTF-8; no UTF-8 stream can carry them) and the
# bidirectional overrides and isolates that make text read other than it is (CVE-2021-42574).
_UNSAFE = "[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]"
_unsafe: re.Pattern[str] | None = None  # compiled on first need: ~4 ms, off the run's start-up


def visible(ch: str) -> str:
    """One character as an escape a person can read: \\x1b, \\n, \\x85, \\u202e. A byte that was
    not UTF-8, which Python decodes as a lone surrogate U+DC80-U+DCFF (argv, file names), shows
    as that byte: \\xff."""
    if "\udc80" <= ch <= "\udcff":
        return f"\\x{ord(ch) - 0xDC00:02x}"
    return ch.encode("unicode_escape").decode("ascii")


def shown(text: str, keep: str = "") -> str:
    """`text` with every character a terminal would act on (above) replaced by its visible
    escape, except those in `keep`; other text, any script or emoji, is returned as it is."""
    global _unsafe
    if text.isprintable():  # every character above is one isprintable refuses (Cc, Cs, Cf)
        return text  # nearly all text, "µg" and "·" too: no search, no `re` at start-up
    if _unsafe is None:
        import re

        _unsafe = re.compile(_UNSAFE)
    if keep:
        return _unsafe.sub(lambda m: m[0] if m[0] in keep else visible(m[0]), text)
    return _unsafe.sub(lambda m: visible(m[0]), text)


# What shlex.quote leaves unquoted: ASCII letters and digits and these (its `[^\w@%+=:,./-]`
# with re.ASCII). Here so the final report quotes the command without importing shlex and re.
_SHELL_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-")


def shell_quote(word: str) -> str:
    """shlex.quote: the word as a POSIX shell reads it back as one word."""
    if not word:
        return "''"
    if _SHELL_SAFE.issuperset(word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


def one_line(text: str, limit: int = 60) -> str:
    """User text as a one-line error may show it: unprintable characters escaped (a newline
    would start a second line, a control sequence would reach the terminal), cut to `limit`."""
    text = "".join(c if c.isprintable() else visible(c) for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class CarbonwrapError(Exception):
    """An error the user can fix: printed as one line, exits with `code`."""

    def __init__(self, message: str, code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
