"""The carbon-aware start in words: the stderr lines before the wait and the final report's
line, both drawn from the `schedule` record the run's log keeps (pure; logs are input, so every
field is checked)."""

import math
import time
from collections.abc import Mapping
from typing import Any

from carbonwrap.quantities import format_duration
from carbonwrap.render import units
from carbonwrap.render.text import shown
from carbonwrap.runlog.records import parse_utc

# What a provider's forecast is called, by the name before ":" in a point's source.
FORECAST_NAMES = {
    "ukgrid": "GB Carbon Intensity API forecast",
    "energidataservice": "Energi Data Service CO2EmisProg forecast",
    "electricitymaps": "Electricity Maps forecast",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # json reads 400 digits as an int
        return None
    return number if math.isfinite(number) else None


def _clock(epoch_s: float, since_s: float | None) -> str:
    """03:00 UTC; 03:00:04 UTC off the minute; the date in front on another day than since_s."""
    moment = time.gmtime(epoch_s)
    text = time.strftime("%H:%M:%S" if moment.tm_sec else "%H:%M", moment)
    if since_s is None or time.gmtime(since_s)[:3] != moment[:3]:
        text = time.strftime("%Y-%m-%d ", moment) + text
    return text + " UTC"


def _source(record: Mapping[str, Any]) -> str:
    source = str(record.get("source") or "")
    name = FORECAST_NAMES.get(source.partition(":")[0])
    return f"{name} ({source})" if name else source


def _saving(record: Mapping[str, Any]) -> str:
    pct = _number(record.get("saving_pct"))
    if pct is None:
        return ""
    shown = f"{pct:.0f}" if abs(pct) >= 1 else f"{pct:.1f}"
    return f" ({'−' if pct >= 0 else '+'}{shown.lstrip('-')} %)"


def _region(record: Mapping[str, Any]) -> str:
    region = record.get("region")
    return f" for region {region}" if isinstance(region, str) and region else ""


def _g(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{number:.0f} g/kWh"


def _cut(record: Mapping[str, Any], since_s: float | None) -> str:
    """Why later starts were not weighed, if the forecast ends too soon."""
    if record.get("cut") is not True:
        return ""
    end_s = parse_utc(record.get("forecast_until"))
    latest_s = parse_utc(record.get("latest_start"))
    if end_s is None or latest_s is None:
        return ""
    return (
        f"; the forecast ends {_clock(end_s, since_s)}, so no start after "
        f"{_clock(latest_s, since_s)} was considered"
    )


def announce(record: Mapping[str, Any]) -> list[str]:
    """One or two lines for stderr, before the wait; the provider's text in them escaped."""
    return [shown(line) for line in _announce(record)]


def _announce(record: Mapping[str, Any]) -> list[str]:
    decided_s = parse_utc(record.get("decided_at"))
    duration = format_duration(_number(record.get("expected_duration_s")) or 0.0)
    within = format_duration(_number(record.get("requested_within_s")) or 0.0)
    reason = record.get("reason")
    if reason:
        return [f"carbonwrap: no intensity forecast{_region(record)} ({reason}); starting now"]
    chosen_s = parse_utc(record.get("chosen_start"))
    if chosen_s is None or decided_s is None or chosen_s <= decided_s:
        return [
            f"carbonwrap: starting now: no start within {within} has a lower forecast than "
            f"{_g(record.get('now_g_per_kwh'))} over the {duration} run; "
            f"{_source(record)}{_cut(record, decided_s)}"
        ]
    return [
        f"carbonwrap: starting at {_clock(chosen_s, decided_s)} "
        f"(in {units.duration(chosen_s - decided_s)}): forecast "
        f"{_g(record.get('forecast_mean_g_per_kwh'))} over the {duration} run vs "
        f"{_g(record.get('now_g_per_kwh'))} if started now{_saving(record)}; {_source(record)}",
        "carbonwrap: waiting; Ctrl-C or SIGTERM cancels and the command does not run"
        + _cut(record, decided_s),
    ]


def report_line(record: Mapping[str, Any]) -> str:
    """The final report's "Start" line."""
    decided_s = parse_utc(record.get("decided_at"))
    duration = format_duration(_number(record.get("expected_duration_s")) or 0.0)
    within = format_duration(_number(record.get("requested_within_s")) or 0.0)
    reason = record.get("reason")
    if reason:
        return (
            f"at once, asked to start within {within}: no intensity forecast{_region(record)} "
            f"({reason})"
        )
    waited_s = _number(record.get("waited_s")) or 0.0
    chosen_s = parse_utc(record.get("chosen_start"))
    forecast = f"forecast {_g(record.get('forecast_mean_g_per_kwh'))} over the {duration} run"
    if chosen_s is None or decided_s is None or chosen_s <= decided_s:
        return f"at once, the lowest forecast within {within} ({forecast}); {_source(record)}"
    return (
        f"waited {units.duration(waited_s)} for {_clock(chosen_s, decided_s)} (within {within}):"
        f" {forecast} vs {_g(record.get('now_g_per_kwh'))} at once{_saving(record)}; "
        f"{_source(record)}"
    )
