"""Energy-Charts (Fraunhofer ISE): European countries' generation mix, priced by lifecycle factors.

No key. GET {base}/public_power?country=de&start=…&end=… answers
`{"unix_seconds": [...], "production_types": [{"name": "Fossil gas", "data": [MW | null, ...]}]}`
(API docs: https://api.energy-charts.info, Swagger; the names as parsed by the clients
alexanderblinn/Energy-Charts@747045e8 src/api_accessor.py and katrinleinweber/Energy-Charts).
Each 15-minute step's production is priced with carbonwrap.intensity.factors: a value is
production-based (imports ignored), refused where less than MIN_COVERED_SHARE of the output has
a known fuel. Where Energy-Charts publishes its own CO2eq series (GET {base}/co2eq?country=…,
`{"unix_seconds", "co2eq", "co2eq_forecast"}`, in gCO2eq/kWh; shape from
bluehands/Carbon-Aware-Computing@7fc7b60 src/CarbonAwareComputing.ForecastUpdater/EnergyCharts/)
that series is used instead, with its forecast. Inferred, not documented: each unix_seconds
labels the start of its step.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from carbonwrap.intensity.factors import mix_intensity
from carbonwrap.intensity.http import HttpError, Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
    checked_value,
)
from carbonwrap.intensity.providers.common import HttpProvider
from carbonwrap.intensity.providers.energycharts_areas import (
    AREAS,
    CO2EQ_AREAS,
    RESOLUTION_S,
)

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://api.energy-charts.info"
MIN_COVERED_SHARE = 0.8  # below this share of output with a known fuel, no value
_LATEST_WINDOW_S = 6 * 3600.0  # how far back latest() looks for a complete step
# Energy-Charts' production type names -> our fuel keys; None: not production (load, trade,
# shares, pumping consumption, storage capacity), never counted. Names not listed count as
# output of an unknown fuel. "Other renewables" is mostly biogas: priced as biomass.
FUEL_OF: dict[str, str | None] = {
    "Biomass": "biomass",
    "Fossil brown coal / lignite": "lignite",
    "Fossil hard coal": "coal",
    "Fossil coal-derived gas": "coal",
    "Fossil peat": "coal",
    "Fossil oil": "oil",
    "Fossil oil shale": "oil",
    "Fossil gas": "gas",
    "Geothermal": "geothermal",
    "Hydro Run-of-River": "hydro",
    "Hydro water reservoir": "hydro",
    "Hydro pumped storage": "storage",
    "Battery Storage (Power)": "storage",
    "Marine": "marine",
    "Nuclear": "nuclear",
    "Others": "other",
    "Other, non-renewable": "other",
    "Other renewables": "biomass",
    "Solar": "solar",
    "Waste": "waste",
    "Wind offshore": "wind_offshore",
    "Wind onshore": "wind",
    "Hydro pumped storage consumption": None,
    "Battery Storage (Capacity)": None,
    "Cross border electricity trading": None,
    "Import Balance": None,
    "Load": None,
    "Load (incl. self-consumption)": None,
    "Residual load": None,
    "Renewable share of generation": None,
    "Renewable share of load": None,
    "System inertia": None,
}

# What each point's source says of its basis (energycharts_areas.BASIS, CO2EQ_BASIS in full).
MIX_LABEL = "generation mix × lifecycle factors"
CO2EQ_LABEL = "Energy-Charts CO2eq"
_TIMEOUTS = Timeouts()


class _NoValues(ProviderError):
    """The answer holds no value: for /co2eq, the cue to price the generation mix instead."""


class EnergyCharts(HttpProvider):
    """The `Provider` for one country Energy-Charts serves, keyed like AREAS ("DE", "GB")."""

    name = "energycharts"
    resolution_s = RESOLUTION_S
    signal = AVERAGE

    def __init__(
        self,
        zone: str,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if zone not in AREAS:
            raise ValueError(f"Energy-Charts serves no zone {zone!r}: use one of {sorted(AREAS)}")
        self.zone = zone
        self.country = AREAS[zone]
        self._keep(zone, base, timeouts, retries, sleep, now)
        self.mix_source = f"{self.source} ({MIX_LABEL})"
        self.co2eq_source = f"{self.source} ({CO2EQ_LABEL})"
        self._co2eq = zone in CO2EQ_AREAS

    async def _get(self, session: aiohttp.ClientSession, path: str, **params: str) -> Any:
        return await get_json(
            session,
            f"{self.base}/{path}",
            params={"country": self.country, **params},
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def _co2eq_doc(self, session: aiohttp.ClientSession, **params: str) -> Any | None:
        """The /co2eq answer, or None where this country has none (4xx: not served there)."""
        if not self._co2eq:
            return None
        try:
            return await self._get(session, "co2eq", **params)
        except HttpError as exc:
            if exc.status in (400, 404, 422):
                return None
            raise

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest measured value: /co2eq where published, else the newest complete step of
        the generation mix in the last few hours. LATEST, valid for its own step."""
        doc = await self._co2eq_doc(session)
        if doc is not None:
            try:
                return parse_co2eq(doc, "co2eq", LATEST, self.co2eq_source)[-1]
            except _NoValues:
                pass
        now_s = self._now()
        doc = await self._get(
            session,
            "public_power",
            start=_minute(now_s - _LATEST_WINDOW_S),
            end=_minute(now_s, up=True),
        )
        return parse_latest_mix(doc, self.mix_source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Measured values overlapping [start_s, end_s) as MEASURED; [] where none yet."""
        if end_s <= start_s:
            return []
        window = {"start": _minute(start_s - RESOLUTION_S), "end": _minute(end_s, up=True)}
        points: list[IntensityPoint] = []
        doc = await self._co2eq_doc(session, **window)
        if doc is not None:
            try:
                points = parse_co2eq(doc, "co2eq", MEASURED, self.co2eq_source)
            except _NoValues:
                points = []
        if not points:
            doc = await self._get(session, "public_power", **window)
            try:
                points = parse_history_mix(doc, self.mix_source)
            except _NoValues:
                return []  # the window is not published yet
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """Energy-Charts' own CO2eq forecast from the current step on; [] where it has none (the
        generation mix has no forecast of every production type)."""
        doc = await self._co2eq_doc(session)
        if doc is None:
            return []
        try:
            points = parse_co2eq(doc, "co2eq_forecast", FORECAST, self.co2eq_source)
        except _NoValues:
            return []
        now_s = self._now()
        return [p for p in points if p.end_s > now_s]


# --- pure parsers ----------------------------------------------------------------------------


def parse_co2eq(doc: Any, field: str, kind: str, source: str) -> list[IntensityPoint]:
    """The non-null values of `field` ("co2eq" or "co2eq_forecast") of a /co2eq answer as
    points of `kind`, oldest first. Raises ProviderError for a wrong shape, _NoValues if none."""
    times_s, step_s = _times(doc, source)
    values = _series(doc, field, len(times_s), source)
    points: list[IntensityPoint] = []
    for i, (start_s, raw) in enumerate(zip(times_s, values, strict=True)):
        value = checked_value(raw, source, f"{field}[{i}]")
        if value is not None:
            points.append(IntensityPoint(start_s, start_s + step_s, value, kind, AVERAGE, source))
    if not points:
        raise _NoValues(f"{source}: no {field} values in the answer")
    return points


def parse_latest_mix(doc: Any, source: str) -> IntensityPoint:
    """The newest complete step of a /public_power answer, priced, as a LATEST point.

    Raises ProviderError where no step is complete, or the newest complete one has less than
    MIN_COVERED_SHARE of its output from known fuels (the reason names the unknown types)."""
    times_s, step_s, mixes = step_mixes(doc, source)
    if not mixes:
        raise ProviderError(f"{source}: no complete step in the answer")
    i, mix = mixes[-1]
    value = _priced(mix, source, times_s[i])
    return IntensityPoint(times_s[i], times_s[i] + step_s, value, LATEST, AVERAGE, source)


def parse_history_mix(doc: Any, source: str) -> list[IntensityPoint]:
    """Every complete step of a /public_power answer, priced, as MEASURED points, oldest first.

    A step whose known fuels cover too little is left out; if that leaves none, the newest
    one's reason is raised. _NoValues where no step is complete (not published yet)."""
    times_s, step_s, mixes = step_mixes(doc, source)
    if not mixes:
        raise _NoValues(f"{source}: no complete step in the answer")
    points: list[IntensityPoint] = []
    refused: ProviderError | None = None
    for i, mix in mixes:
        try:
            value = _priced(mix, source, times_s[i])
        except ProviderError as exc:
            refused = exc
            continue
        points.append(
            IntensityPoint(times_s[i], times_s[i] + step_s, value, MEASURED, AVERAGE, source)
        )
    if not points and refused is not None:
        raise refused
    return points


