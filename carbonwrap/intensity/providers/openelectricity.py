"""Open Electricity (formerly OpenNEM) API v4: 5-minute emissions over energy per NEM region.

Endpoint: GET https://api.openelectricity.org.au/v4/data/network/NEM?metrics=energy
&metrics=emissions&interval=5m&primary_grouping=network_region&date_start=…&date_end=…, key as
`Authorization: Bearer <key>`. Parameters from the API's OpenAPI document (opennem/
openelectricity-python docs/openapi.json: `metrics` an array, `interval` default 5m,
`primary_grouping` network|network_region; dates are naive network time, as
electricitymaps-contrib parsers/OPENNEM.py sends them; the NEM's is AEST, UTC+10 all year).
Answer shape from the client's models (openelectricity/models/timeseries.py) and
electricitymaps-contrib's recorded v4 answers (parsers/tests/mocks/OPENNEM/*.v4.json):
{"data": [{"metric", "unit", "interval", "results": [{"name", "columns": {"region": "NSW1"},
"data": [["2025-07-23T01:45:00+10:00", 702.5], …]}], "network_timezone_offset": "+10:00"}]}.
The client's model calls the column `network_region`; recorded answers say `region`: both
are read. A timestamp starts its interval (the client's 1d example labels each day by its
first instant).

Value: emissions (tonnes CO2e, the OpenAPI's Metric description) over energy (MWh) of the
region's generation: t/MWh × 1000 = g/kWh. Open Electricity derives emissions from each
generating unit's emission factor (units carry `emissions_factor_co2`), so this is
production-based: what the region's own plants emit per MWh they send out, imports ignored.
The unit strings accepted for emissions are inferred from that description; which
technologies (rooftop solar, storage) the regional energy total includes is not documented
there. No forecast is published: forecast() is empty.
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
from carbonwrap.intensity.providers.openelectricity_areas import AREAS

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://api.openelectricity.org.au/v4"
NETWORK = "NEM"
NEM_OFFSET_S = 10 * 3600.0  # NEM market time: AEST, no daylight saving
INTERVAL = "5m"
STEP_S = 300.0
LATEST_WINDOW_S = 2 * 3600.0
MAX_HISTORY_S = 7 * 86400.0  # one request; a longer window keeps its newest week
G_PER_KWH_PER_T_PER_MWH = 1000.0
ENERGY_UNITS = {"mwh"}
EMISSIONS_UNITS = {"t", "tco2", "tco2e", "tonnes"}

_TIMEOUTS = Timeouts()


class OpenElectricity(HttpProvider):
    """The `Provider` for one NEM region ("NSW1", "QLD1", "VIC1", "SA1", "TAS1")."""

    name = "openelectricity"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        key: str,
        region: str,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not key:
            raise ValueError(
                "Open Electricity needs a key: set CARBONWRAP_OPENELECTRICITY_KEY"
                " (free at openelectricity.org.au)"
            )
        if region not in AREAS.values():
            raise ValueError(f"Open Electricity region {region!r}: use {', '.join(AREAS.values())}")
        self._key = key
        self.region = region
        self._keep(region, base, timeouts, retries, sleep, now)

    async def _get(self, session: aiohttp.ClientSession, start_s: float, end_s: float) -> Any:
        # `metrics` is an array: repeated in the URL, which a mapping of params cannot hold.
        url = f"{self.base}/data/network/{NETWORK}?metrics=energy&metrics=emissions"
        query = {
            "interval": INTERVAL,
            "primary_grouping": "network_region",
            "date_start": _nem_time(start_s),
            "date_end": _nem_time(end_s),
        }
        return await get_json(
            session,
            url,
            params=query,
            headers={"Authorization": f"Bearer {self._key}"},
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest interval of the last two hours with both energy and emissions: LATEST."""
        now_s = self._now()
        doc = await self._get(session, now_s - LATEST_WINDOW_S, now_s)
        return parse_latest(doc, self.region, self.source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Intervals overlapping [start_s, end_s) as MEASURED (the newest week of a longer
        window); [] where none are published yet."""
        if end_s <= start_s:
            return []
        first_s = max(start_s, end_s - MAX_HISTORY_S)
        doc = await self._get(session, first_s - STEP_S, end_s)
        points = parse_history(doc, self.region, self.source)
        return [p for p in points if p.end_s > first_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """Open Electricity publishes no emissions forecast."""
        return []


def parse_latest(doc: Any, region: str, source: str) -> IntensityPoint:
    """The newest interval with both metrics as a LATEST point."""
    points = parse_intervals(doc, region, LATEST, source)
    if not points:
        raise ProviderError(f"{source}: no interval with both energy and emissions for {region}")
    return points[-1]


def parse_history(doc: Any, region: str, source: str) -> list[IntensityPoint]:
    """Intervals with both metrics as MEASURED points, oldest first."""
    return parse_intervals(doc, region, MEASURED, source)


def parse_intervals(doc: Any, region: str, kind: str, source: str) -> list[IntensityPoint]:
    """emissions / energy per interval of `region`, oldest first; an interval lacking either,
    or with no positive energy, is a gap. Raises ProviderError for a wrong shape, unit, time
    or value, or an answer without both metrics."""
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    series_list = doc.get("data")
    if not isinstance(series_list, list):
        raise ProviderError(f"{source}: answer has no 'data' list")
    energy_mwh = emissions_t = None
    for i, series in enumerate(series_list):
        what = f"data[{i}]"
        if not isinstance(series, Mapping):
            raise ProviderError(f"{source}: {what} is {type(series).__name__}, expected an object")
        metric = series.get("metric")
        if metric == "energy":
            _unit(series, ENERGY_UNITS, source, what)
            energy_mwh = _region_values(series, region, source, what)
        elif metric == "emissions":
            _unit(series, EMISSIONS_UNITS, source, what)
            emissions_t = _region_values(series, region, source, what)
    if energy_mwh is None or emissions_t is None:
        raise ProviderError(f"{source}: answer lacks the energy or the emissions series")
    points = []
    for start_s in sorted(energy_mwh.keys() & emissions_t.keys()):
        energy, emissions = energy_mwh[start_s], emissions_t[start_s]
        if energy <= 0:
            continue
        g_per_kwh = G_PER_KWH_PER_T_PER_MWH * emissions / energy
        value = checked_value(g_per_kwh, source, f"emissions/energy at {_nem_time(start_s)}")
        if value is not None:
            points.append(IntensityPoint(start_s, start_s + STEP_S, value, kind, AVERAGE, source))
    return points


def _unit(series: Mapping[str, Any], accepted: set[str], source: str, what: str) -> None:
    unit = series.get("unit")
    if not isinstance(unit, str) or unit.replace(" ", "").lower() not in accepted:
        raise ProviderError(f"{source}: {what} ({series.get('metric')}) is in {unit!r}")
    interval = series.get("interval", INTERVAL)
    if interval != INTERVAL:
        raise ProviderError(f"{source}: {what} has interval {interval!r}, asked for {INTERVAL}")


def _region_values(
    series: Mapping[str, Any], region: str, source: str, what: str
) -> dict[float, float]:
    results = series.get("results")
    if not isinstance(results, list):
        raise ProviderError(f"{source}: {what} has no 'results' list")
    values: dict[float, float] = {}
    for j, result in enumerate(results):
        where = f"{what}.results[{j}]"
        if not isinstance(result, Mapping) or not isinstance(result.get("columns"), Mapping):
            raise ProviderError(f"{source}: {where} is not a result with columns")
        columns = result["columns"]
        if columns.get("region", columns.get("network_region")) != region:
            continue
        data = result.get("data")
        if not isinstance(data, list):
            raise ProviderError(f"{source}: {where} has no 'data' list")
        for k, pair in enumerate(data):
            at = f"{where}.data[{k}]"
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProviderError(f"{source}: {at} is {pair!r}, expected [time, value]")
            start_s = checked_time_s(pair[0], source, at)
            value = pair[1]
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ProviderError(f"{source}: {at} value is {value!r}, expected a number")
            values[start_s] = float(value)
    return values


def _nem_time(epoch_s: float) -> str:
    """`epoch_s` as naive NEM time (UTC+10), to the second."""
    return dt.datetime.fromtimestamp(int(epoch_s + NEM_OFFSET_S), dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


if TYPE_CHECKING:

    def _is_a_provider(p: OpenElectricity) -> Provider:
        return p
