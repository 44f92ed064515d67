"""GB Carbon Intensity API (NESO): national or regional (by postcode outward code), no key.

API reference: https://carbon-intensity.github.io/api-definitions/ (API_NOTES.md §2).
Values are gCO2/kWh of GB generation (operational, incl. imports and T&D losses): AVERAGE signal.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from carbonwrap.intensity.http import Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MAX_G_PER_KWH,
    MEASURED,
    IntensityPoint,
    ProviderError,
)

if TYPE_CHECKING:
    import aiohttp

DEFAULT_BASE = "https://api.carbonintensity.org.uk"
SLOT_S = 1800.0  # the API publishes half-hour slots
MAX_RANGE_S = 14 * 86400.0  # /intensity/{from}/{to} answers at most 14 days
_HEADERS = {"Accept": "application/json"}
_TIMEOUTS = Timeouts()

# UK postcode = outward code (area letters, district digit, optional digit/letter) + inward code.
_OUTWARD = r"[A-Z]{1,2}[0-9][A-Z0-9]?"
_OUTWARD_RE = re.compile(rf"^{_OUTWARD}$")
_FULL_RE = re.compile(rf"^({_OUTWARD})\s*[0-9][A-Z]{{2}}$")
# The postcode areas of Great Britain (the letters of the outward code). Not on the GB grid, so not
# in this API: BT (Northern Ireland), GY and JE (Channel Islands), IM (Isle of Man).
# fmt: off
GB_AREAS = frozenset({
    "AB", "AL", "B", "BA", "BB", "BD", "BH", "BL", "BN", "BR", "BS", "CA", "CB", "CF", "CH", "CM",
    "CO", "CR", "CT", "CV", "CW", "DA", "DD", "DE", "DG", "DH", "DL", "DN", "DT", "DY", "E", "EC",
    "EH", "EN", "EX", "FK", "FY", "G", "GL", "GU", "HA", "HD", "HG", "HP", "HR", "HS", "HU", "HX",
    "IG", "IP", "IV", "KA", "KT", "KW", "KY", "L", "LA", "LD", "LE", "LL", "LN", "LS", "LU", "M",
    "ME", "MK", "ML", "N", "NE", "NG", "NN", "NP", "NR", "NW", "OL", "OX", "PA", "PE", "PH", "PL",
    "PO", "PR", "RG", "RH", "RM", "S", "SA", "SE", "SG", "SK", "SL", "SM", "SN", "SO", "SP", "SR",
    "SS", "ST", "SW", "SY", "TA", "TD", "TF", "TN", "TQ", "TR", "TS", "TW", "UB", "W", "WA", "WC",
    "WD", "WF", "WN", "WR", "WS", "WV", "YO", "ZE",
})
# fmt: on


def outward_code(postcode: str) -> str:
    """The outward code ("RG10") of a GB postcode or outward code; ValueError if it is neither."""
    text = postcode.strip().upper()
    full = _FULL_RE.match(text)
    outward = full.group(1) if full else text
    if not _OUTWARD_RE.match(outward):
        raise ValueError(
            f"{postcode!r} is not a GB postcode or outward code: "
            "give the outward code (RG10) or a full postcode (RG10 1AA)"
        )
    area = outward[:2] if outward[1].isalpha() else outward[:1]
    if area not in GB_AREAS:
        raise ValueError(
            f"{postcode!r} is not a GB postcode or outward code: {area} is not a postcode area "
            "of Great Britain (the GB Carbon Intensity API has no Northern Ireland, Channel "
            "Islands or Isle of Man); give e.g. RG10 or RG10 1AA"
        )
    return outward


class UkGrid:
    """National GB intensity, or the regional forecast for one postcode outward code.

    `latest` is the current half hour as LATEST: the national `actual` when published (an estimate
    from metered generation, revised later, so not MEASURED), else the forecast. Regional values
    are forecasts only: regional `history` is [] (nothing measured to replace them with).
    `now` is the wall clock (epoch s), injectable for tests.
    """

    name = "ukgrid"
    resolution_s = SLOT_S
    signal = AVERAGE

    def __init__(
        self,
        postcode: str | None = None,
        base: str = DEFAULT_BASE,
        *,
        now: Callable[[], float] = time.time,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
    ) -> None:
        self.postcode = None if postcode is None else outward_code(postcode)
        self.base = base.rstrip("/")
        self.source = f"ukgrid:{self.postcode or 'national'}"
        self._now = now
        self._timeouts = timeouts
        self._retries = retries

    def __repr__(self) -> str:
        return f"UkGrid(postcode={self.postcode!r}, base={self.base!r})"

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        now_s = self._now()
        if self.postcode is None:
            points = parse_national(await self._get(session, "/intensity"), self.source, now_s)
        else:
            path = f"/regional/postcode/{self.postcode}"
            points = parse_regional(await self._get(session, path), self.source)
        return _current(points, now_s)._replace(kind=LATEST)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """National slots overlapping [start_s, end_s): MEASURED where the actual is final,
        LATEST where the slot is not over yet, FORECAST where no actual exists. Regional: []."""
        if self.postcode is not None or end_s <= start_s:
            return []
        now_s = self._now()
        chunks = []
        chunk_start = start_s
        while chunk_start < end_s:
            chunk_end = min(chunk_start + MAX_RANGE_S, end_s)
            path = f"/intensity/{_minute(chunk_start)}/{_minute(chunk_end, up=True)}"
            chunks.append(self._get(session, path))
            chunk_start = chunk_end
        by_start: dict[float, IntensityPoint] = {}
        for doc in await asyncio.gather(*chunks):
            for p in parse_national(doc, self.source, now_s):
                if p.end_s > start_s and p.start_s < end_s:
                    by_start[p.start_s] = p  # chunks share their boundary slot
        return [by_start[k] for k in sorted(by_start)]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """Slots from now on for 48 h: FORECAST, except a current slot with a provisional actual."""
        now_s = self._now()
        if self.postcode is None:
            doc = await self._get(session, f"/intensity/{_minute(now_s)}/fw48h")
            points = parse_national(doc, self.source, now_s)
        else:
            path = f"/regional/intensity/{_minute(now_s)}/fw48h/postcode/{self.postcode}"
            points = parse_regional(await self._get(session, path), self.source)
        # {from} also returns the slot that ends at {from}: keep only slots not yet over.
        return [p for p in points if p.end_s > now_s]

    async def _get(self, session: aiohttp.ClientSession, path: str) -> Any:
        return await get_json(
            session,
            self.base + path,
            headers=_HEADERS,
            timeouts=self._timeouts,
            retries=self._retries,
        )


def parse_national(doc: Any, source: str, now_s: float | None = None) -> list[IntensityPoint]:
    """Points from a national answer `{"data": [{from, to, intensity: {forecast, actual}}]}`.

    The value is `actual` when present, else `forecast`. Kind: MEASURED for an actual of a slot
    over by `now_s` (None: all are over), LATEST for an actual of a slot still running
    (provisional), FORECAST where only the forecast exists. Slots with neither are skipped;
    ProviderError when none is left or the answer is malformed.
    """
    points = []
    for slot in _slots(_data(doc, list), "data"):
        start_s, end_s, intensity = _slot_fields(slot)
        actual = _value(intensity.get("actual"), "actual")
        forecast = _value(intensity.get("forecast"), "forecast")
        if actual is not None:
            over = now_s is None or end_s <= now_s
            points.append(
                IntensityPoint(
                    start_s, end_s, actual, MEASURED if over else LATEST, AVERAGE, source
                )
            )
        elif forecast is not None:
            points.append(IntensityPoint(start_s, end_s, forecast, FORECAST, AVERAGE, source))
    if not points:
        raise ProviderError(f"{source}: the answer has no intensity values (all null)")
    return points


def parse_regional(doc: Any, source: str) -> list[IntensityPoint]:
    """FORECAST points from a regional answer: `data` is a list of region objects
    (`/regional/postcode/{pc}`) or one region object (`/regional/intensity/.../postcode/{pc}`),
    each with its own `data` list of slots `{from, to, intensity: {forecast}}`."""
    data = _data(doc, (list, dict))
    regions = data if isinstance(data, list) else [data]
    points = []
    for region in _slots(regions, "region"):
        for slot in _slots(region.get("data"), "region data"):
            start_s, end_s, intensity = _slot_fields(slot)
            forecast = _value(intensity.get("forecast"), "forecast")
            if forecast is not None:
                points.append(IntensityPoint(start_s, end_s, forecast, FORECAST, AVERAGE, source))
    if not points:
        raise ProviderError(f"{source}: the answer has no intensity values (all null)")
    return points


def _data(doc: Any, kinds: type | tuple[type, ...]) -> Any:
    if not isinstance(doc, dict):
        raise ProviderError(f"ukgrid: unexpected answer ({type(doc).__name__}, not an object)")
    error = doc.get("error")
    if error is not None:  # {"error": {"code": "400 Bad Request", "message": "..."}}
        if isinstance(error, dict):
            code, message = error.get("code", "error"), error.get("message", "")
            raise ProviderError(f"ukgrid: the API answered {code}: {message}"[:300])
        raise ProviderError(f"ukgrid: the API answered an error: {error}"[:300])
    data = doc.get("data")
    if not isinstance(data, kinds) or not data:
        raise ProviderError("ukgrid: the answer has no data")
    return data


def _slots(items: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not items:
        raise ProviderError(f"ukgrid: the answer has no {what}")
    if not all(isinstance(item, dict) for item in items):
        raise ProviderError(f"ukgrid: malformed {what} (not objects)")
    return items


def _slot_fields(slot: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    intensity = slot.get("intensity")
    if not isinstance(intensity, dict):
        raise ProviderError("ukgrid: a slot has no intensity object")
    start_s, end_s = _epoch_s(slot.get("from"), "from"), _epoch_s(slot.get("to"), "to")
    if end_s <= start_s:
        raise ProviderError(f"ukgrid: a slot ends before it starts ({slot.get('from')})")
    return start_s, end_s, intensity


def _epoch_s(text: Any, what: str) -> float:
    """Epoch seconds of "2018-01-20T12:00Z" (the API's format; any ISO 8601 with a zone)."""
    if not isinstance(text, str):
        raise ProviderError(f"ukgrid: slot field {what!r} is missing or not a time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(f"ukgrid: slot field {what!r} is not a time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ProviderError(f"ukgrid: slot field {what!r} has no time zone: {text[:40]!r}")
    return moment.timestamp()


def _value(value: Any, what: str) -> float | None:
    """A g/kWh value, None for null; ProviderError for wrong types and absurd values."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(f"ukgrid: {what} is not a number: {str(value)[:40]!r}")
    if not (0 <= value <= MAX_G_PER_KWH):  # also rejects NaN
        raise ProviderError(f"ukgrid: {what} {value} gCO2/kWh is outside 0..{MAX_G_PER_KWH:g}")
    return float(value)


def _current(points: list[IntensityPoint], now_s: float) -> IntensityPoint:
    """The slot holding now_s; else the latest one started by now; else the first."""
    for p in points:
        if p.start_s <= now_s < p.end_s:
            return p
    started = [p for p in points if p.start_s <= now_s]
    return max(started, key=lambda p: p.start_s) if started else points[0]


def _minute(epoch_s: float, up: bool = False) -> str:
    """The API's time format, YYYY-MM-DDThh:mmZ (UTC), floored (or ceiled) to the minute."""
    minute = math.ceil(epoch_s / 60) if up else math.floor(epoch_s / 60)
    return datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
