"""NYISO real-time fuel mix: New York's generation by fuel category every 5 minutes, priced.

Files (no key): one CSV per US Eastern day at
https://mis.nyiso.com/public/csv/rtfuelmix/YYYYMMDDrtfuelmix.csv, kept as daily files for about
a week (older days only in monthly zips, which we do not read). Shape, as recorded in
electricitymaps-contrib@b354f28 electricitymap/contrib/parsers/tests/mocks/US_NY/
20250201rtfuelmix_csv.zip and read by its parsers/US_NY.py and gridstatus@9ddfaff
gridstatus/nyiso.py (`_handle_time`, `get_fuel_mix`):

    Time Stamp,Time Zone,Fuel Category,Gen MW
    02/01/2025 00:05:00,EST,Dual Fuel,4613.0

One row per fuel category per time. `Time Zone` (EST or EDT) says which offset the Eastern
wall-clock `Time Stamp` is in, so the autumn's repeated hour needs no guessing. A day's file runs
from 00:05 to the next day's 00:00: each mix is taken for the 5 minutes ending at its time stamp
(gridstatus calls the values instantaneous; the end convention is inferred from the file's day).
NYISO sometimes writes a second snapshot within a minute (electricitymaps-contrib's US_NY.py):
snapshots in the same minute are averaged.

Fuel categories -> factor keys: "Dual Fuel" units burn gas or oil; New York's dual-fuel fleet
burns almost only gas (electricitymaps-contrib's US_NY.py, from EIA's state generation data:
about 100 times more gas than oil), so it is priced as gas. "Other Fossil Fuels" is oil- and
kerosene-fired units (electricitymaps-contrib maps it to oil since 2020). "Other Renewables" is
mostly refuse, landfill gas and wood, with some utility solar: priced as biomass. "Hydro"
includes pumped storage (NYISO does not split it). Imports are not in the file: the value is
production-based. NYISO publishes no generation forecast here: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import collections
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
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.fuelmix import MixStep, priced_points
from carbonwrap.intensity.providers.nyiso_areas import AREAS, HISTORY_DAYS
from carbonwrap.intensity.providers.wallclock import US_EASTERN, local_date

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://mis.nyiso.com/public/csv/rtfuelmix"
STEP_S = 300.0
COLUMNS = ("Time Stamp", "Time Zone", "Fuel Category", "Gen MW")
OFFSET_S = {"EST": -5 * 3600.0, "EDT": -4 * 3600.0}
MAX_DAYS = int(HISTORY_DAYS) + 1  # the week of daily files and today's
FUEL_OF: dict[str, str] = {
    "Dual Fuel": "gas",
    "Natural Gas": "gas",
    "Nuclear": "nuclear",
    "Other Fossil Fuels": "oil",
    "Other Renewables": "biomass",
    "Wind": "wind",
    "Hydro": "hydro",
}

_TIMEOUTS = Timeouts()


class Nyiso(HttpProvider):
    """The `Provider` for the New York ISO ("NYIS")."""

    name = "nyiso"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "NYIS",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"NYISO area {area!r}: only 'NYIS' is served")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _day(self, session: aiohttp.ClientSession, day: dt.date) -> str | None:
        """A day's file; None where it is not published (404)."""
        try:
            return await get_text(
                session,
                f"{self.base}/{day:%Y%m%d}rtfuelmix.csv",
                timeouts=self._timeouts,
                retries=self._retries,
                sleep=self._sleep,
            )
        except HttpError as exc:
            if exc.status == 404:
                return None
            raise

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest mix in today's file (yesterday's just after midnight), priced: LATEST."""
        today = local_date(US_EASTERN, self._now())
        for day in (today, today - dt.timedelta(days=1)):
            text = await self._day(session, day)
            if text is not None:
                points = parse_day(text, LATEST, self.source)
                if points:
                    return points[-1]
        raise ProviderError(f"{self.source}: no fuel mix in today's or yesterday's file")

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """5-minute values overlapping [start_s, end_s) as MEASURED, from the daily files (the
        newest MAX_DAYS of a longer window; a day's file covers 00:00 to 24:00); a day not
        published is left out."""
        if end_s <= start_s:
            return []
        last = min(local_date(US_EASTERN, end_s - 1e-3), local_date(US_EASTERN, self._now()))
        first = max(local_date(US_EASTERN, start_s), last - dt.timedelta(days=MAX_DAYS - 1))
        points: list[IntensityPoint] = []
        day = first
        while day <= last:
            text = await self._day(session, day)
            if text is not None:
                points += parse_day(text, MEASURED, self.source)
            day += dt.timedelta(days=1)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """NYISO publishes no fuel-mix forecast."""
        return []


def parse_day(text: str, kind: str, source: str) -> list[IntensityPoint]:
    """A day's rtfuelmix CSV as priced 5-minute points, oldest first.

    A time counts where every fuel category the file reports has a number at it; a time whose
    known fuels cover too little is left out (raised if none is left). Raises ProviderError for
    a file without the four columns, an unknown time zone, or text where a number belongs."""
    return priced_points(day_steps(text, source), kind, source)


def day_steps(text: str, source: str) -> list[MixStep]:
    """The file's complete mixes {fuel key or NYISO's name: MW} per 5 minutes, oldest first."""
    table = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    names = [cell.strip() for cell in table[0]] if table else []
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise ProviderError(f"{source}: rtfuelmix file has no {', '.join(missing)} column")
    at = {c: names.index(c) for c in COLUMNS}
    # minute (epoch s) -> category -> readings in that minute
    readings: dict[float, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    categories: set[str] = set()
    for i, row in enumerate(table[1:]):
        cells = [cell.strip() for cell in row] + [""] * len(names)
        stamp, zone, category, mw = (cells[at[c]] for c in COLUMNS)
        categories.add(category)
        if mw == "":
            continue  # not reported: the time is incomplete
        minute_s = _epoch(stamp, zone, i, source) // 60 * 60
        try:
            readings[minute_s][category].append(float(mw))
        except ValueError:
            raise ProviderError(
                f"{source}: rtfuelmix row {i + 2} has Gen MW {mw!r}, expected a number"
            ) from None
    steps: list[MixStep] = []
    previous_s: float | None = None
    for end_s in sorted(readings):
        found = readings[end_s]
        start_s = end_s - STEP_S if previous_s is None else max(previous_s, end_s - STEP_S)
        previous_s = end_s
        if set(found) != categories:
            continue
        mix: dict[str, float] = collections.defaultdict(float)
        for category, values in found.items():
            mix[FUEL_OF.get(category, category)] += sum(values) / len(values)
        steps.append(MixStep(start_s, end_s, dict(mix)))
    return steps


def _epoch(stamp: str, zone: str, i: int, source: str) -> float:
    """A Time Stamp (Eastern wall clock, MM/DD/YYYY HH:MM[:SS]) in its Time Zone, as epoch s."""
    if zone not in OFFSET_S:
        raise ProviderError(f"{source}: rtfuelmix row {i + 2} has Time Zone {zone!r}")
    for form in ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"):
        try:
            wall = dt.datetime.strptime(stamp, form).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
        return wall.timestamp() - OFFSET_S[zone]
    raise ProviderError(
        f"{source}: rtfuelmix row {i + 2} has Time Stamp {stamp!r}, expected MM/DD/YYYY HH:MM:SS"
    )


if TYPE_CHECKING:

    def _is_a_provider(p: Nyiso) -> Provider:
        return p
