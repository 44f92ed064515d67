"""Fingrid open data: the real-time CO2 emission factor of electricity consumed in Finland.

Endpoint: GET https://data.fingrid.fi/api/datasets/265/data?startTime=…Z&endTime=…Z&format=json
&pageSize=…&sortBy=startTime&sortOrder=asc|desc, key in the `x-api-key` header (never the URL).
Dataset 265 is "Emission factor for electricity consumed in Finland - real time data" (gCO2/kWh,
every 3 minutes); 266 is the production-based one, not used. Answer shape
{"data": [{"datasetId", "startTime", "endTime", "value"}], "pagination": {...}}: the API's
instructions (https://data.fingrid.fi/en/instructions, developer-data.fingrid.fi GetDatasetData)
as read by public clients, e.g. the TypeScript FingridResponse type and scripts reading
data[].startTime/value. Published limit: 10 requests a minute per key.

Real-time values are instants: where endTime is not after startTime a value holds until the
next one (at most MAX_STEP_S). Fingrid publishes no forecast of the factor: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import datetime as dt
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
    checked_time_s,
    checked_value,
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.fingrid_areas import AREAS

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://data.fingrid.fi/api"
DATASET = "265"  # emission factor for electricity consumed in Finland, real time
STEP_S = 180.0
MAX_STEP_S = 900.0  # a value is not stretched over a longer gap in the data
LATEST_WINDOW_S = 2 * 3600.0  # latest() looks this far back for the newest value
PAGE_ROWS = 20000  # the API's largest pageSize

_TIMEOUTS = Timeouts()


class Fingrid(HttpProvider):
    """The `Provider` for Finland's consumption-based emission factor (dataset 265)."""

    name = "fingrid"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        key: str,
        area: str = "FI",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not key:
            raise ValueError(
                "Fingrid needs a key: set CARBONWRAP_FINGRID_KEY (free at data.fingrid.fi)"
            )
        if area not in AREAS.values():
            raise ValueError(f"Fingrid area {area!r}: only 'FI' is served")
        self._key = key
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _get(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float, order: str
    ) -> Any:
        query = {
            "startTime": _utc(start_s),
            "endTime": _utc(end_s),
            "format": "json",
            "pageSize": str(PAGE_ROWS),
            "sortBy": "startTime",
            "sortOrder": order,
        }
        return await get_json(
            session,
            f"{self.base}/datasets/{DATASET}/data",
            params=query,
            headers={"x-api-key": self._key},
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest value of the last two hours: LATEST."""
        now_s = self._now()
        doc = await self._get(session, now_s - LATEST_WINDOW_S, now_s + STEP_S, "desc")
        return parse_latest(doc, self.source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Values overlapping [start_s, end_s) as MEASURED; [] where none are published yet."""
        if end_s <= start_s:
            return []
        doc = await self._get(session, start_s - MAX_STEP_S, end_s, "asc")
        points = parse_history(doc, self.source)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """Fingrid publishes no forecast of the emission factor."""
        return []


def parse_latest(doc: Any, source: str) -> IntensityPoint:
    """The newest value as a LATEST point."""
    points = parse_records(doc, LATEST, source)
    if not points:
        raise ProviderError(f"{source}: no values in the answer")
    return points[-1]


def parse_history(doc: Any, source: str) -> list[IntensityPoint]:
    """All values as MEASURED points, oldest first; [] for an empty answer."""
    return parse_records(doc, MEASURED, source)


def parse_records(doc: Any, kind: str, source: str) -> list[IntensityPoint]:
    """The answer's `data` as points, oldest first, whatever order it came in.

    A record spans [startTime, endTime); one whose endTime is not after its startTime (an
    instant) holds until the next record, at most MAX_STEP_S, or STEP_S when it is the newest.
    A null value is a gap. Raises ProviderError for a wrong shape, time or value.
    """
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    data = doc.get("data")
    if not isinstance(data, list):
        raise ProviderError(f"{source}: answer has no 'data' list")
    found: dict[float, tuple[float, float]] = {}
    for i, record in enumerate(data):
        what = f"data[{i}]"
        if not isinstance(record, Mapping):
            raise ProviderError(f"{source}: {what} is {type(record).__name__}, expected an object")
        start_s = checked_time_s(record.get("startTime"), source, f"{what}.startTime")
        end_s = checked_time_s(record.get("endTime"), source, f"{what}.endTime")
        if "value" not in record:
            raise ProviderError(f"{source}: {what} has no value")
        value = checked_value(record["value"], source, f"{what}.value")
        if value is not None:
            found.setdefault(start_s, (end_s, value))
    starts = sorted(found)
    points = []
    for i, start_s in enumerate(starts):
        end_s, value = found[start_s]
        if end_s <= start_s:
            gap_s = starts[i + 1] - start_s if i + 1 < len(starts) else STEP_S
            end_s = start_s + min(gap_s, MAX_STEP_S)
        points.append(IntensityPoint(start_s, end_s, value, kind, AVERAGE, source))
    return points


def _utc(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch_s), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if TYPE_CHECKING:

    def _is_a_provider(p: Fingrid) -> Provider:
        return p
