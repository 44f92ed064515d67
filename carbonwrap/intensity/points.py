"""Intensity values with their validity window, kind and signal: what every provider returns."""

from __future__ import annotations

from carbonwrap.errors import one_line
from carbonwrap.lite import Lock, NamedTuple, isfinite

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from typing import Any

MEASURED = "measured"  # published after the fact (history): the value to keep
LATEST = "latest"  # the provider's current value; may be provisional or estimated
FORECAST = "forecast"  # a prediction for a future window
STATIC = "static"  # a yearly average from the embedded table, or a --intensity value

AVERAGE = "average"  # average (attributional) intensity: what kWh -> CO2e accounting uses
MARGINAL = "marginal"  # marginal emissions rate (WattTime MOER): never mixed silently


class IntensityPoint(NamedTuple):
    """One intensity value for a window of wall-clock time. Units: epoch s (UTC), gCO2e/kWh."""

    start_s: float  # inclusive
    end_s: float  # exclusive
    intensity_g_per_kwh: float
    kind: str  # MEASURED | LATEST | FORECAST | STATIC
    signal: str  # AVERAGE | MARGINAL
    source: str  # provider and area, e.g. "electricitymaps:DK-DK1", "ukgrid:national"


# A reason may hold a provider's own text (a field it sent, its error message): it reaches the
# log, the reports and stderr, so it is cut to this many characters, on one line.
MAX_REASON_CHARS = 200
REDACTED = "<redacted>"
_MIN_SECRET_CHARS = 4  # shorter values would blank ordinary words out of every reason
_PIECE_CHARS = 8  # this many characters of a secret in a row are redacted too (a cut secret)
_secrets: tuple[str, ...] = ()  # replaced whole under the lock: readers need no lock
_pieces: frozenset[str] = frozenset()
_secrets_lock = Lock()


def keep_secret(*values: str) -> None:
    """Credentials sent to a provider (header values, passwords, secret query values): from now
    on no reason shows them, however the provider echoes them back (a mirror reflecting the
    request). Percent-encoded and escaped forms count too."""
    from urllib.parse import quote  # off the run's start-up path: only a request calls this

    global _secrets, _pieces
    forms = {
        form
        for value in values
        for form in (value, quote(value, safe=""), repr(value)[1:-1])
        if len(form) >= _MIN_SECRET_CHARS
    }
    if forms <= set(_secrets):
        return
    with _secrets_lock:
        known = sorted(forms | set(_secrets), key=len, reverse=True)  # "user:pw" before "pw"
        _pieces = frozenset(
            s[i : i + _PIECE_CHARS] for s in known for i in range(len(s) - _PIECE_CHARS + 1)
        )
        _secrets = tuple(known)


def redact(text: str) -> str:
    """`text` with every kept secret, and every run of _PIECE_CHARS or more characters of one
    (what is left of a secret cut short), replaced by REDACTED."""
    secrets, pieces = _secrets, _pieces
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if not pieces:
        return text
    hidden = [False] * len(text)
    for i in range(len(text) - _PIECE_CHARS + 1):
        if text[i : i + _PIECE_CHARS] in pieces:
            hidden[i : i + _PIECE_CHARS] = [True] * _PIECE_CHARS
    if not any(hidden):
        return text
    out: list[str] = []
    for i, char in enumerate(text):
        if not hidden[i]:
            out.append(char)
        elif i == 0 or not hidden[i - 1]:
            out.append(REDACTED)
    return "".join(out)


def reason_text(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """`text` as a reason may show it: secrets redacted, then unprintable characters escaped (a
    newline would start a second line, an escape sequence would reach the terminal) and cut to
    `limit`. The cut comes last, so it never leaves a piece of a secret behind."""
    return one_line(redact(text[: 4 * limit]), limit)


class ProviderError(Exception):
    """A provider could not give a value: `reason` is one line for the log, without secrets.

    The one place where a provider's text becomes a reason: whatever a provider put into it is
    cut to MAX_REASON_CHARS, on one line, without the credentials sent (`keep_secret`)."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        reason = reason_text(reason)
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def provider_failure(exc: Exception) -> ProviderError:
    """Any exception from asking a provider as a ProviderError: its own, or, for anything else
    (a parser meeting an answer it did not expect: a number no float holds, a wrong shape; a
    library's own error), one naming the exception's type and text, cut and redacted."""
    if isinstance(exc, ProviderError):
        return exc
    try:
        text = str(exc)
    except Exception:  # e.g. a KeyError holding an int too long to print
        text = "?"
    return ProviderError(f"unreadable answer ({type(exc).__name__}: {text})")


MAX_G_PER_KWH = 5000.0  # no grid emits more: a larger number means wrong units


def checked_value(value: Any, source: str, field: str) -> float | None:
    """A provider's intensity field as g/kWh: None stays None (a gap); anything but a finite
    number in 0..MAX_G_PER_KWH is a ProviderError naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
        raise ProviderError(f"{source}: {field} is {value!r}, expected a number")
    if not 0 <= value <= MAX_G_PER_KWH:
        raise ProviderError(
            f"{source}: {field} {value:g} g/kWh is outside 0..{MAX_G_PER_KWH:g} (wrong units?)"
        )
    return float(value)


def checked_time_s(text: Any, source: str, field: str) -> float:
    """A provider's ISO 8601 time field as epoch seconds; no offset means UTC (what the APIs
    document); anything else is a ProviderError naming the field."""
    if not isinstance(text, str):
        raise ProviderError(f"{source}: {field} is {text!r}, expected an ISO time")
    import datetime as dt  # providers' answers only: not at the run's start-up

    try:
        # Python 3.10's fromisoformat does not take "Z".
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ProviderError(f"{source}: {field} {text!r} is not an ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()
