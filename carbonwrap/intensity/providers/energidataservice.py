"""Energi Data Service (Energinet, Denmark): CO2Emis and CO2EmisProg, 5-minute values for DK1/DK2.

Docs: https://www.energidataservice.dk/guides/api-guides and /tso-electricity/co2emis(prog);
notes in shared/data/API_NOTES.md §3. Values are gCO2/kWh of electricity consumed in Denmark.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.http import Timeouts, get_json
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

DEFAULT_BASE = "https://api.energidataservice.dk"
PRICE_AREAS = ("DK1", "DK2")
STEP_S = 300.0  # both datasets hold one value per 5 minutes (Minutes5UTC)
MEASURED_SET = "CO2Emis"
FORECAST_SET = "CO2EmisProg"
_COLUMNS = "Minutes5UTC,PriceArea,CO2Emission"
# `start`/`end` are read as Danish local time (UTC+1, or UTC+2 in summer) and there is no
# documented way to give UTC. Sending the UTC wall time as start and UTC + 2 h as end asks for
# a window that holds [start, end) under either offset; the records are then cut on Minutes5UTC.
_LOCAL_SLACK_S = 2 * 3600.0
_FORECAST_LIMIT = 48 * 12  # 48 hours of 5-minute values; the prognosis reaches ≤ ~1.5 days

_TIMEOUTS = Timeouts()


class EnergiDataService:
    """The `Provider` for Denmark's TSO data, one price area ("DK1" west, "DK2" east)."""

    name = "energidataservice"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        price_area: str,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if price_area not in PRICE_AREAS:
            raise ValueError(f"Energi Data Service price area {price_area!r}: use DK1 or DK2")
        self.price_area = price_area
        self.base = base.rstrip("/")
        self.source = f"{self.name}:{price_area}"
        self._timeouts = timeouts
        self._retries = retries
        self._sleep = sleep
        self._now = now  # wall clock, epoch s; only forecast() asks it, for "from now on"

    def __repr__(self) -> str:
        return f"EnergiDataService({self.source!r}, base={self.base!r})"

    async def _get(self, session: aiohttp.ClientSession, dataset: str, **params: str) -> Any:
        query = {
            "filter": json.dumps({"PriceArea": [self.price_area]}, separators=(",", ":")),
            "columns": _COLUMNS,
            **params,
        }
        return await get_json(
            session,
            f"{self.base}/dataset/{dataset}",
            params=query,
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest CO2Emis value: LATEST, valid for its own 5 minutes.

        CO2Emis is computed from metered production and exchange, so in substance it is measured;
        it is still LATEST here because it is the live value, and because the same record comes
        back as MEASURED from history() for the final report, which then says "measured". Note
        it lags real time (the dataset is updated every 15-60 minutes), so its window is usually
        already over when it arrives: for "now", forecast() (CO2EmisProg) covers the present.
        """
        # A few rows, not one: if a mirror ignores the filter the other area's rows come first.
        doc = await self._get(session, MEASURED_SET, sort="Minutes5UTC desc", limit="4")
        return parse_latest(doc, self.price_area, self.source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """CO2Emis values overlapping [start_s, end_s) as MEASURED; [] if none are published yet."""
        if end_s <= start_s:
            return []
        query_end_s = end_s + _LOCAL_SLACK_S
        rows = math.ceil((query_end_s - start_s) / STEP_S) + 1
        doc = await self._get(
            session,
            MEASURED_SET,
            start=_minute(start_s, up=False),
            end=_minute(query_end_s, up=True),
            sort="Minutes5UTC asc",
            limit=str(2 * rows),  # room for both areas, should the filter be ignored
        )
        if _no_records(doc):
            return []  # CO2Emis lags real time: a recent window is simply not published yet
        points = parse_history(doc, self.price_area, self.source)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """CO2EmisProg values from the current 5 minutes on, as FORECAST."""
        now_s = self._now()
        doc = await self._get(
            session,
            FORECAST_SET,
            start=_minute(now_s // STEP_S * STEP_S, up=False),
            sort="Minutes5UTC asc",
            limit=str(_FORECAST_LIMIT),
        )
        points = parse_forecast(doc, self.price_area, self.source)
        return [p for p in points if p.end_s > now_s]


def parse_latest(doc: Any, area: str, source: str) -> IntensityPoint:
    """The newest CO2Emis record for `area` as a LATEST point."""
    return parse_records(doc, MEASURED_SET, area, LATEST, source)[-1]


def parse_history(doc: Any, area: str, source: str) -> list[IntensityPoint]:
    """CO2Emis records for `area` as MEASURED points, oldest first."""
    return parse_records(doc, MEASURED_SET, area, MEASURED, source)


def parse_forecast(doc: Any, area: str, source: str) -> list[IntensityPoint]:
    """CO2EmisProg records for `area` as FORECAST points, oldest first."""
    return parse_records(doc, FORECAST_SET, area, FORECAST, source)


def parse_records(
    doc: Any, dataset: str, area: str, kind: str, source: str
) -> list[IntensityPoint]:
    """Records of `dataset` for price area `area`, oldest first; other areas are ignored.

    Raises ProviderError for a wrong shape or type, values outside 0..5000 g/kWh, and no records.
    """
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    named = doc.get("dataset")
    if named is not None and str(named).lower() != dataset.lower():
        raise ProviderError(f"{source}: answer is from dataset {named!r}, asked for {dataset}")
    records = doc.get("records")
    if not isinstance(records, list):
        raise ProviderError(f"{source}: answer has no 'records' list")
    if not records or doc.get("total") == 0:
        raise ProviderError(f"{source}: no records in {dataset}")
    found: dict[float, float] = {}
    for i, record in enumerate(records):
        what = f"records[{i}]"
        if not isinstance(record, Mapping):
            raise ProviderError(f"{source}: {what} is {type(record).__name__}, expected an object")
        if record.get("PriceArea") != area:
            continue
        start_s = _time_s(record, source, what)
        value = _value(record, source, what)
        if value is not None:  # a gap in the data: leave it, do not invent a value
            found.setdefault(start_s, value)
    if not found:
        raise ProviderError(f"{source}: no records for {area} in {dataset}")
    return [
        IntensityPoint(start_s, start_s + STEP_S, found[start_s], kind, AVERAGE, source)
        for start_s in sorted(found)
    ]


def _no_records(doc: Any) -> bool:
    return isinstance(doc, Mapping) and (doc.get("total") == 0 or doc.get("records") == [])


def _minute(epoch_s: float, *, up: bool) -> str:
    """`epoch_s` as the API's "yyyy-MM-ddTHH:mm", rounded down (or up) to the minute."""
    minute_s = (math.ceil if up else math.floor)(epoch_s / 60) * 60
    return dt.datetime.fromtimestamp(minute_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M")


def _time_s(record: Mapping[str, Any], source: str, what: str) -> float:
    return checked_time_s(record.get("Minutes5UTC"), source, f"{what}.Minutes5UTC")


def _value(record: Mapping[str, Any], source: str, what: str) -> float | None:
    if "CO2Emission" not in record:
        raise ProviderError(f"{source}: {what} has no CO2Emission")
    return checked_value(record["CO2Emission"], source, f"{what}.CO2Emission")


if TYPE_CHECKING:

    def _is_a_provider(p: EnergiDataService) -> Provider:
        return p
