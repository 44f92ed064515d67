"""ENTSO-E Transparency Platform: actual generation per type (A75), priced by lifecycle factors.

GET {base}?securityToken=…&documentType=A75&processType=A16&in_Domain=<EIC>&periodStart=
yyyyMMddHHmm&periodEnd=… (UTC) answers a GL_MarketDocument: one TimeSeries per production type
(MktPSRType/psrType B01…B20), each with Periods (timeInterval start/end, resolution PT15M or
PT60M) of Points (position from 1, quantity in MW). A TimeSeries naming an
outBiddingZone_Domain instead of an inBiddingZone_Domain is consumption (pumping), not
generation. No data is an Acknowledgement_MarketDocument with Reason code 999. Sources: the API
guide, https://transparency.entsoe.eu/content/static_content/Static%20content/web%20api/Guide.html
(psrType and curveType code lists), and EnergieID/entsoe-py@fbd0d24 entsoe/parsers.py
(_parse_generation_timeseries) and series_parsers.py (curveType A03: a point holds until the
next position). The token goes in the query (securityToken), the one place the guide documents;
the http layer keeps it out of every reason. Values are production-based: imports ignored.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp

from carbonwrap.intensity.factors import mix_intensity
from carbonwrap.intensity.http import Timeouts, get_text
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
from carbonwrap.intensity.providers.entsoe_areas import AREAS, RESOLUTION_S

if TYPE_CHECKING:
    from carbonwrap.intensity.providers import Provider

DEFAULT_BASE = "https://web-api.tp.entsoe.eu/api"
MIN_COVERED_SHARE = 0.8  # below this share of output with a known fuel, no value
MIX_LABEL = "generation mix × lifecycle factors"
_LATEST_WINDOW_S = 6 * 3600.0  # ENTSO-E publishes with a lag of about an hour, some types later
_HOUR_S = 3600.0
_MAX_PERIOD_S = 370 * 86400.0  # one request spans a year at most: a longer period is wrong
# psrType (API guide, "PsrType") -> our fuel key. Coal-derived gas and peat are priced as coal,
# oil shale as oil, "Other renewable" (mostly biogas) as biomass; B10 is pumped-storage
# *generation* (its pumping is a separate outBiddingZone series), B25 storage discharge.
FUEL_OF_PSR: dict[str, str] = {
    "B01": "biomass",
    "B02": "lignite",
    "B03": "coal",
    "B04": "gas",
    "B05": "coal",
    "B06": "oil",
    "B07": "oil",
    "B08": "coal",
    "B09": "geothermal",
    "B10": "storage",
    "B11": "hydro",
    "B12": "hydro",
    "B13": "marine",
    "B14": "nuclear",
    "B15": "biomass",
    "B16": "solar",
    "B17": "waste",
    "B18": "wind_offshore",
    "B19": "wind",
    "B20": "other",
    "B25": "storage",
}
_RESOLUTION = re.compile(r"PT(\d{1,4})M")
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

_TIMEOUTS = Timeouts()


class _NoValues(ProviderError):
    """ENTSO-E has no data for the window (yet)."""


class Entsoe(HttpProvider):
    """The `Provider` for one bidding zone, keyed like AREAS ("DE", "SE-SE3"); needs a token."""

    name = "entsoe"
    resolution_s = RESOLUTION_S
    signal = AVERAGE

    def __init__(
        self,
        zone: str,
        token: str,
        base: str = DEFAULT_BASE,
        *,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], float] = time.time,
    ) -> None:
        if zone not in AREAS:
            raise ValueError(f"ENTSO-E: no bidding zone for {zone!r}: use one of {sorted(AREAS)}")
        if not token.strip():
            raise ValueError("ENTSO-E needs a security token")
        self.zone = zone
        self.eic = AREAS[zone]
        self._keep(zone, base, timeouts, retries, sleep, now)
        self.mix_source = f"{self.source} ({MIX_LABEL})"
        self._token = token.strip()

    async def _get(self, session: aiohttp.ClientSession, start_s: float, end_s: float) -> str:
        return await get_text(
            session,
            self.base,
            accept="application/xml",
            params={
                "securityToken": self._token,
                "documentType": "A75",
                "processType": "A16",
                "in_Domain": self.eic,
                "periodStart": _period(start_s, up=False),
                "periodEnd": _period(end_s, up=True),
            },
            timeouts=self._timeouts,
            retries=self._retries,
            sleep=self._sleep,
        )

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The newest complete step of the last few hours, priced: LATEST, valid for its step."""
        now_s = self._now()
        text = await self._get(session, now_s - _LATEST_WINDOW_S, now_s)
        return parse_latest(text, self.mix_source)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """Complete steps overlapping [start_s, end_s), priced, as MEASURED; [] where none yet."""
        if end_s <= start_s:
            return []
        text = await self._get(session, start_s, end_s)
        try:
            points = parse_history(text, self.mix_source)
        except _NoValues:
            return []
        return [p for p in points if p.end_s > start_s and p.start_s < end_s]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """[]: ENTSO-E forecasts total generation and wind/solar, not every production type."""
        return []