def step_mixes(
    doc: Any, source: str
) -> tuple[list[float], float, list[tuple[int, dict[str, float]]]]:
    """A /public_power answer as (step starts, step width s, [(step index, {fuel: MW})]) for the
    complete steps: those where every production type that reports at all has a value.
    Production types are summed per fuel key; unknown names keep their own name."""
    times_s, step_s = _times(doc, source)
    types = doc.get("production_types")
    if not isinstance(types, list):
        raise ProviderError(f"{source}: answer has no 'production_types' list")
    produced: list[tuple[str, list[float | None]]] = []
    for j, entry in enumerate(types):
        what = f"production_types[{j}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ProviderError(f"{source}: {what} has no name")
        name: str = entry["name"]
        if name in FUEL_OF and FUEL_OF[name] is None:
            continue  # load, trade, shares, pumping: not production
        data = _series(entry, "data", len(times_s), f"{source}: {what}")
        values = [_mw(v, source, f"{what}.data[{i}]") for i, v in enumerate(data)]
        if any(v is not None for v in values):
            produced.append((FUEL_OF.get(name) or name, values))
    mixes: list[tuple[int, dict[str, float]]] = []
    for i in range(len(times_s)):
        if not produced or any(values[i] is None for _, values in produced):
            continue  # a type not yet published for this step: the step is not complete
        mix: dict[str, float] = collections.defaultdict(float)
        for fuel, values in produced:
            mix[fuel] += values[i] or 0.0
        mixes.append((i, dict(mix)))
    return times_s, step_s, mixes


