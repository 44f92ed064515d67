"""Grid operators' local wall-clock times as epoch s: US and EU daylight-time rules, no tzdata.

Providers whose files are named by a local date, or whose rows carry a local time without an
offset, convert here. The rules are fixed in law and need no time-zone database (which not every
machine carbonwrap runs on has): US daylight time since 2007 runs from the second Sunday of March,
02:00 standard time, to the first Sunday of November, 02:00 daylight time (15 U.S.C. 260a); EU
summer time, Ireland's included, from the last Sunday of March to the last Sunday of October,
01:00 UTC both (Directive 2000/84/EC).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

_UTC = dt.timezone.utc
US_RULE = "us"
EU_RULE = "eu"


class Zone(NamedTuple):
    """A zone's offsets from UTC (s) and its daylight-time rule."""

    name: str
    standard_s: float
    daylight_s: float
    rule: str  # US_RULE | EU_RULE


US_EASTERN = Zone("US Eastern", -5 * 3600.0, -4 * 3600.0, US_RULE)
IRELAND = Zone("Irish", 0.0, 3600.0, EU_RULE)  # GMT in winter, IST (UTC+1) in summer


def _sunday_on_or_after(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(6 - day.weekday()) % 7)


def _last_sunday(year: int, month: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def daylight_bounds_s(zone: Zone, year: int) -> tuple[float, float]:
    """[start, end) of daylight time in `year` in `zone`, epoch s."""
    if zone.rule == EU_RULE:
        start, end = _last_sunday(year, 3), _last_sunday(year, 10)
        start_utc = dt.datetime(start.year, start.month, start.day, 1, tzinfo=_UTC)
        end_utc = dt.datetime(end.year, end.month, end.day, 1, tzinfo=_UTC)
        return start_utc.timestamp(), end_utc.timestamp()
    start = _sunday_on_or_after(dt.date(year, 3, 8))  # the second Sunday of March
    end = _sunday_on_or_after(dt.date(year, 11, 1))
    two_am = dt.datetime(start.year, start.month, start.day, 2, tzinfo=_UTC).timestamp()
    two_am_end = dt.datetime(end.year, end.month, end.day, 2, tzinfo=_UTC).timestamp()
    return two_am - zone.standard_s, two_am_end - zone.daylight_s


def offset_s(zone: Zone, epoch_s: float) -> float:
    """The zone's offset from UTC at `epoch_s`."""
    year = dt.datetime.fromtimestamp(epoch_s, _UTC).year
    start_s, end_s = daylight_bounds_s(zone, year)
    return zone.daylight_s if start_s <= epoch_s < end_s else zone.standard_s


def local_date(zone: Zone, epoch_s: float) -> dt.date:
    """The calendar date in `zone` at `epoch_s`."""
    return dt.datetime.fromtimestamp(epoch_s + offset_s(zone, epoch_s), _UTC).date()


def local_midnight_s(zone: Zone, day: dt.date) -> float:
    """Epoch s of 00:00 on `day` in `zone` (no rule here moves the clocks at midnight)."""
    midnight = wall_epoch(zone, day, 0, 0)
    assert midnight is not None
    return midnight


def wall_epoch(
    zone: Zone,
    day: dt.date,
    hour: int,
    minute: int,
    second: int = 0,
    *,
    repeated: bool = False,
) -> float | None:
    """Epoch s of a wall-clock time on `day` in `zone`; None in the hour skipped in spring. In the
    hour that repeats in autumn, the first pass (daylight time) unless `repeated`."""
    wall_s = dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=_UTC)
    as_daylight = wall_s.timestamp() - zone.daylight_s
    as_standard = wall_s.timestamp() - zone.standard_s
    daylight_ok = offset_s(zone, as_daylight) == zone.daylight_s
    standard_ok = offset_s(zone, as_standard) == zone.standard_s
    if daylight_ok and standard_ok:  # the autumn repeat
        return as_standard if repeated else as_daylight
    if daylight_ok:
        return as_daylight
    if standard_ok:
        return as_standard
    return None  # the spring gap
