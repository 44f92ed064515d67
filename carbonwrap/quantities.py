"""Amounts as people write them — durations (8h, 90m, 1h30m, 3600s, 2d) and budgets (500g,
2kg, 5kWh) — to numbers and back. Imported only when an option needs one (start-up)."""

import math
import re
from typing import Any, NamedTuple

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


_UNITS = {  # unit -> quantity, factor to grams or joules
    "g": ("co2e", 1.0),
    "kg": ("co2e", 1e3),
    "t": ("co2e", 1e6),
    "J": ("energy", 1.0),
    "kJ": ("energy", 1e3),
    "MJ": ("energy", 1e6),
    "Wh": ("energy", 3600.0),
    "kWh": ("energy", 3.6e6),
    "MWh": ("energy", 3.6e9),
}
# Any case where it is unambiguous: kwh, KWH, Kg; not mj / mwh (milli or mega?).
_FOLDED = {unit.lower(): unit for unit in _UNITS if unit[0] != "M"}
_AMOUNT = re.compile(
    r"\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*(.*?)\s*\Z", re.DOTALL
)
_CO2E = re.compile(r"\s*co2e?\Z", re.IGNORECASE)
UNITS_HELP = "CO2e: g, kg, t; energy: J, kJ, MJ, Wh, kWh, MWh"


class Budget(NamedTuple):
    """A limit: grams of CO2e (with PUE, as reported) or joules of attributed energy (before
    PUE, as the report's total)."""

    quantity: str  # "co2e" | "energy"
    limit: float  # g or J
    text: str  # normalised, parses to the same: "500 g", "5 kWh"

    @property
    def described(self) -> str:
        return f"{self.text} CO2e" if self.quantity == "co2e" else self.text


def parse_budget(value: Any) -> Budget:
    """ "500g", "2 kg", "1.5t", "500 gCO2e", "5kWh", "3.6 MJ" → a Budget; ValueError(why) for
    anything else (no unit, an unknown unit, zero or less)."""
    if not isinstance(value, str):
        raise ValueError('must be an amount with a unit, e.g. "500 g" or "5 kWh"')
    found = _AMOUNT.fullmatch(value)
    if found is None:
        raise ValueError("is not an amount with a unit (e.g. 500g, 2kg, 5kWh)")
    amount_text, unit = found.group(1), _CO2E.sub("", found.group(2))
    if not unit:
        raise ValueError(f"needs a unit ({UNITS_HELP})")
    unit = unit if unit in _UNITS else _FOLDED.get(unit.lower(), unit)
    if unit not in _UNITS:
        raise ValueError(f"has an unknown unit {unit[:20]!r} ({UNITS_HELP})")
    quantity, factor = _UNITS[unit]
    if quantity == "energy" and _CO2E.search(found.group(2)):
        raise ValueError(f"mixes energy ({unit}) with CO2e")
    amount = float(amount_text)
    if not amount * factor < float("inf"):
        raise ValueError("is too large")
    if not amount > 0:
        raise ValueError("must be more than 0")
    return Budget(quantity, amount * factor, f"{amount:.15g} {unit}")
