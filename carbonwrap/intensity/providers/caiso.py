"""CAISO Today's Outlook: 5-minute CO2 of the California ISO's supply over its demand.

Files (no key; the ones caiso.com/todays-outlook/emissions draws from): today so far at
https://www.caiso.com/outlook/current/{co2,demand}.csv, past days at
.../outlook/history/YYYYMMDD/{co2,demand}.csv. Shapes, as read by public clients (gridstatus
gridstatus/caiso/caiso.py `_get_historical`; electricitymaps-contrib parsers/US_CA.py) and
checked against live files by others (a "gridcast" caiso_outlook module):

    Time,Biogas CO2,Biomass CO2,Natural Gas CO2,Coal CO2,Imports CO2,Geothermal CO2   (mtCO2/h)
    Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response        (MW)

`Time` is a Pacific wall-clock time with no date (the file's day), each row starting a
5-minute interval; rows not yet reached are blank; a trailing 00:00 row belongs to the next day;
on the spring-forward day 02:00-02:55 are blank, on the fall-back day the repeated hour is
given once. Columns drift over the years, so they are found by name.

Value: the sum of the CO2 columns (metric tonnes per hour, imports at CAISO's own estimate,
negative while CAISO exports) over `Current demand` (MW): 1 t/h per MW = 1000 g/kWh. Direct
emissions, not lifecycle. CAISO publishes no CO2 forecast: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import aiohttp

from carbonwrap.intensity.http import HttpError, Timeouts, get_text
from carbonwrap.intensity.points import (
    AVERAGE,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
    checked_value,
)
from carbonwrap.intensity.providers.caiso_areas import AREAS
from carbonwrap.intensity.providers.common import HttpProvider

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://www.caiso.com/outlook"
STEP_S = 300.0
DEMAND_COLUMN = "Current demand"
G_PER_KWH_PER_T_PER_H_PER_MW = 1000.0  # (1e6 g / h) / (1e3 kW)
MAX_DAYS = 31  # history() reads at most this many daily file pairs, the newest
_PST_S = -8 * 3600.0
_PDT_S = -7 * 3600.0

_TIMEOUTS = Timeouts()


class Caiso(HttpProvider):
    """The `Provider` for CAISO's balancing area ("CISO")."""

    name = "caiso"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "CISO",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"CAISO area {area!r}: only 'CISO' is served")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _day_files(
        self, session: aiohttp.ClientSession, folder: str, bust: bool
    ) -> tuple[str, str]:
        # CloudFront serves a cached copy of an unchanged URL for a while (gridstatus adds the
        # same cache buster): today's files get one, past days' files never change.
        params = {"_": str(int(self._now()))} if bust else None

        async def fetch(stem: str) -> str:
            return await get_text(
                session,
                f"{self.base}/{folder}/{stem}.csv",
                params=params,
                timeouts=self._timeouts,
                retries=self._retries,
                sleep=self._sleep,
            )

        co2, demand = await asyncio.gather(fetch("co2"), fetch("demand"))
        return co2, demand

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest 5 minutes of today's files: LATEST."""
        now_s = self._now()
        co2, demand = await self._day_files(session, "current", bust=True)
        day = pacific_date(now_s)
        points = parse_day(co2, demand, day, LATEST, self.source)
        if points and points[-1].start_s > now_s + STEP_S:
            # Just after midnight the "current" files can still be yesterday's.
            points = parse_day(co2, demand, day - dt.timedelta(days=1), LATEST, self.source)
        if not points:
            raise ProviderError(f"{self.source}: no CO2 and demand in today's files yet")
        return points[-1]

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """5-minute values overlapping [start_s, end_s) as MEASURED, from the daily files (today's
        from the current ones); a day not published yet is left out."""
        if end_s <= start_s:
            return []
        today = pacific_date(self._now())
        last = min(pacific_date(end_s - 1e-3), today)
        first = max(pacific_date(start_s), last - dt.timedelta(days=MAX_DAYS - 1))
        points: list[IntensityPoint] = []
        day = first
        while day <= last:
            folder = "current" if day == today else f"history/{day:%Y%m%d}"
            try:
                co2, demand = await self._day_files(session, folder, bust=day == today)
            except HttpError as exc:
                if exc.status != 404:
                    raise
            else:
                points += parse_day(co2, demand, day, MEASURED, self.source)
            day += dt.timedelta(days=1)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """CAISO publishes no CO2 forecast."""
        return []


