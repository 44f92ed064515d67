"""Electricity Maps API v3: latest, 24-hour history and forecast of intensity by zone or place.

Docs: https://docs.electricitymaps.com (API reference), notes in shared/data/API_NOTES.md §1.
Values are gCO2eq/kWh, consumption-based (flow-traced), lifecycle: no conversion needed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.http import HttpError, Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
    checked_time_s,
    checked_value,
)

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://api.electricitymaps.com/v3"
HOUR_S = 3600.0
# The dirtiest grids are ~1,100 g/kWh; above this the number is in other units (lb/MWh, kg/MWh…).

_TIMEOUTS = Timeouts()


class ElectricityMaps:
    """The `Provider` for Electricity Maps, by `zone` ("DE", "US-CAL-CISO") or by `lat`/`lon`."""

    name = "electricitymaps"
    # The free tier publishes hourly values: a new hour appears once an hour, so polling `latest`
    # faster gains nothing but the revisions of the current hour's estimate. Each LATEST point is
    # valid to the end of its hour, so a poller that polls again at that point's end_s never
    # runs on an expired value.
    resolution_s = HOUR_S
    signal = AVERAGE

    def __init__(
        self,
        token: str,
        zone: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not token:
            raise ValueError("Electricity Maps needs a token: set CARBONWRAP_ELECTRICITYMAPS_TOKEN")
        if (zone is None) == (lat is None and lon is None) or (lat is None) != (lon is None):
            raise ValueError("Electricity Maps needs either a zone, or both lat and lon")
        self._token = token
        self.zone = zone
        self.lat = lat
        self.lon = lon
        self.base = base.rstrip("/")
        self.source = f"{self.name}:{zone if zone is not None else f'{lat},{lon}'}"
        self._timeouts = timeouts
        self._retries = retries
        self._sleep = sleep

    def __repr__(self) -> str:  # never the token
        return f"ElectricityMaps({self.source!r}, base={self.base!r})"

    def _params(self) -> dict[str, str]:
        where = {"zone": self.zone} if self.zone is not None else {"lat": f"{self.lat}"}
        if self.zone is None:
            where["lon"] = f"{self.lon}"
        # Without this, a zone the API cannot place falls back to a guess from our IP address:
        # a silently wrong region is worse than an error.
        return {**where, "disableCallerLookup": "true"}

    async def _get(self, session: aiohttp.ClientSession, path: str) -> Any:
        return await get_json(
            session,
            f"{self.base}/carbon-intensity/{path}",
            params=self._params(),
            headers={"auth-token": self._token},
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        return parse_latest(await self._get(session, "latest"), self.source, zone=self.zone)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Points overlapping [start_s, end_s) from the last 24 hours (older needs a paid plan)."""
        points = parse_history(await self._get(session, "history"), self.source, zone=self.zone)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        try:
            doc = await self._get(session, "forecast")
        except HttpError as exc:
            if exc.status in (401, 403):
                raise HttpError(
                    f"{exc.reason} (the forecast is not in the free plan)", exc.status
                ) from None
            raise
        return parse_forecast(doc, self.source, zone=self.zone)


def parse_latest(doc: Any, source: str, *, zone: str | None = None) -> IntensityPoint:
    """The /carbon-intensity/latest answer as a LATEST point valid for its hour."""
    entry = _mapping(doc, source, "answer")
    _check_zone(entry, source, zone)
    start_s = _time_s(entry, source, "answer")
    value = _value(entry, source, "answer")
    if value is None:
        raise ProviderError(f"{source}: no carbonIntensity in the answer (no data for this zone)")
    return IntensityPoint(start_s, start_s + HOUR_S, value, LATEST, AVERAGE, source)


def parse_history(doc: Any, source: str, *, zone: str | None = None) -> list[IntensityPoint]:
    """/carbon-intensity/history as points, oldest first.

    `isEstimated: true` entries (typically the last hours) are the API's estimate until the
    measured data arrive, and are revised later: they are LATEST, not MEASURED, so the final
    report never says "measured" of a value that may still change.
    """
    entries = _entries(doc, source, "history", zone)
    raw: list[tuple[float, float, str]] = []
    for i, entry in enumerate(entries):
        what = f"history[{i}]"
        item = _mapping(entry, source, what)
        start_s = _time_s(item, source, what)
        value = _value(item, source, what)
        estimated = item.get("isEstimated")
        if estimated is not None and not isinstance(estimated, bool):
            raise ProviderError(
                f"{source}: {what}.isEstimated is {estimated!r}, expected true/false"
            )
        if value is not None:  # an hour without data: leave the gap, do not invent a value
            raw.append((start_s, value, LATEST if estimated else MEASURED))
    return _points(raw, source)


def parse_forecast(doc: Any, source: str, *, zone: str | None = None) -> list[IntensityPoint]:
    """/carbon-intensity/forecast as FORECAST points, oldest first."""
    entries = _entries(doc, source, "forecast", zone)
    raw: list[tuple[float, float, str]] = []
    for i, entry in enumerate(entries):
        what = f"forecast[{i}]"
        item = _mapping(entry, source, what)
        start_s = _time_s(item, source, what)
        value = _value(item, source, what)
        if value is not None:
            raw.append((start_s, value, FORECAST))
    return _points(raw, source)


def _points(raw: list[tuple[float, float, str]], source: str) -> list[IntensityPoint]:
    if not raw:
        raise ProviderError(f"{source}: no values in the answer")
    raw.sort()
    step_s = _step_s([start_s for start_s, _, _ in raw])
    return [
        IntensityPoint(start_s, start_s + step_s, value, kind, AVERAGE, source)
        for start_s, value, kind in raw
    ]


def _step_s(starts: list[float]) -> float:
    """The spacing of the points (hourly unless a finer temporalGranularity was asked for)."""
    gaps = [b - a for a, b in itertools.pairwise(starts) if b > a]
    return min(gaps) if gaps else HOUR_S


def _entries(doc: Any, source: str, key: str, zone: str | None) -> list[Any]:
    top = _mapping(doc, source, "answer")
    _check_zone(top, source, zone)
    entries = top.get(key)
    if not isinstance(entries, list):
        raise ProviderError(f"{source}: answer has no {key!r} list")
    if not entries:
        raise ProviderError(f"{source}: empty {key!r} list in the answer")
    return entries


def _mapping(value: Any, source: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProviderError(f"{source}: {what} is {type(value).__name__}, expected an object")
    return value


def _check_zone(entry: Mapping[str, Any], source: str, zone: str | None) -> None:
    found = entry.get("zone")
    if zone is not None and found is not None and found != zone:
        raise ProviderError(f"{source}: answer is for zone {found!r}, asked for {zone!r}")


def _time_s(entry: Mapping[str, Any], source: str, what: str) -> float:
    return checked_time_s(entry.get("datetime"), source, f"{what}.datetime")


def _value(entry: Mapping[str, Any], source: str, what: str) -> float | None:
    if "carbonIntensity" not in entry:
        raise ProviderError(f"{source}: {what} has no carbonIntensity")
    return checked_value(entry["carbonIntensity"], source, f"{what}.carbonIntensity")


if TYPE_CHECKING:

    def _is_a_provider(p: ElectricityMaps) -> Provider:
        return p
