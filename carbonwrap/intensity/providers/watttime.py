"""WattTime API v3: login token, region from location, nowcast, forecast and history.

API reference: https://docs.watttime.org (API_NOTES.md §4). `co2_moer` (the default, and all a
free account gets) is a MARGINAL emissions rate; only `co2_aoer` is an AVERAGE intensity.
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from carbonwrap.intensity.http import HttpError, Timeouts, get_json
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MARGINAL,
    MAX_G_PER_KWH,
    MEASURED,
    IntensityPoint,
    ProviderError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    import aiohttp

DEFAULT_BASE = "https://api.watttime.org"
G_PER_KWH_PER_LBS_PER_MWH = 0.45359237  # 453.59237 g/lb over 1000 kWh/MWh
LBS_PER_MWH = "lbs_co2_per_mwh"
PERCENTILE = "percentile"  # /v3/signal-index: a rank, not an intensity
SIGNALS = {"co2_moer": MARGINAL, "co2_aoer": AVERAGE}
TOKEN_RENEW_S = 25 * 60.0  # tokens last 30 min: renew with 5 min to spare
MAX_RANGE_S = 31 * 86400.0  # /v3/historical allows 32 days: keep a day's margin
AOER_LOOKBACK_S = 3600.0  # co2_aoer has no forecast: `latest` is the newest historical point
_TIMEOUTS = Timeouts()


class WattTime:
    """WattTime v3 for one region (given, or looked up once from lat/lon) and one signal type.

    Credentials and the token are private: `repr` masks them and no reason ever names them.
    `clock` (monotonic s) times the token; `now` (epoch s) is the wall clock; both injectable.
    """

    name = "watttime"
    resolution_s = 300.0  # 5-minute points

    def __init__(
        self,
        username: str,
        password: str,
        region: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        signal_type: str = "co2_moer",
        base: str = DEFAULT_BASE,
        clock: Callable[[], float] = time.monotonic,
        *,
        now: Callable[[], float] = time.time,
        timeouts: Timeouts = _TIMEOUTS,
        retries: int = 2,
    ) -> None:
        if signal_type not in SIGNALS:
            known = ", ".join(SIGNALS)
            raise ValueError(f"WattTime signal type {signal_type!r} is not one of: {known}")
        if region is None and (lat is None or lon is None):
            raise ValueError("WattTime needs a region (CAISO_NORTH) or a location (lat and lon)")
        if not username or not password:
            raise ValueError(
                "WattTime needs a username and a password "
                "(CARBONWRAP_WATTTIME_USERNAME, CARBONWRAP_WATTTIME_PASSWORD)"
            )
        # The Basic header is built here, not with aiohttp.BasicAuth (deprecated by recent aiohttp).
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._basic = {"Authorization": f"Basic {credentials}"}
        self.region = region
        self.lat, self.lon = lat, lon
        self.signal_type = signal_type
        self.signal = SIGNALS[signal_type]
        self.base = base.rstrip("/")
        self._clock = clock
        self._now = now
        self._timeouts = timeouts
        self._retries = retries
        self._token: str | None = None
        self._token_at = -math.inf
        self._login_lock = asyncio.Lock()
        self._region_lock = asyncio.Lock()

    def __repr__(self) -> str:
        where = self.region if self.region is not None else f"lat={self.lat}, lon={self.lon}"
        return (
            f"WattTime(username='***', password='***', region={where!r}, "
            f"signal_type={self.signal_type!r}, base={self.base!r})"
        )

    @property
    def source(self) -> str:
        return f"watttime:{self.region or '?'}:{self.signal_type}"

    async def latest(self, session: aiohttp.ClientSession) -> IntensityPoint:
        """The nowcast (`/v3/forecast`, horizon 0) as LATEST; for co2_aoer, which has no
        forecast, the newest point of the last hour's history."""
        region = await self._region(session)
        if self.signal_type == "co2_aoer":
            now_s = self._now()
            params = _range_params(now_s - AOER_LOOKBACK_S, now_s)
            doc = await self._get(session, "/v3/historical", region, params)
            points = parse_points(doc, self.source, MEASURED, self.signal_type)
            return max(points, key=lambda p: p.start_s)._replace(kind=LATEST)
        doc = await self._get(session, "/v3/forecast", region, {"horizon_hours": "0"})
        return parse_points(doc, self.source, LATEST, self.signal_type)[0]

    async def forecast(self, session: aiohttp.ClientSession) -> list[IntensityPoint]:
        """`/v3/forecast` as FORECAST 5-minute points; [] for co2_aoer (WattTime has none)."""
        if self.signal_type == "co2_aoer":
            return []
        region = await self._region(session)
        doc = await self._get(session, "/v3/forecast", region, {})
        return parse_points(doc, self.source, FORECAST, self.signal_type)

    async def history(
        self, session: aiohttp.ClientSession, start_s: float, end_s: float
    ) -> list[IntensityPoint]:
        """`/v3/historical` points overlapping [start_s, end_s) as MEASURED, ≤31 days a call."""
        if end_s <= start_s:
            return []
        region = await self._region(session)
        by_start: dict[float, IntensityPoint] = {}
        chunk_start = start_s
        while chunk_start < end_s:  # one after another: the login and rate limits are per user
            chunk_end = min(chunk_start + MAX_RANGE_S, end_s)
            doc = await self._get(
                session, "/v3/historical", region, _range_params(chunk_start, chunk_end)
            )
            for p in parse_points(doc, self.source, MEASURED, self.signal_type, allow_empty=True):
                if p.end_s > start_s and p.start_s < end_s:
                    by_start[p.start_s] = p
            chunk_start = chunk_end
        return [by_start[k] for k in sorted(by_start)]

    async def percentile(self, session: aiohttp.ClientSession) -> float:
        """`/v3/signal-index`: where now ranks (0-100) among recent values. NOT an intensity."""
        region = await self._region(session)
        doc = await self._get(session, "/v3/signal-index", region, {})
        return parse_percentile(doc)

    async def _region(self, session: aiohttp.ClientSession) -> str:
        async with self._region_lock:  # concurrent first calls share one lookup
            return await self._lookup_region(session)

    async def _lookup_region(self, session: aiohttp.ClientSession) -> str:
        if self.region is None:
            params = {
                "latitude": str(self.lat),
                "longitude": str(self.lon),
                "signal_type": self.signal_type,
            }
            doc = await self._authorized(session, "/v3/region-from-loc", params)
            region = doc.get("region") if isinstance(doc, dict) else None
            if not isinstance(region, str) or not region:
                raise ProviderError(f"watttime: no region for {self.lat},{self.lon}")
            self.region = region  # a location's region does not change: ask once
        return self.region

    async def _get(
        self,
        session: aiohttp.ClientSession,
        path: str,
        region: str,
        params: Mapping[str, str],
    ) -> Any:
        full = {"region": region, "signal_type": self.signal_type, **params}
        return await self._authorized(session, path, full)

    async def _authorized(
        self, session: aiohttp.ClientSession, path: str, params: Mapping[str, str]
    ) -> Any:
        """GET with the bearer token; on 401 log in again once and retry."""
        token = await self._valid_token(session)
        try:
            return await self._get_json(session, path, params, token)
        except HttpError as e:
            if e.status != 401:
                raise
        token = await self._valid_token(session, rejected=token)
        try:
            return await self._get_json(session, path, params, token)
        except HttpError as e:
            if e.status == 401:
                raise ProviderError(
                    f"watttime: {path}: a fresh token was rejected (HTTP 401) twice"
                ) from None
            raise

    async def _get_json(
        self,
        session: aiohttp.ClientSession,
        path: str,
        params: Mapping[str, str],
        token: str,
    ) -> Any:
        return await get_json(
            session,
            self.base + path,
            params=dict(params),
            headers={"Authorization": f"Bearer {token}"},
            timeouts=self._timeouts,
            retries=self._retries,
        )

    async def _valid_token(
        self, session: aiohttp.ClientSession, rejected: str | None = None
    ) -> str:
        """The current token, logging in when there is none, it is 25 min old, or it is
        `rejected`. The lock makes concurrent callers share one login."""
        async with self._login_lock:
            stale = self._clock() - self._token_at >= TOKEN_RENEW_S
            if self._token is None or stale or self._token == rejected:
                self._token = await self._login(session)
                self._token_at = self._clock()
            return self._token

    async def _login(self, session: aiohttp.ClientSession) -> str:
        try:
            doc = await get_json(
                session,
                self.base + "/login",
                headers=self._basic,
                timeouts=self._timeouts,
                retries=self._retries,
            )
        except HttpError as e:
            if e.status in (401, 403):
                raise ProviderError(
                    f"watttime: login refused (HTTP {e.status}): check "
                    "CARBONWRAP_WATTTIME_USERNAME and CARBONWRAP_WATTTIME_PASSWORD"
                ) from None
            raise
        token = doc.get("token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise ProviderError("watttime: the login answer has no token")
        return token


def parse_points(
    doc: Any, source: str, kind: str, signal_type: str, *, allow_empty: bool = False
) -> list[IntensityPoint]:
    """Points from `{"data": [{point_time, value}], "meta": {units, data_point_period_seconds}}`,
    converted from lbs/MWh to g/kWh. ProviderError on unknown units (a percentile included), a
    different signal type, malformed points, absurd values, or no points (unless `allow_empty`)."""
    data, meta = _data_meta(doc)
    units = meta.get("units")
    if units != LBS_PER_MWH:
        raise ProviderError(f"watttime: wrong units {str(units)[:40]!r} (expected {LBS_PER_MWH})")
    answered = meta.get("signal_type", signal_type)
    if answered != signal_type:  # never let a marginal value pass as average, or back
        raise ProviderError(f"watttime: asked for {signal_type}, got {str(answered)[:40]!r}")
    period_s = meta.get("data_point_period_seconds")
    if isinstance(period_s, bool) or not isinstance(period_s, (int, float)) or not period_s > 0:
        raise ProviderError("watttime: the answer has no valid data_point_period_seconds")
    signal = SIGNALS[signal_type]
    points = []
    for item in data:
        start_s, value = _point(item)
        g_per_kwh = value * G_PER_KWH_PER_LBS_PER_MWH
        if not 0 <= g_per_kwh <= MAX_G_PER_KWH:  # also rejects NaN
            raise ProviderError(f"watttime: value {value} lbs/MWh is outside any real grid")
        points.append(IntensityPoint(start_s, start_s + period_s, g_per_kwh, kind, signal, source))
    if not points and not allow_empty:
        raise ProviderError("watttime: the answer has no data points")
    return points


def parse_percentile(doc: Any) -> float:
    """The newest value of a `/v3/signal-index` answer: a percentile 0-100, not g/kWh."""
    data, meta = _data_meta(doc)
    if meta.get("units") != PERCENTILE:
        raise ProviderError(f"watttime: wrong units {str(meta.get('units'))[:40]!r} for an index")
    if not data:
        raise ProviderError("watttime: the answer has no data points")
    _, value = max((_point(item) for item in data), key=lambda p: p[0])
    if not 0 <= value <= 100:
        raise ProviderError(f"watttime: percentile {value} is outside 0..100")
    return value


def _data_meta(doc: Any) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(doc, dict):
        raise ProviderError(f"watttime: unexpected answer ({type(doc).__name__}, not an object)")
    if "error" in doc:  # {"error": "INVALID_QUERY_PARAMS", "msg": "..."}
        message = doc.get("msg") or doc.get("message") or ""
        raise ProviderError(f"watttime: the API answered {doc['error']}: {message}"[:300])
    data, meta = doc.get("data"), doc.get("meta")
    if not isinstance(data, list) or not isinstance(meta, dict):
        raise ProviderError("watttime: the answer has no data list or no meta object")
    return data, meta


def _point(item: Any) -> tuple[float, float]:
    """(epoch s, value) of one `{point_time, value}`."""
    if not isinstance(item, dict):
        raise ProviderError("watttime: a data point is not an object")
    text, value = item.get("point_time"), item.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProviderError(f"watttime: a point's value is missing or not a number: {value!r:.40}")
    if not isinstance(text, str):
        raise ProviderError("watttime: a point has no point_time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ProviderError(f"watttime: point_time is not a time: {text[:40]!r}") from None
    if moment.tzinfo is None:
        raise ProviderError(f"watttime: point_time has no time zone: {text[:40]!r}")
    return moment.timestamp(), float(value)


def _range_params(start_s: float, end_s: float) -> dict[str, str]:
    return {"start": _iso(math.floor(start_s)), "end": _iso(math.ceil(end_s))}


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
