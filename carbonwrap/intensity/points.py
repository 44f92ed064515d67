"""Intensity values with their validity window, kind and signal: what every provider returns."""

import datetime as dt
import math
from typing import Any, NamedTuple

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


class ProviderError(Exception):
    """A provider could not give a value: `reason` is one line for the log, without secrets."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


MAX_G_PER_KWH = 5000.0  # no grid emits more: a larger number means wrong units


def checked_value(value: Any, source: str, field: str) -> float | None:
    """A provider's intensity field as g/kWh: None stays None (a gap); anything but a finite
    number in 0..MAX_G_PER_KWH is a ProviderError naming the field."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
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
    try:
        # Python 3.10's fromisoformat does not take "Z".
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise ProviderError(f"{source}: {field} {text!r} is not an ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()
