"""EirGrid Smart Grid Dashboard: the CO2 intensity EirGrid (Ireland) and SONI (Northern Ireland)
publish for every 15 minutes.

Endpoint (no key): the JSON the dashboard at www.smartgriddashboard.com draws its charts from
since its 2025 rebuild; not a documented, versioned API.

    GET https://www.smartgriddashboard.com/api/chart/?region=ROI&chartType=co2&dateRange=day
        &dateFrom=04-Jun-2025&dateTo=05-Jun-2025&areas=co2intensity
    {"Rows": [{"EffectiveTime": "04-Jun-2025 00:15:00", "FieldName": "CO2_INTENSITY",
               "Region": "ROI", "Value": 128}, ...]}

Shape as read by public clients: electricitymaps-contrib@b354f28
electricitymap/contrib/parsers/SMARTGRIDDASHBOARD.py and its recorded mocks (the `Rows` envelope,
`EffectiveTime` "%d-%b-%Y %H:%M:%S" in Irish local time, future rows with a null `Value`, the
ROI/NI regions) and clients asking chartType=co2, areas=co2intensity and reading FieldName
CO2_INTENSITY in gCO2/kWh (found with find_string "smartgriddashboard.com/api/chart"). One of
them reports that a span of up to 31 days comes back in one answer (90 days came back empty)
and that CO2 values lag the clock by an hour or two.

`EffectiveTime` starts its quarter hour (a day runs 00:00 to 23:45). Local times are turned into
UTC with EU summer-time rules; in the October hour that repeats, a time seen a second time is
taken as GMT (how the dashboard writes that hour was not seen: inferred).

The dashboard also names a "co2intensityforecast" area, but no answer of it was seen (its field
name and horizon are unknown), so forecast() is empty rather than guessed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.http import Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
    checked_value,
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.eirgrid_areas import AREAS
from carbonwrap.intensity.providers.wallclock import IRELAND, local_date, wall_epoch

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://www.smartgriddashboard.com"
STEP_S = 900.0
FIELD = "CO2_INTENSITY"
MAX_DAYS = 31  # the widest span one request is reported to answer whole; history keeps the newest
# English month abbreviations, whatever the process's locale (strftime's %b follows LC_TIME).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIME = re.compile(r"(\d{2})-([A-Z][a-z]{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})")

_TIMEOUTS = Timeouts()


class EirGrid(HttpProvider):
    """The `Provider` for one Smart Grid Dashboard region ("ROI" or "NI")."""

    name = "eirgrid"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "ROI",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"Smart Grid Dashboard region {area!r}: use one of ROI, NI")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _rows(self, session: aiohttp.ClientSession, first: dt.date, last: dt.date) -> Any:
        query = {
            "region": self.area,
            "chartType": "co2",
            "dateRange": "day",
            "dateFrom": dashboard_date(first),
            "dateTo": dashboard_date(last),
            "areas": "co2intensity",
        }
        return await get_json(
            session,
            f"{self.base}/api/chart/",
            params=query,
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest published quarter hour of yesterday and today (Irish dates): LATEST."""
        now_s = self._now()
        today = local_date(IRELAND, now_s)
        doc = await self._rows(session, today - dt.timedelta(days=1), today)
        points = [p for p in parse_rows(doc, self.area, LATEST, self.source) if p.start_s <= now_s]
        if not points:
            raise ProviderError(f"{self.source}: no CO2 intensity since yesterday in the answer")
        return points[-1]

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Quarter hours overlapping [start_s, end_s) as MEASURED (the newest MAX_DAYS Irish days
        of a longer window); [] where none is published yet."""
        if end_s <= start_s:
            return []
        last = min(local_date(IRELAND, end_s - 1e-3), local_date(IRELAND, self._now()))
        first = max(local_date(IRELAND, start_s), last - dt.timedelta(days=MAX_DAYS - 1))
        if first > last:
            return []
        points = parse_rows(
            await self._rows(session, first, last), self.area, MEASURED, self.source
        )
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """No CO2 forecast answer was seen to parse (see the module docstring)."""
        return []


def dashboard_date(day: dt.date) -> str:
    """A date as the dashboard's query takes it: 04-Jun-2025."""
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"


def parse_rows(doc: Any, region: str, kind: str, source: str) -> list[IntensityPoint]:
    """The CO2_INTENSITY rows of an answer as 15-minute points, oldest first.

    Rows of other fields are skipped, a null Value is a gap (not published yet). Raises
    ProviderError for a wrong shape, a row of another region, a bad time, or a value that is not
    a number in 0..5000 g/kWh."""
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    rows = doc.get("Rows")
    if not isinstance(rows, list):
        raise ProviderError(f"{source}: answer has no 'Rows' list")
    found: dict[float, float] = {}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        what = f"Rows[{i}]"
        if not isinstance(row, Mapping):
            raise ProviderError(f"{source}: {what} is {type(row).__name__}, expected an object")
        if row.get("FieldName") != FIELD:
            continue
        if row.get("Region", region) != region:
            raise ProviderError(f"{source}: {what} is for region {row.get('Region')!r}")
        text = row.get("EffectiveTime")
        start_s = irish_epoch(text, repeated=text in seen, source=source, what=what)
        seen.add(str(text))
        value = checked_value(row.get("Value"), source, f"{what}.Value")
        if start_s is not None and value is not None:
            found[start_s] = value
    return [
        IntensityPoint(start_s, start_s + STEP_S, found[start_s], kind, AVERAGE, source)
        for start_s in sorted(found)
    ]


def irish_epoch(text: Any, *, repeated: bool, source: str, what: str) -> float | None:
    """An EffectiveTime ("04-Jun-2025 00:15:00", Irish local time) as epoch s; None in the hour
    skipped in March. ProviderError for anything else."""
    match = _TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None or match.group(2) not in MONTHS:
        raise ProviderError(
            f"{source}: {what}.EffectiveTime is {text!r}, expected DD-Mon-YYYY HH:MM:SS"
        )
    day_text, month, year, hour, minute, second = match.groups()
    try:
        day = dt.date(int(year), MONTHS.index(month) + 1, int(day_text))
        return wall_epoch(IRELAND, day, int(hour), int(minute), int(second), repeated=repeated)
    except ValueError:
        raise ProviderError(f"{source}: {what}.EffectiveTime {text!r} is not a time") from None


if TYPE_CHECKING:

    def _is_a_provider(p: EirGrid) -> Provider:
        return p