def _priced(mix: Mapping[str, float], source: str, start_s: float) -> float:
    when = dt.datetime.fromtimestamp(start_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    try:
        priced = mix_intensity(mix)
    except ValueError:
        raise ProviderError(f"{source}: no positive generation at {when}") from None
    if priced.covered_share < MIN_COVERED_SHARE:
        raise ProviderError(
            f"{source}: only {priced.covered_share:.0%} of the generation at {when} is of a "
            f"known type (unknown: {', '.join(priced.unknown)})"
        )
    value = checked_value(priced.intensity_g_per_kwh, source, "priced mix")
    assert value is not None  # mix_intensity returns a number
    return value


def _times(doc: Any, source: str) -> tuple[list[float], float]:
    """unix_seconds, checked, and the step width: the most common gap, RESOLUTION_S for one."""
    if not isinstance(doc, Mapping):
        raise ProviderError(f"{source}: answer is {type(doc).__name__}, expected an object")
    raw = doc.get("unix_seconds")
    if not isinstance(raw, list):
        raise ProviderError(f"{source}: answer has no 'unix_seconds' list")
    times_s: list[float] = []
    for i, t in enumerate(raw):
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ProviderError(f"{source}: unix_seconds[{i}] is {t!r}, expected a number")
        if times_s and t <= times_s[-1]:
            raise ProviderError(f"{source}: unix_seconds[{i}] does not increase")
        times_s.append(float(t))
    if not times_s:
        raise _NoValues(f"{source}: no steps in the answer")
    gaps = collections.Counter(b - a for a, b in itertools.pairwise(times_s))
    step_s = gaps.most_common(1)[0][0] if gaps else RESOLUTION_S
    return times_s, step_s


def _series(doc: Mapping[str, Any], field: str, n: int, where: str) -> Sequence[Any]:
    values = doc.get(field)
    if not isinstance(values, list):
        raise ProviderError(f"{where} has no '{field}' list")
    if len(values) != n:
        raise ProviderError(f"{where}: '{field}' has {len(values)} values for {n} steps")
    return values


def _mw(value: Any, source: str, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ProviderError(f"{source}: {field} is {value!r}, expected a number of MW")
    return float(value)


def _minute(epoch_s: float, *, up: bool = False) -> str:
    """`epoch_s` as the API's "yyyy-MM-ddTHH:mmZ" (UTC), rounded down (or up) to the minute."""
    minute_s = (math.ceil if up else math.floor)(epoch_s / 60) * 60
    return dt.datetime.fromtimestamp(minute_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


if TYPE_CHECKING:

    def _is_a_provider(p: EnergyCharts) -> Provider:
        return p
