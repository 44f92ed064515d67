"""Durations as people write them (8h, 90m, 1h30m, 3600s, 2d, 1.5h) -> seconds, and back."""

import math
import re

_UNITS_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# Units in descending order, each at most once: "1h30m", "2d 4h", "90m", "3600s".
_DURATION_RE = re.compile(
    "".join(rf"(?:(?P<{u}>{_NUMBER})\s*{u}\s*)?" for u in _UNITS_S), re.IGNORECASE
)
EXAMPLES = "e.g. 8h, 90m, 1h30m, 3600s, 2d"


def parse_duration_s(value: object, low_s: float = 0.0, high_s: float = math.inf) -> float:
    """Seconds of `value`: a string of number+unit parts (d, h, m, s, largest first), or the
    number 0 (no unit needed: zero is zero in any unit). A bare non-zero number is refused
    rather than guessed: `--start-within 8` could mean seconds or hours. ValueError(why)."""
    if isinstance(value, bool):
        raise ValueError(f"is not a duration ({EXAMPLES})")
    if isinstance(value, (int, float)):
        if value == 0:
            return 0.0
        raise ValueError(f"needs a unit ({EXAMPLES})")
    if not isinstance(value, str):
        raise ValueError(f"is not a duration ({EXAMPLES})")
    text = value.strip()
    if re.fullmatch(_NUMBER, text):
        if float(text) == 0:
            return _within(0.0, low_s, high_s)
        raise ValueError(f"needs a unit ({EXAMPLES})")
    match = _DURATION_RE.fullmatch(text)
    if not text or match is None or not any(match.groupdict().values()):
        raise ValueError(f"is not a duration ({EXAMPLES})")
    seconds = sum(float(n) * _UNITS_S[u] for u, n in match.groupdict().items() if n is not None)
    if not math.isfinite(seconds):
        raise ValueError(f"is not a duration ({EXAMPLES})")
    return _within(seconds, low_s, high_s)


def _within(seconds: float, low_s: float, high_s: float) -> float:
    if seconds < low_s:
        raise ValueError(f"must be at least {format_duration(low_s)}")
    if seconds > high_s:
        raise ValueError(f"must be at most {format_duration(high_s)}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling in the same units: 28800 -> 8h, 5400 -> 1h30m, 0 -> 0s."""
    if seconds <= 0 or not math.isfinite(seconds):
        return "0s"
    parts = []
    rest = round(seconds, 3)
    for unit, size in _UNITS_S.items():
        # Whole days, hours and minutes; seconds keep their fraction.
        count = rest if unit == "s" else float(math.floor(rest / size + 1e-9))
        if count > 0:
            parts.append(f"{count:g}{unit}")
            rest = round(rest - count * size, 3)
    return "".join(parts) or "0s"
