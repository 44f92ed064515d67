"""MISO real-time fuel mix: the Midcontinent ISO's generation by fuel every 5 minutes, priced.

Endpoints (no key), public-api.misoenergy.org since December 2025, when MISO retired the older
api.misoenergy.org MISORTWDDataBroker `getfuelmix` service (gridstatus@3d172bb "Update MISO Real
Time URLs"): /api/FuelMix (the newest interval), /api/FuelMix/Today and /api/FuelMix/Yesterday
(yesterday 00:00 through now, as a client checked live). Shape, as read by
gridstatus@9ddfaff gridstatus/miso.py (`get_fuel_mix`, `_parse_fuel_mix`) and quoted by clients'
tests (find_string "public-api.misoenergy.org/api/FuelMix"):

    {"RefId": "10-Sep-2026 - Interval 10:25 EST", "TotalMW": "90140",
     "Fuel": {"Type": [{"INTERVALEST": "2026-09-10 10:25:00 AM", "CATEGORY": "Coal",
                        "ACT": "30866", "FUEL_CATEGORY": "Coal  (30,866 MW)"}, ...]}}

`INTERVALEST` starts a 5-minute interval (gridstatus: Interval Start, + 5 minutes) on Eastern
Standard Time all year, UTC-5 (MISO writes "EST" in summer too; gridstatus localises to "EST").
`ACT` is MW, as text. A client saw yesterday's intervals in /Yesterday with only some categories
filled: an interval counts only where every category the answer reports, and each of the five
that every answer has had (CORE), has a value.

Categories -> factor keys: Coal, Natural Gas, Nuclear, Wind, Solar as named; Battery Storage
discharge as storage; "Other" is, in MISO's words as electricitymaps-contrib's parsers/US_MISO.py
quotes them, hydro, pumped storage, diesel, demand response, external asynchronous resources and
solid waste, garbage and wood pulp burners: priced as unspecified thermal ("other"). Imports are
not generation in MISO: left out (production-based). MISO's wind and solar forecasts are not a
mix: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
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
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.fuelmix import MixStep, priced_points
from carbonwrap.intensity.providers.miso_areas import AREAS

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://public-api.misoenergy.org/api/FuelMix"
STEP_S = 300.0
EST_S = -5 * 3600.0
# MISO's categories -> our fuel keys; None: not generation in MISO, never counted. Names not
# listed count as output of an unknown fuel.
FUEL_OF: dict[str, str | None] = {
    "Coal": "coal",
    "Natural Gas": "gas",
    "Nuclear": "nuclear",
    "Wind": "wind",
    "Solar": "solar",
    "Battery Storage": "storage",
    "Other": "other",
    "Imports": None,
}
# Categories every answer has had (electricitymaps-contrib's mapping since 2018, gridstatus's
# columns): an interval without one of them is incomplete, whatever else the answer holds.
CORE = frozenset({"Coal", "Natural Gas", "Nuclear", "Wind", "Solar"})
_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2}) (\d{1,2}):(\d{2}):(\d{2}) ([AP]M)")

_TIMEOUTS = Timeouts()


class Miso(HttpProvider):
    """The `Provider` for the Midcontinent ISO ("MISO")."""

    name = "miso"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "MISO",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"MISO area {area!r}: only 'MISO' is served")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _get(self, session: aiohttp.ClientSession, path: str) -> Any:
        return await get_json(
            session,
            f"{self.base}{path}",
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest complete interval of /FuelMix, priced: LATEST."""
        points = parse_fuel_mix(await self._get(session, ""), LATEST, self.source)
        if not points:
            raise ProviderError(f"{self.source}: no complete interval in the answer")
        return points[-1]

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """5-minute values overlapping [start_s, end_s) as MEASURED: from /Today where the window
        starts today (EST), else /Yesterday; nothing older is published."""
        if end_s <= start_s:
            return []
        # EST has no daylight time: days start at 05:00 UTC all year.
        today_s = (self._now() + EST_S) // 86400 * 86400 - EST_S
        if end_s <= today_s - 86400:
            return []  # before yesterday: not published here
        path = "/Today" if start_s >= today_s else "/Yesterday"
        points = parse_fuel_mix(await self._get(session, path), MEASURED, self.source)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """MISO publishes no fuel-mix forecast."""
        return []