# --- pure parsers ----------------------------------------------------------------------------


def parse_latest(text: str, source: str) -> IntensityPoint:
    """The newest complete step of an A75 answer, priced, as a LATEST point. Raises
    ProviderError where there is none, or its known fuels cover too little of its output."""
    step_s, mixes = step_mixes(text, source)
    if not mixes:
        raise ProviderError(f"{source}: no complete step in the answer")
    start_s, mix = mixes[-1]
    value = _priced(mix, source, start_s)
    return IntensityPoint(start_s, start_s + step_s, value, LATEST, AVERAGE, source)


def parse_history(text: str, source: str) -> list[IntensityPoint]:
    """Every complete step of an A75 answer, priced, as MEASURED points, oldest first. Steps
    whose known fuels cover too little are left out; if none is left, the newest one's reason
    is raised. _NoValues (a ProviderError) where the answer says there is no data."""
    step_s, mixes = step_mixes(text, source)
    points: list[IntensityPoint] = []
    refused: ProviderError | None = None
    for start_s, mix in mixes:
        try:
            value = _priced(mix, source, start_s)
        except ProviderError as exc:
            refused = exc
            continue
        points.append(IntensityPoint(start_s, start_s + step_s, value, MEASURED, AVERAGE, source))
    if not points and refused is not None:
        raise refused
    if not points:
        raise _NoValues(f"{source}: no complete step in the answer")
    return points


def step_mixes(text: str, source: str) -> tuple[float, list[tuple[float, dict[str, float]]]]:
    """An A75 answer as (step width s, [(step start, {fuel: MW})]) for its complete steps.

    Series of different resolutions are spread onto the finest one (MW is an average power, so
    an hour's value holds for each of its quarters). A step is complete when every production
    type that reports anywhere in the answer has a value for it. Unknown psrTypes keep their
    code as the name. Consumption series (outBiddingZone_Domain) are left out.
    """
    series = _generation_series(text, source)
    if not series:
        raise _NoValues(f"{source}: no generation series in the answer")
    step_s = min(step for by_psr in series.values() for _, _, step in by_psr)
    grid: dict[str, dict[float, float]] = {}
    for psr, blocks in series.items():
        slots: dict[float, float] = {}
        for start_s, mw, width_s in blocks:
            t = start_s
            while t < start_s + width_s - 1e-6:
                slots.setdefault(t, mw)
                t += step_s
        grid[psr] = slots
    starts = sorted({t for slots in grid.values() for t in slots})
    mixes: list[tuple[float, dict[str, float]]] = []
    for t in starts:
        if any(t not in slots for slots in grid.values()):
            continue  # a production type not yet published for this step
        mix: dict[str, float] = collections.defaultdict(float)
        for psr, slots in grid.items():
            mix[FUEL_OF_PSR.get(psr, psr)] += slots[t]
        mixes.append((t, dict(mix)))
    return step_s, mixes


def _generation_series(text: str, source: str) -> dict[str, list[tuple[float, float, float]]]:
    """{psrType: [(start_s, MW, width_s)]} of the generation TimeSeries of an A75 answer."""
    root = _document(text, source)
    name = _local(root.tag)
    if name == "Acknowledgement_MarketDocument":
        code = _text(root, "Reason", "code")
        reason = _text(root, "Reason", "text") or "no reason given"
        if code == "999":
            raise _NoValues(f"{source}: no matching data ({reason})")
        raise ProviderError(f"{source}: request refused (code {code}: {reason})")
    if name != "GL_MarketDocument":
        raise ProviderError(f"{source}: answer is a {name}, expected a GL_MarketDocument")
    kind = _text(root, "type")
    if kind is not None and kind != "A75":
        raise ProviderError(f"{source}: answer is document type {kind!r}, asked for A75")
    series: dict[str, list[tuple[float, float, float]]] = collections.defaultdict(list)
    for n, ts in enumerate(_children(root, "TimeSeries")):
        what = f"TimeSeries[{n}]"
        if _child(ts, "inBiddingZone_Domain.mRID") is None:
            continue  # outBiddingZone only: consumption (pumping), not generation
        unit = _text(ts, "quantity_Measure_Unit.name")
        if unit is not None and unit != "MAW":
            raise ProviderError(f"{source}: {what} is in {unit!r}, expected MAW (MW)")
        psr = _text(ts, "MktPSRType", "psrType") or "unknown"
        fills = _text(ts, "curveType") == "A03"
        for period in _children(ts, "Period"):
            series[psr] += _blocks(period, fills, source, what)
    return dict(series)


