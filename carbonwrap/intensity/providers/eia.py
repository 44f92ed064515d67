"""EIA Open Data v2, hourly net generation by fuel per US balancing authority (Form EIA-930),
turned into an intensity with carbonwrap's lifecycle factors.

Endpoint: GET https://api.eia.gov/v2/electricity/rto/fuel-type-data/data/?frequency=hourly
&data[0]=value&facets[respondent][]=CISO&start=YYYY-MM-DDTHH&end=…&sort[0][column]=period
&sort[0][direction]=desc&offset=0&length=5000&api_key=… (https://www.eia.gov/opendata/documentation.php;
`length` is at most 5000 rows). EIA takes the key only as the `api_key` query parameter: the
http layer keeps it secret (points.keep_secret, for every query value named *key*) and names
host and path only in reasons, so no error or log line shows it. Answer shape, as in
electricitymaps-contrib's EIA fixtures (parsers/tests/mocks/EIA/*.json):
{"response": {"total", "dateFormat": "YYYY-MM-DD\"T\"HH24", "frequency": "hourly",
"data": [{"period": "2022-10-31T11", "respondent", "respondent-name", "fueltype", "type-name",
"value", "value-units": "megawatthours"}]}, "apiVersion"}. With frequency=hourly the period is
UTC and labels the hour's *end* (electricitymaps-contrib parsers/EIA.py `_parse_hourly_interval`).

An hour's MWh is its mean MW; the mix goes through `factors.mix_intensity`. Fuel codes are those
electricitymaps-contrib maps (EIA.py TYPES); an hour where codes we do not know carry more than
a tenth of the output is refused rather than priced on part of its mix. An hour counts only
once as many fuels are reported for it as for the fullest hour of the answer: the newest hours
fill in over time. EIA publishes no forecast of generation by fuel here: forecast() is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.factors import mix_intensity
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
from carbonwrap.intensity.providers.eia_areas import AREAS

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://api.eia.gov/v2"
HOUR_S = 3600.0
PAGE_ROWS = 5000  # the API's largest `length`
MAX_PAGES = 10  # 50,000 rows: about six months of one authority's hours
LATEST_LOOKBACK_S = 72 * HOUR_S  # the grid monitor runs hours to a day late
MIN_COVERED_SHARE = 0.9
# EIA-930 fuel codes -> factors.FUELS, as electricitymaps-contrib reads them (EIA.py TYPES).
FUEL_KEYS: dict[str, str] = {
    "BM": "biomass",
    "COL": "coal",
    "NG": "gas",
    "GEO": "geothermal",
    "WAT": "hydro",
    "NUC": "nuclear",
    "OIL": "oil",
    "SUN": "solar",
    "OTH": "other",
    "WND": "wind",
    "BAT": "storage",
    "PS": "storage",
}

_TIMEOUTS = Timeouts()


class Eia(HttpProvider):
    """The `Provider` for one balancing authority, by its EIA respondent code ("CISO")."""

    name = "eia"
    resolution_s = HOUR_S
    signal = AVERAGE

    def __init__(
        self,
        key: str,
        respondent: str,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not key:
            raise ValueError("EIA needs a key: set CARBONWRAP_EIA_KEY (free at eia.gov/opendata)")
        if respondent not in AREAS.values():
            raise ValueError(f"EIA respondent {respondent!r} is not a balancing authority we map")
        self._key = key
        self.respondent = respondent
        self._keep(respondent, base, timeouts, retries, sleep, now)

    async def _rows(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float, order: str, pages: int
    ) -> list[Any]:
        rows: list[Any] = []
        for page in range(pages):
            query = {
                "frequency": "hourly",
                "data[0]": "value",
                "facets[respondent][]": self.respondent,
                "start": _hour(start_s),
                "end": _hour(end_s),
                "sort[0][column]": "period",
                "sort[0][direction]": order,
                "offset": str(page * PAGE_ROWS),
                "length": str(PAGE_ROWS),
                "api_key": self._key,
            }
            doc = await get_json(
                session,
                f"{self.base}/electricity/rto/fuel-type-data/data/",
                params=query,
                timeouts=self._timeouts,
                retries=self._retries,
                sleep=self._sleep,
            )
            found = _data(doc, self.source)
            rows += found
            total = doc["response"].get("total")
            if len(found) < PAGE_ROWS or (isinstance(total, int) and len(rows) >= total):
                break
        return rows

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest complete hour of the last three days: LATEST, though it is hours (up to a
        day) old: its window says which hour it is."""
        now_s = self._now()
        rows = await self._rows(session, now_s - LATEST_LOOKBACK_S, now_s + HOUR_S, "desc", 1)
        return parse_latest({"response": {"data": rows}}, self.respondent, self.source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Complete hours overlapping [start_s, end_s) as MEASURED; [] where none are out yet."""
        if end_s <= start_s:
            return []
        # Labels are hour ends: the hour holding start_s is labelled after it.
        rows = await self._rows(session, start_s, end_s + HOUR_S, "asc", MAX_PAGES)
        points = parse_hours({"response": {"data": rows}}, self.respondent, MEASURED, self.source)
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """No forecast of generation by fuel."""
        return []


def parse_latest(doc: Any, respondent: str, source: str) -> IntensityPoint:
    """The newest complete hour as a LATEST point."""
    points = parse_hours(doc, respondent, LATEST, source)
    if not points:
        raise ProviderError(f"{source}: no hour with generation by fuel in the answer")
    return points[-1]


def parse_hours(doc: Any, respondent: str, kind: str, source: str) -> list[IntensityPoint]:
    """The answer's complete hours for `respondent` as points, oldest first; rows of other
    respondents are ignored. Raises ProviderError for a wrong shape, period or value."""
    mixes: dict[float, dict[str, float]] = {}
    for i, row in enumerate(_data(doc, source)):
        what = f"data[{i}]"
        if not isinstance(row, Mapping):
            raise ProviderError(f"{source}: {what} is {type(row).__name__}, expected an object")
        if row.get("respondent") != respondent:
            continue
        end_s = _period_end_s(row.get("period"), source, what)
        fuel = row.get("fueltype")
        if not isinstance(fuel, str) or not fuel:
            raise ProviderError(f"{source}: {what}.fueltype is {fuel!r}, expected a code")
        mw = _mw(row.get("value"), source, what)
        if mw is not None:
            mixes.setdefault(end_s, {})[fuel] = mw
    if not mixes:
        return []
    fullest = max(len(mix) for mix in mixes.values())
    return [
        IntensityPoint(
            end_s - HOUR_S,
            end_s,
            hour_intensity(mixes[end_s], source, _label(end_s)),
            kind,
            AVERAGE,
            source,
        )
        for end_s in sorted(mixes)
        if len(mixes[end_s]) == fullest
    ]


def hour_intensity(mix_mw: Mapping[str, float], source: str, what: str) -> float:
    """g/kWh of one hour's {EIA fuel code: MW}; ProviderError where the codes we know cover
    less than MIN_COVERED_SHARE of the output, or none has output."""
    named: dict[str, float] = {}
    for code, mw in mix_mw.items():
        key = FUEL_KEYS.get(code, f"EIA:{code}")
        named[key] = named.get(key, 0.0) + mw
    try:
        mix = mix_intensity(named)
    except ValueError:
        raise ProviderError(f"{source}: {what} has no positive generation") from None
    if mix.covered_share < MIN_COVERED_SHARE:
        codes = ", ".join(name.removeprefix("EIA:") for name in mix.unknown)
        raise ProviderError(
            f"{source}: {what}: fuel codes {codes} carry {1 - mix.covered_share:.0%} of the"
            " output and have no factor"
        )
    value = checked_value(mix.intensity_g_per_kwh, source, what)
    return mix.intensity_g_per_kwh if value is None else value


def _data(doc: Any, source: str) -> list[Any]:
    response = doc.get("response") if isinstance(doc, Mapping) else None
    if not isinstance(response, Mapping):
        raise ProviderError(f"{source}: answer has no 'response' object")
    data = response.get("data")
    if not isinstance(data, list):
        raise ProviderError(f"{source}: answer has no 'response.data' list")
    return data


def _period_end_s(period: Any, source: str, what: str) -> float:
    if not isinstance(period, str):
        raise ProviderError(f"{source}: {what}.period is {period!r}, expected YYYY-MM-DDTHH")
    try:
        when = dt.datetime.strptime(period, "%Y-%m-%dT%H")
    except ValueError:
        raise ProviderError(f"{source}: {what}.period {period!r} is not YYYY-MM-DDTHH") from None
    return when.replace(tzinfo=dt.timezone.utc).timestamp()


def _mw(value: Any, source: str, what: str) -> float | None:
    """A row's MWh (= mean MW over its hour); None is a gap. The API has sent numbers as
    strings (electricitymaps-contrib converts with float())."""
    if value is None:
        return None
    number = value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: said below
            number = float(value)
    if (
        isinstance(number, bool)
        or not isinstance(number, (int, float))
        or not math.isfinite(number)
    ):
        raise ProviderError(f"{source}: {what}.value is {value!r}, expected a number")
    return float(number)


def _hour(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y-%m-%dT%H")


def _label(end_s: float) -> str:
    return f"hour ending {_hour(end_s)}Z"


if TYPE_CHECKING:

    def _is_a_provider(p: Eia) -> Provider:
        return p