def parse_day(
    co2_csv: str, demand_csv: str, day: dt.date, kind: str, source: str
) -> list[IntensityPoint]:
    """One day's co2.csv and demand.csv as 5-minute points, oldest first.

    A row counts where some CO2 column and the demand have numbers; the intensity is
    1000 × (sum of the CO2 columns, t/h) / demand (MW), at least 0 (CAISO credits exports at
    its import rate, which can take the sum below zero on export-heavy middays).
    Raises ProviderError for a file without its columns, text where a number belongs, or a
    value outside 0..5000 g/kWh.
    """
    co2_names, co2_rows = _table(co2_csv, "co2.csv", source)
    co2_columns = [c for c in co2_names if c.endswith("CO2")]
    if not co2_columns:
        raise ProviderError(f"{source}: co2.csv has no CO2 columns: {co2_names}")
    demand_names, demand_rows = _table(demand_csv, "demand.csv", source)
    if DEMAND_COLUMN not in demand_names:
        raise ProviderError(f"{source}: demand.csv has no {DEMAND_COLUMN!r} column")
    demand_mw = {
        start_s: mw
        for start_s, row in _timed(demand_rows, day, "demand.csv", source)
        if (mw := _number(row, DEMAND_COLUMN, "demand.csv", source)) is not None and mw > 0
    }
    points = []
    for start_s, row in _timed(co2_rows, day, "co2.csv", source):
        values = [_number(row, c, "co2.csv", source) for c in co2_columns]
        found = [v for v in values if v is not None]
        if not found or start_s not in demand_mw:
            continue  # an interval not reached yet, or a gap
        g_per_kwh = max(0.0, G_PER_KWH_PER_T_PER_H_PER_MW * sum(found) / demand_mw[start_s])
        value = checked_value(g_per_kwh, source, f"co2.csv {_clock(start_s)} over demand")
        if value is not None:
            points.append(IntensityPoint(start_s, start_s + STEP_S, value, kind, AVERAGE, source))
    return points


def _table(text: str, name: str, source: str) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV file's column names and its rows as {column: cell}, names and cells stripped."""
    table = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    names = [c.strip() for c in table[0]] if table else []
    if "Time" not in names:
        raise ProviderError(f"{source}: {name} has no Time column (not a CAISO outlook file?)")
    # strict=False: a row may end early where its last cells are blank
    rows = [dict(zip(names, (c.strip() for c in row), strict=False)) for row in table[1:]]
    return names, rows


def _timed(
    rows: list[dict[str, str]], day: dt.date, name: str, source: str
) -> list[tuple[float, dict[str, str]]]:
    """Data rows with their interval start, epoch s: the next day's trailing 00:00 and the
    spring-forward hour left out; a repeated fall-back hour on standard time."""
    out: list[tuple[float, dict[str, str]]] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        clock = row.get("Time", "")
        hour, _, minute = clock.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            raise ProviderError(f"{source}: {name} row {i + 1} has Time {clock!r}, expected HH:MM")
        if clock == "00:00" and i > 0:
            break  # the next day's midnight
        start_s = pacific_epoch(day, int(hour), int(minute), repeated=clock in seen)
        seen.add(clock)
        if start_s is not None:
            out.append((start_s, row))
    return out


def _number(row: dict[str, str], column: str, name: str, source: str) -> float | None:
    cell = row.get(column, "")
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        raise ProviderError(
            f"{source}: {name} at {row.get('Time')} has {column} {cell!r}, expected a number"
        ) from None


def _dst_bounds_utc_s(year: int) -> tuple[float, float]:
    """US daylight time (since 2007): from the second Sunday of March, 02:00 PST, to the first
    Sunday of November, 02:00 PDT; as epoch s."""
    march = dt.date(year, 3, 8)
    start = march + dt.timedelta(days=(6 - march.weekday()) % 7)
    november = dt.date(year, 11, 1)
    end = november + dt.timedelta(days=(6 - november.weekday()) % 7)
    utc = dt.timezone.utc
    start_s = dt.datetime(start.year, start.month, start.day, 10, tzinfo=utc).timestamp()
    end_s = dt.datetime(end.year, end.month, end.day, 9, tzinfo=utc).timestamp()
    return start_s, end_s


def pacific_offset_s(epoch_s: float) -> float:
    """US Pacific time's offset from UTC at `epoch_s`: -7 h in daylight time, else -8 h."""
    year = dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).year
    start_s, end_s = _dst_bounds_utc_s(year)
    return _PDT_S if start_s <= epoch_s < end_s else _PST_S


def pacific_date(epoch_s: float) -> dt.date:
    """The date in US Pacific time at `epoch_s`."""
    return dt.datetime.fromtimestamp(epoch_s + pacific_offset_s(epoch_s), dt.timezone.utc).date()


def pacific_epoch(day: dt.date, hour: int, minute: int, *, repeated: bool = False) -> float | None:
    """Epoch s of a Pacific wall-clock time on `day`; None in the hour skipped in spring. In the
    hour that repeats in autumn, the first pass (daylight time) unless `repeated`."""
    wall_s = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc)
    as_pdt = wall_s.timestamp() - _PDT_S
    as_pst = wall_s.timestamp() - _PST_S
    pdt_ok = pacific_offset_s(as_pdt) == _PDT_S
    pst_ok = pacific_offset_s(as_pst) == _PST_S
    if pdt_ok and pst_ok:  # the autumn repeat
        return as_pst if repeated else as_pdt
    if pdt_ok:
        return as_pdt
    if pst_ok:
        return as_pst
    return None  # the spring gap


def _clock(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


if TYPE_CHECKING:

    def _is_a_provider(p: Caiso) -> Provider:
        return p