def parse_fuel_mix(doc: Any, kind: str, source: str) -> list[IntensityPoint]:
    """A FuelMix answer as priced 5-minute points, oldest first. ProviderError for a wrong shape,
    a bad time or text where a number belongs (see `fuel_steps`)."""
    return priced_points(fuel_steps(doc, source), kind, source)


def fuel_steps(doc: Any, source: str) -> list[MixStep]:
    """The complete intervals of a FuelMix answer as {fuel key or MISO's name: MW}, oldest first:
    those where every category the answer reports, and every one of CORE, has a value."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("Fuel"), Mapping):
        raise ProviderError(f"{source}: answer has no 'Fuel' object")
    rows = doc["Fuel"].get("Type")
    if not isinstance(rows, list):
        raise ProviderError(f"{source}: answer has no 'Fuel.Type' list")
    by_start: dict[float, dict[str, float]] = collections.defaultdict(dict)
    categories: set[str] = set(CORE)
    for i, row in enumerate(rows):
        what = f"Fuel.Type[{i}]"
        if not isinstance(row, Mapping) or not isinstance(row.get("CATEGORY"), str):
            raise ProviderError(f"{source}: {what} has no CATEGORY")
        category: str = row["CATEGORY"].strip()
        if category in FUEL_OF and FUEL_OF[category] is None:
            continue
        categories.add(category)
        mw = _mw(row.get("ACT"), source, f"{what}.ACT")
        if mw is not None:
            by_start[est_epoch(row.get("INTERVALEST"), source, f"{what}.INTERVALEST")][category] = (
                mw
            )
    steps: list[MixStep] = []
    for start_s in sorted(by_start):
        found = by_start[start_s]
        if set(found) != categories:
            continue  # a category not filled for this interval
        mix: dict[str, float] = collections.defaultdict(float)
        for category, mw in found.items():
            mix[FUEL_OF.get(category) or category] += mw
        steps.append(MixStep(start_s, start_s + STEP_S, dict(mix)))
    return steps


def est_epoch(text: Any, source: str, what: str) -> float:
    """An INTERVALEST ("2026-09-10 10:25:00 AM", Eastern Standard Time) as epoch s. Parsed by
    hand: strptime's %p follows the process's locale."""
    match = _TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ProviderError(f"{source}: {what} is {text!r}, expected YYYY-MM-DD HH:MM:SS AM")
    year, month, day, hour, minute, second, half = match.groups()
    if not 1 <= int(hour) <= 12:
        raise ProviderError(f"{source}: {what} {text!r} is not a time")
    hour_24 = int(hour) % 12 + (12 if half == "PM" else 0)
    try:
        wall = dt.datetime(
            int(year), int(month), int(day), hour_24, int(minute), int(second),
            tzinfo=dt.timezone.utc,
        )  # fmt: skip
    except ValueError:
        raise ProviderError(f"{source}: {what} {text!r} is not a time") from None
    return wall.timestamp() - EST_S


def _mw(value: Any, source: str, what: str) -> float | None:
    """ACT as MW: a number or numeric text; empty or null is a gap."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ProviderError(f"{source}: {what} is {value!r}, expected a number")
    try:
        mw = float(value)
    except (TypeError, ValueError):
        raise ProviderError(f"{source}: {what} is {value!r}, expected a number") from None
    if not math.isfinite(mw):
        raise ProviderError(f"{source}: {what} is {value!r}, expected a number")
    return mw


if TYPE_CHECKING:

    def _is_a_provider(p: Miso) -> Provider:
        return p
