"""ERCOT fuel-mix dashboard: Texas's (ERCOT's) generation by fuel every 5 minutes, priced.

Endpoint (no key): GET https://www.ercot.com/api/1/services/read/dashboards/fuel-mix.json, the
data of www.ercot.com/gridmktinfo/dashboards/fuelmix, as read by gridstatus@9ddfaff
gridstatus/ercot.py (`_get_fuel_mix`, `get_fuel_mix`, `_handle_fuel_mix`) and
electricitymaps-contrib@b354f28 parsers/US_ERCOT.py, whose recorded answer
(parsers/tests/mocks/ERCOT_generation.json) has this shape:

    {"lastUpdated": "2025-10-09 06:46:00-0500", "monthlyCapacity": {...},
     "types": ["Coal and Lignite", "Hydro", "Natural Gas", "Nuclear", "Other",
               "Power Storage", "Solar", "Wind"],
     "data": {"2025-10-08": {"2025-10-08 00:04:56-0500": {"Coal and Lignite": {"gen": 10519.19},
                                                         ...}, ...},
              "2025-10-09": {...}}}

Yesterday and today (Central time), one time stamp per 5 minutes, each with its own UTC offset
(so the autumn's repeated hour is unambiguous). Time stamps fall a few seconds before the
5-minute mark: rounded to the minute (as gridstatus does), a day runs from 00:05 to 24:00, so
each mix is taken for the 5 minutes ending at its rounded time (inferred from the day's
bounds). ERCOT sometimes reports one interval under two time stamps seconds apart (gridstatus):
mixes that round to the same minute are averaged.

Types -> factor keys: "Coal and Lignite" as coal (one factor for both), "Power Storage"
discharge as storage, "Other" as unspecified thermal; the rest as named. DC-tie imports are not
in the mix: production-based. www.ercot.com refuses addresses outside the US
(electricitymaps-contrib issue #1160; its parser goes through a US proxy): HTTP 403 there is
reported as that. ERCOT's dashboard has no mix forecast: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.http import HttpError, Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.ercot_areas import AREAS
from carbonwrap.intensity.providers.fuelmix import MixStep, priced_points

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://www.ercot.com/api/1/services/read/dashboards"
STEP_S = 300.0
FUEL_OF: dict[str, str] = {
    "Coal and Lignite": "coal",
    "Hydro": "hydro",
    "Natural Gas": "gas",
    "Nuclear": "nuclear",
    "Other": "other",
    "Power Storage": "storage",
    "Solar": "solar",
    "Wind": "wind",
}

_TIMEOUTS = Timeouts()


class Ercot(HttpProvider):
    """The `Provider` for ERCOT's area ("ERCO")."""

    name = "ercot"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "ERCO",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"ERCOT area {area!r}: only 'ERCO' is served")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _mix(self, session: aiohttp.ClientSession) -> Any:
        try:
            return await get_json(
                session,
                f"{self.base}/fuel-mix.json",
                timeouts=self._timeouts,
                retries=self._retries,
                sleep=self._sleep,
            )
        except HttpError as exc:
            if exc.status != 403:
                raise
            # No token is sent: a 403 is ERCOT's refusal of addresses outside the US.
            raise HttpError(
                f"{self.source}: www.ercot.com refused the request (HTTP 403): it answers US "
                "addresses only",
                403,
            ) from None

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest complete 5 minutes of the dashboard's mix, priced: LATEST."""
        now_s = self._now()
        doc = await self._mix(session)
        points = [p for p in parse_fuel_mix(doc, LATEST, self.source) if p.start_s <= now_s]
        if not points:
            raise ProviderError(f"{self.source}: no complete mix in the answer")
        return points[-1]

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """5-minute values overlapping [start_s, end_s) as MEASURED; the answer reaches back to
        yesterday's midnight (Central time) only."""
        if end_s <= start_s or end_s <= self._now() - 2 * 86400:
            return []  # older than the dashboard keeps: spare the request
        points = parse_fuel_mix(await self._mix(session), MEASURED, self.source)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """ERCOT's dashboard publishes no fuel-mix forecast."""
        return []


def parse_fuel_mix(doc: Any, kind: str, source: str) -> list[IntensityPoint]:
    """A fuel-mix.json answer as priced 5-minute points, oldest first; see `mix_steps`."""
    return priced_points(mix_steps(doc, source), kind, source)


def mix_steps(doc: Any, source: str) -> list[MixStep]:
    """The complete 5-minute mixes {fuel key or ERCOT's name: MW} of an answer, oldest first:
    those where every type the answer lists (`types`, else every type seen) has a `gen`.

    Raises ProviderError for a wrong shape, a bad time stamp, or a `gen` that is not a number."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("data"), Mapping):
        raise ProviderError(f"{source}: answer has no 'data' object")
    listed = doc.get("types")
    types: set[str] = (
        {t for t in listed if isinstance(t, str)} if isinstance(listed, list) else set()
    )
    # end minute (epoch s) -> type -> readings
    readings: dict[float, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for day, stamps in doc["data"].items():
        if not isinstance(stamps, Mapping):
            raise ProviderError(f"{source}: data[{day!r}] is not an object")
        for stamp, by_type in stamps.items():
            what = f"data[{day!r}][{stamp!r}]"
            end_s = round(ercot_epoch(stamp, source, what) / 60) * 60.0
            if not isinstance(by_type, Mapping):
                raise ProviderError(f"{source}: {what} is not an object")
            for name, entry in by_type.items():
                if not listed:
                    types.add(name)
                gen = entry.get("gen") if isinstance(entry, Mapping) else None
                mw = _mw(gen, source, f"{what}[{name!r}].gen")
                if mw is not None:
                    readings[end_s][name].append(mw)
    steps: list[MixStep] = []
    for end_s in sorted(readings):
        found = readings[end_s]
        if not types or not types <= set(found):
            continue  # a type not published yet for these 5 minutes
        mix: dict[str, float] = collections.defaultdict(float)
        for name, values in found.items():
            mix[FUEL_OF.get(name, name)] += sum(values) / len(values)
        steps.append(MixStep(end_s - STEP_S, end_s, dict(mix)))
    return steps


def ercot_epoch(stamp: Any, source: str, what: str) -> float:
    """A time stamp with its offset ("2025-10-08 00:04:56-0500") as epoch s."""
    try:
        return dt.datetime.strptime(str(stamp), "%Y-%m-%d %H:%M:%S%z").timestamp()
    except ValueError:
        raise ProviderError(
            f"{source}: {what} is not a time stamp like 2025-10-08 00:04:56-0500"
        ) from None


def _mw(value: Any, source: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProviderError(f"{source}: {what} is {value!r}, expected a number")
    return float(value)


if TYPE_CHECKING:

    def _is_a_provider(p: Ercot) -> Provider:
        return p