def _blocks(
    period: ET.Element, fills: bool, source: str, what: str
) -> list[tuple[float, float, float]]:
    """(start_s, MW, width_s) per point of a Period; with curveType A03 a point holds until the
    next one's position (or the period's end), otherwise for one resolution step."""
    start_s = checked_time_s(_text(period, "timeInterval", "start"), source, f"{what} start")
    end_text = _text(period, "timeInterval", "end")
    found = _RESOLUTION.fullmatch(_text(period, "resolution") or "")
    if found is None or int(found.group(1)) == 0:
        raise ProviderError(f"{source}: {what} has an unknown resolution")
    step_s = int(found.group(1)) * 60.0
    end_s = checked_time_s(end_text, source, f"{what} end") if end_text else None
    if end_s is not None and not 0 < end_s - start_s <= _MAX_PERIOD_S:
        raise ProviderError(f"{source}: {what} has a time interval of a wrong length")
    points: dict[int, float] = {}
    for point in _children(period, "Point"):
        position, quantity = _text(point, "position"), _text(point, "quantity")
        try:
            index = int(position or "")
            mw = float(quantity or "")
        except ValueError:
            raise ProviderError(
                f"{source}: {what} has a point {position!r}: {quantity!r}"
            ) from None
        if index < 1 or not math.isfinite(mw):
            raise ProviderError(f"{source}: {what} has a point {position!r}: {quantity!r}")
        points.setdefault(index, mw)
    last = (round((end_s - start_s) / step_s) if end_s is not None else max(points, default=0)) + 1
    positions = sorted(points)
    blocks = []
    for k, index in enumerate(positions):
        upto = positions[k + 1] if k + 1 < len(positions) else last
        width = (upto - index) if fills else 1
        blocks.append((start_s + (index - 1) * step_s, points[index], max(width, 1) * step_s))
    return blocks


def _priced(mix: Mapping[str, float], source: str, start_s: float) -> float:
    when = dt.datetime.fromtimestamp(start_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    try:
        priced = mix_intensity(mix)
    except ValueError:
        raise ProviderError(f"{source}: no positive generation at {when}") from None
    if priced.covered_share < MIN_COVERED_SHARE:
        raise ProviderError(
            f"{source}: only {priced.covered_share:.0%} of the generation at {when} is of a "
            f"known type (unknown psrType: {', '.join(priced.unknown)})"
        )
    value = checked_value(priced.intensity_g_per_kwh, source, "priced mix")
    assert value is not None  # mix_intensity returns a number
    return value


def _document(text: str, source: str) -> ET.Element:
    """The parsed answer. A DOCTYPE or ENTITY declaration is refused before parsing: the API
    sends none, and entities are how an XML bomb grows (defusedxml is not available)."""
    raw = text.encode("utf-8")
    if _DECLARATION.search(raw):
        raise ProviderError(f"{source}: answer declares a DOCTYPE or ENTITY: refused")
    try:
        return ET.fromstring(raw)
    except ET.ParseError:
        raise ProviderError(f"{source}: malformed XML in the answer") from None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: ET.Element, *path: str) -> str | None:
    """The stripped text at `path` below `element` (namespace-agnostic); None if absent."""
    node: ET.Element | None = element
    for name in path:
        node = _child(node, name) if node is not None else None
    if node is None or node.text is None:
        return None
    return node.text.strip()


def _period(epoch_s: float, *, up: bool) -> str:
    """`epoch_s` as periodStart/periodEnd "yyyyMMddHHmm" (UTC), rounded to the whole hour."""
    hour_s = (math.ceil if up else math.floor)(epoch_s / _HOUR_S) * _HOUR_S
    return dt.datetime.fromtimestamp(hour_s, dt.timezone.utc).strftime("%Y%m%d%H%M")


if TYPE_CHECKING:

    def _is_a_provider(p: Entsoe) -> Provider:
        return p
