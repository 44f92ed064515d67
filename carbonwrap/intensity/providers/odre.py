"""RTE éCO2mix through ODRÉ (Opendatasoft Explore API v2.1): France's quarter-hourly taux_co2.

Endpoint: GET https://odre.opendatasoft.com/api/explore/v2.1/catalog/datasets/<dataset>/records
with ODSQL `select`, `where`, `order_by`, `limit` (at most 100), `offset` and `timezone`; no key.
The answer is {"total_count": N, "results": [{field: value, ...}]} (Explore API v2.1 reference,
https://help.opendatasoft.com/apis/ods-explore-v2/). Datasets: "eco2mix-national-tr" (real time,
refreshed about hourly) and "eco2mix-national-cons-def" (consolidated and definitive history).
Field names `date_heure` (ISO time; UTC with timezone=UTC) and `taux_co2` (gCO2/kWh, an
integer) are those of the dataset pages and of electricitymaps-contrib's FR parser and fixture;
the ODSQL clauses (`taux_co2 is not null`, `date_heure >= '…Z'`) as public clients send them to
this dataset (the OCaml `carbon` package's fr.ml; a v2.1 export client's `where`).

What the value is (https://www.rte-france.com/eco2mix/les-emissions-de-co2-par-kwh-produit-en-france):
RTE's estimate of the CO2 emitted by electricity *production* in mainland France, per kWh
produced: production-based (imports are not counted), direct emissions, not lifecycle. RTE
publishes no taux_co2 forecast on ODRÉ (the dataset's forecasts are of consumption), so
forecast() is empty.
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
from carbonwrap.intensity.providers.odre_areas import AREAS

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://odre.opendatasoft.com/api/explore/v2.1"
REALTIME_SET = "eco2mix-national-tr"
CONSOLIDATED_SET = "eco2mix-national-cons-def"
STEP_S = 900.0  # the real-time dataset's quarter hours
# The consolidated dataset is reported to fill taux_co2 on the half hour only: a value holds
# until the next one, but never longer than this.
MAX_STEP_S = 1800.0
PAGE_ROWS = 100  # the records endpoint's largest `limit`
MAX_PAGES = 30  # 3,000 quarter hours: a month; longer windows are cut
_SELECT = "date_heure,taux_co2"

_TIMEOUTS = Timeouts()


class Odre(HttpProvider):
    """The `Provider` for France's national éCO2mix taux_co2 (area "national")."""

    name = "odre"
    resolution_s = STEP_S
    signal = AVERAGE

    def __init__(
        self,
        area: str = "national",
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if area not in AREAS.values():
            raise ValueError(f"ODRÉ éCO2mix area {area!r}: only 'national' is served")
        self.area = area
        self._keep(area, base, timeouts, retries, sleep, now)

    async def _get(
        self, session: aiohttp.ClientSession, dataset: str, where: str, order: str, offset: int
    ) -> Any:
        query = {
            "select": _SELECT,
            "where": where,
            "order_by": order,
            "limit": str(PAGE_ROWS),
            "offset": str(offset),
            "timezone": "UTC",
        }
        return await get_json(
            session,
            f"{self.base}/catalog/datasets/{dataset}/records",
            params=query,
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest real-time taux_co2: LATEST, valid for its quarter hour."""
        doc = await self._get(session, REALTIME_SET, "taux_co2 is not null", "date_heure desc", 0)
        return parse_latest(doc, self.source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """taux_co2 values overlapping [start_s, end_s) as MEASURED, from the real-time dataset,
        else the consolidated one; [] where neither has the window yet."""
        if end_s <= start_s:
            return []
        where = (
            f"taux_co2 is not null and date_heure >= '{_iso(start_s - MAX_STEP_S)}'"
            f" and date_heure < '{_iso(end_s)}'"
        )
        for dataset in (REALTIME_SET, CONSOLIDATED_SET):
            records = await self._records(session, dataset, where)
            if records:
                points = parse_history({"results": records}, self.source)
                return [p for p in points if p.end_s > start_s and p.start_s < end_s]
        return []

    async def _records(self, session: aiohttp.ClientSession, dataset: str, where: str) -> list[Any]:
        records: list[Any] = []
        for page in range(MAX_PAGES):
            doc = await self._get(session, dataset, where, "date_heure asc", page * PAGE_ROWS)
            rows = _results(doc, self.source)
            records += rows
            total = doc.get("total_count")
            if len(rows) < PAGE_ROWS or (isinstance(total, int) and len(records) >= total):
                break
        return records

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """RTE publishes no taux_co2 forecast on ODRÉ."""
        return []


def parse_latest(doc: Any, source: str) -> IntensityPoint:
    """The newest record with a value as a LATEST point."""
    points = parse_records(doc, LATEST, source)
    if not points:
        raise ProviderError(f"{source}: no taux_co2 value in the answer")
    return points[-1]


def parse_history(doc: Any, source: str) -> list[IntensityPoint]:
    """Records with a value as MEASURED points, oldest first."""
    return parse_records(doc, MEASURED, source)


def parse_records(doc: Any, kind: str, source: str) -> list[IntensityPoint]:
    """An Explore API answer's records as points, oldest first, whatever order they came in.

    Each value holds until the next one, at most MAX_STEP_S; the newest one for the step
    before it (STEP_S when it is alone). A null taux_co2 is a gap. Raises ProviderError for
    a wrong shape, a bad time or a value outside 0..5000 g/kWh.
    """
    found: dict[float, float] = {}
    for i, record in enumerate(_results(doc, source)):
        what = f"results[{i}]"
        if not isinstance(record, Mapping):
            raise ProviderError(f"{source}: {what} is {type(record).__name__}, expected an object")
        start_s = checked_time_s(record.get("date_heure"), source, f"{what}.date_heure")
        if "taux_co2" not in record:
            raise ProviderError(f"{source}: {what} has no taux_co2")
        value = checked_value(record["taux_co2"], source, f"{what}.taux_co2")
        if value is not None:
            found.setdefault(start_s, value)
    starts = sorted(found)
    points = []
    for i, start_s in enumerate(starts):
        if i + 1 < len(starts):
            step_s = min(starts[i + 1] - start_s, MAX_STEP_S)
        else:
            step_s = min(start_s - starts[i - 1], MAX_STEP_S) if i else STEP_S
        points.append(
            IntensityPoint(start_s, start_s + step_s, found[start_s], kind, AVERAGE, source)
        )
    return points


def _results(doc: Any, source: str) -> list[Any]:
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    results = doc.get("results")
    if not isinstance(results, list):
        raise ProviderError(f"{source}: answer has no 'results' list")
    return results


def _iso(epoch_s: float) -> str:
    """`epoch_s` as an ODSQL date literal in UTC, to the second."""
    return dt.datetime.fromtimestamp(int(epoch_s), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


if TYPE_CHECKING:

    def _is_a_provider(p: Odre) -> Provider:
        return p
