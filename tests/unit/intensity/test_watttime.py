"""WattTime v3 provider: pure parsers with plain numbers, then login, token renewal, region
lookup and faults against a real local server. Credentials never leak into reasons or reprs."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import Timeouts
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MARGINAL,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers.watttime import WattTime, parse_percentile, parse_points

T_2022_07_15 = 1657843200.0  # 2022-07-15T00:00Z
LBS_870 = 870 * 0.45359237  # 394.625... g/kWh
USER, PASSWORD = "grid-user-7", "s3cret-pa55"
TOKEN = "abcdef0123456789fedcabc"  # watttime_login.json
SECRETS = (USER, PASSWORD, TOKEN)
FAST = Timeouts(connect_s=0.5, total_s=0.5)
SOURCE = "watttime:CAISO_NORTH:co2_moer"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def doc_with(units: str = "lbs_co2_per_mwh", **meta: Any) -> dict[str, Any]:
    m = {"units": units, "data_point_period_seconds": 300, "signal_type": "co2_moer", **meta}
    return {"data": [{"point_time": "2022-07-15T00:00:00+00:00", "value": 870}], "meta": m}


# --- pure parsers ------------------------------------------------------------------------


def test_parse_forecast_converts_lbs_per_mwh_to_g_per_kwh() -> None:
    points = parse_points(fixture("watttime_forecast.json"), SOURCE, FORECAST, "co2_moer")
    assert len(points) == 288
    assert points[0] == IntensityPoint(
        T_2022_07_15, T_2022_07_15 + 300, LBS_870, FORECAST, MARGINAL, SOURCE
    )
    assert points[0].intensity_g_per_kwh == pytest.approx(394.6254, abs=1e-4)
    assert points[-1].end_s == T_2022_07_15 + 86400


def test_parse_historical() -> None:
    points = parse_points(fixture("watttime_historical.json"), SOURCE, MEASURED, "co2_moer")
    assert [(p.start_s, p.end_s, p.kind, p.signal) for p in points] == [
        (T_2022_07_15, T_2022_07_15 + 300, MEASURED, MARGINAL),
        (T_2022_07_15 + 300, T_2022_07_15 + 600, MEASURED, MARGINAL),
    ]
    assert points[1].intensity_g_per_kwh == pytest.approx(860 * 0.45359237)
    assert points[1].intensity_g_per_kwh == pytest.approx(390.0894, abs=1e-4)


def test_co2_aoer_points_are_average() -> None:
    [point] = parse_points(doc_with(signal_type="co2_aoer"), "s", MEASURED, "co2_aoer")
    assert point.signal == AVERAGE


def test_signal_index_is_a_percentile_never_an_intensity() -> None:
    doc = fixture("watttime_signal_index_fixture.json")
    assert parse_percentile(doc) == 96.0
    with pytest.raises(ProviderError, match="wrong units 'percentile'"):
        parse_points(doc, SOURCE, LATEST, "co2_moer")
    with pytest.raises(ProviderError, match="wrong units"):
        parse_percentile(fixture("watttime_forecast.json"))


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (doc_with("kg_co2_per_mwh"), "wrong units 'kg_co2_per_mwh'"),
        (doc_with("g_co2_per_kwh"), "wrong units"),
        ({"data": [], "meta": {}}, "wrong units 'None'"),
        (doc_with(signal_type="co2_aoer"), "asked for co2_moer, got 'co2_aoer'"),
        (doc_with(data_point_period_seconds=None), "data_point_period_seconds"),
        (doc_with(data_point_period_seconds=0), "data_point_period_seconds"),
        ({"data": [], "meta": doc_with()["meta"]}, "no data points"),
        ({"data": [{"point_time": "2022-07-15T00:00:00+00:00"}]}, "no data list or no meta"),
        ({"meta": doc_with()["meta"]}, "no data list"),
        ([1, 2], "not an object"),
        (fixture("watttime_error.json"), "INVALID_QUERY_PARAMS: You've provided invalid"),
        # /v3/forecast/historical nests points under data[].forecast: not /v3/forecast's shape
        (fixture("watttime_forecast_historical_fixture.json"), "value is missing"),
    ],
)
def test_parse_rejects_bad_answers(doc: Any, why: str) -> None:
    with pytest.raises(ProviderError, match=why):
        parse_points(doc, SOURCE, FORECAST, "co2_moer")


@pytest.mark.parametrize(
    ("point", "why"),
    [
        ({"point_time": "2022-07-15T00:00:00+00:00", "value": "870"}, "not a number"),
        ({"point_time": "2022-07-15T00:00:00+00:00", "value": None}, "not a number"),
        ({"point_time": "2022-07-15T00:00:00+00:00", "value": True}, "not a number"),
        ({"point_time": "2022-07-15T00:00:00+00:00", "value": -1}, "outside any real grid"),
        ({"point_time": "2022-07-15T00:00:00+00:00", "value": 20000}, "outside any real grid"),
        ({"point_time": "2022-07-15T00:00:00", "value": 870}, "no time zone"),
        ({"point_time": "soon", "value": 870}, "not a time"),
        ({"value": 870}, "no point_time"),
        ("870", "not an object"),
    ],
)
def test_parse_rejects_bad_points(point: Any, why: str) -> None:
    doc = doc_with()
    doc["data"] = [point]
    with pytest.raises(ProviderError, match=why):
        parse_points(doc, SOURCE, FORECAST, "co2_moer")


def test_parse_empty_allowed_for_history() -> None:
    doc = {"data": [], "meta": doc_with()["meta"]}
    assert parse_points(doc, SOURCE, MEASURED, "co2_moer", allow_empty=True) == []


# --- construction ------------------------------------------------------------------------


def test_signal_follows_signal_type() -> None:
    assert WattTime(USER, PASSWORD, region="CAISO_NORTH").signal == MARGINAL
    assert WattTime(USER, PASSWORD, region="X", signal_type="co2_aoer").signal == AVERAGE
    assert WattTime(USER, PASSWORD, region="X").resolution_s == 300
    with pytest.raises(ValueError, match="health_damage"):
        WattTime(USER, PASSWORD, region="X", signal_type="health_damage")
    with pytest.raises(ValueError, match=r"region .* or a location"):
        WattTime(USER, PASSWORD, lat=42.0)
    with pytest.raises(ValueError, match="CARBONWRAP_WATTTIME_PASSWORD"):
        WattTime(USER, "", region="X")


def test_repr_masks_the_credentials() -> None:
    text = repr(WattTime(USER, PASSWORD, region="CAISO_NORTH"))
    assert "CAISO_NORTH" in text and "***" in text
    assert USER not in text and PASSWORD not in text
    located = repr(WattTime(USER, PASSWORD, lat=42.37, lon=-72.52))
    assert "42.37" in located and USER not in located and PASSWORD not in located


# --- against the recorded server ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def run(check: Any) -> None:
    """serve(check) with an aiohttp session: check(server, session)."""

    async def with_session(server: RecordedServer) -> None:
        async with aiohttp.ClientSession() as session:
            await check(server, session)

    serve(with_session, timeout_s=5)


def wt(server: RecordedServer, clock: FakeClock | None = None, **kw: Any) -> WattTime:
    kw.setdefault("region", None if "lat" in kw else "CAISO_NORTH")
    return WattTime(
        USER, PASSWORD, base=server.url, clock=clock or FakeClock(), timeouts=FAST, retries=0, **kw
    )


def no_secrets(server: RecordedServer, *texts: str) -> None:
    """No secret in the given texts, nor in any URL query; the password only in Basic auth."""
    for text in texts:
        for secret in SECRETS:
            assert secret not in text
    for request in server.requests:
        for secret in SECRETS:
            assert secret not in request.path and secret not in json.dumps(request.query)


def test_latest_is_the_nowcast_with_login_and_bearer() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/forecast", json_file="watttime_forecast.json")
        provider = wt(server)
        point = await provider.latest(session)
        assert point == IntensityPoint(
            T_2022_07_15, T_2022_07_15 + 300, LBS_870, LATEST, MARGINAL, SOURCE
        )
        login, data = server.requests
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        assert (login.path, login.headers["Authorization"]) == ("/login", f"Basic {basic}")
        assert data.headers["Authorization"] == f"Bearer {TOKEN}"
        assert data.query == {
            "region": "CAISO_NORTH",
            "signal_type": "co2_moer",
            "horizon_hours": "0",
        }
        no_secrets(server, repr(provider))

    run(check)


def test_token_is_renewed_before_its_30_minutes() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/forecast", json_file="watttime_forecast.json")
        clock = FakeClock()
        provider = wt(server, clock)
        await provider.latest(session)
        clock.t += 24 * 60
        await provider.latest(session)
        assert server.count("/login") == 1
        clock.t += 2 * 60  # 26 minutes after the login: renew before the token expires
        await provider.forecast(session)
        assert server.count("/login") == 2 and server.count("/v3/forecast") == 3

    run(check)


def test_401_on_a_data_call_logs_in_again_once() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        ok = (FIXTURES / "watttime_forecast.json").read_bytes()
        server.sequence("/v3/forecast", [Route(status=401), Route(body=ok)])
        point = await wt(server).latest(session)
        assert point.intensity_g_per_kwh == pytest.approx(LBS_870)
        assert server.count("/login") == 2 and server.count("/v3/forecast") == 2

    run(check)


def test_expired_token_twice_is_a_provider_error() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/forecast", json_body={"error": "expired token"}, status=401)
        with pytest.raises(ProviderError, match="rejected") as caught:
            await wt(server).latest(session)
        assert server.count("/login") == 2 and server.count("/v3/forecast") == 2
        no_secrets(server, caught.value.reason, str(caught.value))

    run(check)


def test_login_refused_names_the_variables_not_the_secrets() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_body={"error": "invalid credentials"}, status=401)
        with pytest.raises(ProviderError, match="CARBONWRAP_WATTTIME_USERNAME") as caught:
            await wt(server).latest(session)
        assert server.count("/v3/forecast") == 0
        no_secrets(server, caught.value.reason, str(caught.value))

    run(check)


@pytest.mark.parametrize("body", [b'{"token": ""}', b"{}", b'{"token": 5}'])
def test_login_without_a_token(body: bytes) -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", body=body)
        with pytest.raises(ProviderError, match="no token"):
            await wt(server).latest(session)

    run(check)


def test_region_from_location_is_asked_once() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/region-from-loc", json_file="watttime_region_from_loc.json")
        server.route("/v3/forecast", json_file="watttime_forecast.json")
        provider = wt(server, lat=42.37, lon=-72.52)
        first = await provider.latest(session)
        await provider.forecast(session)
        assert server.count("/v3/region-from-loc") == 1
        lookup = next(r for r in server.requests if r.path == "/v3/region-from-loc")
        assert lookup.query == {
            "latitude": "42.37",
            "longitude": "-72.52",
            "signal_type": "co2_moer",
        }
        assert lookup.headers["Authorization"] == f"Bearer {TOKEN}"
        assert provider.region == "ISONE_WCMA"
        assert first.source == "watttime:ISONE_WCMA:co2_moer"
        data = [r for r in server.requests if r.path == "/v3/forecast"]
        assert {r.query["region"] for r in data} == {"ISONE_WCMA"}

    run(check)


def test_concurrent_first_calls_share_one_login_and_one_region_lookup() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json", delay_s=0.05)
        server.route("/v3/region-from-loc", json_file="watttime_region_from_loc_fixture.json")
        server.route("/v3/forecast", json_file="watttime_forecast.json")
        provider = wt(server, lat=39.7, lon=-105.0)
        latest, forecast = await asyncio.gather(
            provider.latest(session), provider.forecast(session)
        )
        assert latest.source == forecast[0].source == "watttime:PSCO:co2_moer"
        assert server.count("/login") == 1 and server.count("/v3/region-from-loc") == 1

    run(check)


def test_region_from_location_without_a_region() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/region-from-loc", json_body={"signal_type": "co2_moer"})
        with pytest.raises(ProviderError, match=r"no region for 0\.0,0\.0"):
            await wt(server, lat=0.0, lon=0.0).latest(session)

    run(check)


def test_forecast() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/forecast", json_file="watttime_forecast.json")
        points = await wt(server).forecast(session)
        assert len(points) == 288 and {p.kind for p in points} == {FORECAST}
        assert {p.signal for p in points} == {MARGINAL}
        assert server.requests[-1].query == {"region": "CAISO_NORTH", "signal_type": "co2_moer"}

    run(check)


def test_history_splits_long_ranges_and_merges() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/historical", json_file="watttime_historical.json")
        end_s = T_2022_07_15 + 40 * 86400 + 0.5
        points = await wt(server).history(session, T_2022_07_15 + 60, end_s)
        asks = [r.query for r in server.requests if r.path == "/v3/historical"]
        assert [(q["start"], q["end"]) for q in asks] == [
            ("2022-07-15T00:01:00Z", "2022-08-15T00:01:00Z"),
            ("2022-08-15T00:01:00Z", "2022-08-24T00:00:01Z"),
        ]
        assert {q["region"] for q in asks} == {"CAISO_NORTH"}
        # Both answers hold the same two points: merged once, both overlap the window.
        assert [(p.start_s, p.kind) for p in points] == [
            (T_2022_07_15, MEASURED),
            (T_2022_07_15 + 300, MEASURED),
        ]

    run(check)


def test_co2_aoer_latest_from_history_and_no_forecast() -> None:
    doc = fixture("watttime_historical.json")
    doc["meta"]["signal_type"] = "co2_aoer"

    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/historical", json_body=doc)
        provider = wt(server, signal_type="co2_aoer", now=lambda: T_2022_07_15 + 600)
        point = await provider.latest(session)
        assert (point.start_s, point.kind, point.signal) == (T_2022_07_15 + 300, LATEST, AVERAGE)
        assert point.source == "watttime:CAISO_NORTH:co2_aoer"
        [ask] = [r.query for r in server.requests if r.path == "/v3/historical"]
        assert (ask["start"], ask["end"]) == ("2022-07-14T23:10:00Z", "2022-07-15T00:10:00Z")
        assert await provider.forecast(session) == []
        assert server.count("/v3/forecast") == 0

    run(check)


def test_percentile_is_separate_from_intensity() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/signal-index", json_file="watttime_signal_index_fixture.json")
        server.route("/v3/forecast", json_file="watttime_signal_index_fixture.json")
        provider = wt(server)
        assert await provider.percentile(session) == 96.0
        with pytest.raises(ProviderError, match="wrong units"):
            await provider.latest(session)  # a percentile served as a forecast is refused

    run(check)


@pytest.mark.parametrize(
    ("route", "why"),
    [
        ({"json_file": "watttime_error.json", "status": 400}, "HTTP 400 Bad Request"),
        ({"json_file": "watttime_error.json"}, "INVALID_QUERY_PARAMS"),
        ({"body": b'{"data": [{"point_time": '}, "malformed JSON"),
        ({"json_body": {"data": [], "meta": doc_with()["meta"]}}, "no data points"),
        ({"json_body": doc_with("kg_co2_per_mwh")}, "wrong units"),
        ({"status": 403, "json_body": {"error": "not subscribed"}}, "HTTP 403"),
        ({"status": 500}, "HTTP 500"),
    ],
)
def test_bad_answers_are_provider_errors(route: dict[str, Any], why: str) -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/login", json_file="watttime_login.json")
        server.route("/v3/forecast", **route)
        with pytest.raises(ProviderError, match=why) as caught:
            await wt(server).latest(session)
        assert server.count("/login") == 1  # only a 401 is worth a new login
        no_secrets(server, caught.value.reason, str(caught.value), repr(caught.value))

    run(check)
