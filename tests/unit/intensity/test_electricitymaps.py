"""Electricity Maps provider: pure parsers with plain numbers, then against a real local server."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers import Provider
from carbonwrap.intensity.providers.electricitymaps import (
    ElectricityMaps,
    parse_forecast,
    parse_history,
    parse_latest,
)

TOKEN = "em-token-8d1f-SECRET"
FAST = Timeouts(connect_s=0.3, total_s=0.3)
HOUR_S = 3600.0
T_2024_03_05_2000 = 1709668800.0  # 2024-03-05T20:00Z, first hour of the history fixture
T_2024_03_06_1800 = 1709748000.0  # 2024-03-06T18:00Z, first estimated hour
T_2024_03_06_1900 = 1709751600.0  # 2024-03-06T19:00Z, the latest fixture's hour
T_2099_01_01 = 4070908800.0  # 2099-01-01T00:00Z, the forecast fixture's hour


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"electricitymaps_carbon_intensity_{name}.json").read_text())


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, **kw: Any) -> ElectricityMaps:
    kw.setdefault("timeouts", FAST)
    if "lat" not in kw:
        kw.setdefault("zone", "US-CAR-DUK")
    return ElectricityMaps(TOKEN, base=server.url + "/v3", **kw)


async def call(method: str, p: ElectricityMaps, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_parse_latest_is_a_latest_point_for_its_hour() -> None:
    point = parse_latest(fixture("latest"), "electricitymaps:US-CAR-DUK")
    assert point == IntensityPoint(
        T_2024_03_06_1900,
        T_2024_03_06_1900 + HOUR_S,
        216.0,
        LATEST,
        AVERAGE,
        "electricitymaps:US-CAR-DUK",
    )


def test_parse_history_marks_estimated_hours_latest_not_measured() -> None:
    points = parse_history(fixture("history"), "electricitymaps:DE", zone="DE")
    assert len(points) == 24
    assert points[0] == IntensityPoint(
        T_2024_03_05_2000,
        T_2024_03_05_2000 + HOUR_S,
        599.0,
        MEASURED,
        AVERAGE,
        "electricitymaps:DE",
    )
    assert [p.intensity_g_per_kwh for p in points[:4]] == [599.0, 607.0, 599.0, 606.0]
    assert all(b.start_s - a.start_s == HOUR_S for a, b in itertools.pairwise(points))
    assert all(p.end_s - p.start_s == HOUR_S for p in points)
    # The last two hours carry isEstimated: true in the recorded answer.
    assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points[-2:]] == [
        (T_2024_03_06_1800, 663.0, LATEST),
        (T_2024_03_06_1900, 689.0, LATEST),
    ]
    assert {p.kind for p in points[:-2]} == {MEASURED}


def test_parse_history_sorts_and_infers_a_finer_step() -> None:
    doc = {
        "zone": "DE",
        "history": [
            {"datetime": "2024-03-06T10:15:00.000Z", "carbonIntensity": 500, "isEstimated": False},
            {"datetime": "2024-03-06T10:00:00.000Z", "carbonIntensity": 510, "isEstimated": False},
            {"datetime": "2024-03-06T10:30:00+00:00", "carbonIntensity": None},  # no data: a gap
            {"datetime": "2024-03-06T10:45:00+00:00", "carbonIntensity": 490.5},
        ],
    }
    points = parse_history(doc, "electricitymaps:DE")
    t = 1709719200.0  # 2024-03-06T10:00Z
    assert [(p.start_s, p.end_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
        (t, t + 900, 510.0, MEASURED),
        (t + 900, t + 1800, 500.0, MEASURED),
        (t + 2700, t + 3600, 490.5, MEASURED),  # no isEstimated field: measured
    ]


def test_parse_forecast() -> None:
    points = parse_forecast(fixture("forecast"), "electricitymaps:NL", zone="NL")
    assert points == [
        IntensityPoint(
            T_2099_01_01, T_2099_01_01 + HOUR_S, 999.0, FORECAST, AVERAGE, "electricitymaps:NL"
        )
    ]


def _with(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ("carbonIntensity",),
            6000,
            "answer.carbonIntensity 6000 g/kWh is outside 0..5000 (wrong units?)",
        ),
        (
            ("carbonIntensity",),
            -1,
            "answer.carbonIntensity -1 g/kWh is outside 0..5000 (wrong units?)",
        ),
        (("carbonIntensity",), "216", "answer.carbonIntensity is '216', expected a number"),
        (("carbonIntensity",), True, "answer.carbonIntensity is True, expected a number"),
        (("carbonIntensity",), None, "no carbonIntensity in the answer (no data for this zone)"),
        (("carbonIntensity",), KeyError, "answer has no carbonIntensity"),
        (("datetime",), KeyError, "answer.datetime is None, expected an ISO time"),
        (("datetime",), 1709751600, "answer.datetime is 1709751600, expected an ISO time"),
        (("datetime",), "yesterday", "answer.datetime 'yesterday' is not an ISO time"),
        (("zone",), "DE", "answer is for zone 'DE', asked for 'US-CAR-DUK'"),
    ],
)
def test_parse_latest_rejects(path: tuple[str, ...], value: Any, message: str) -> None:
    doc = _with(fixture("latest"), path, value)
    with pytest.raises(ProviderError) as caught:
        parse_latest(doc, "electricitymaps:US-CAR-DUK", zone="US-CAR-DUK")
    assert caught.value.reason == f"electricitymaps:US-CAR-DUK: {message}"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("history",), [], "empty 'history' list in the answer"),
        (("history",), KeyError, "answer has no 'history' list"),
        (("history",), {"a": 1}, "answer has no 'history' list"),
        (("history", 3, "carbonIntensity"), 5001, "history[3].carbonIntensity 5001 g/kWh"),
        (("history", 3, "carbonIntensity"), [1], "history[3].carbonIntensity is [1]"),
        (("history", 3), "599", "history[3] is str, expected an object"),
        (("history", 0, "isEstimated"), "no", "history[0].isEstimated is 'no'"),
    ],
)
def test_parse_history_rejects(path: tuple[Any, ...], value: Any, message: str) -> None:
    doc = _with(fixture("history"), path, value)
    with pytest.raises(ProviderError) as caught:
        parse_history(doc, "electricitymaps:DE")
    assert caught.value.reason.startswith(f"electricitymaps:DE: {message}")


def test_parsers_reject_what_is_not_an_object_and_all_null_values() -> None:
    for parse in (parse_latest, parse_history, parse_forecast):
        with pytest.raises(ProviderError, match="answer is list, expected an object"):
            parse([], "electricitymaps:DE")
    empty = {
        "zone": "NL",
        "forecast": [{"datetime": "2099-01-01T00:00:00Z", "carbonIntensity": None}],
    }
    with pytest.raises(ProviderError, match="no values in the answer"):
        parse_forecast(empty, "electricitymaps:NL")


# --- the provider against a real server ---------------------------------------------------


def test_latest_by_zone_sends_token_zone_and_no_caller_lookup() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/latest", json_file=fixture_name("latest"))
        p = provider(server)
        point = await call("latest", p)
        assert point == IntensityPoint(
            T_2024_03_06_1900,
            T_2024_03_06_1900 + HOUR_S,
            216.0,
            LATEST,
            AVERAGE,
            "electricitymaps:US-CAR-DUK",
        )
        (request,) = server.requests
        assert request.method == "GET"
        assert request.path == "/v3/carbon-intensity/latest"
        assert request.query == {"zone": "US-CAR-DUK", "disableCallerLookup": "true"}
        assert request.headers["auth-token"] == TOKEN

    serve(check)


def test_latest_by_location() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/latest", json_file=fixture_name("latest"))
        p = provider(server, lat=35.23, lon=-80.84)
        point = await call("latest", p)
        assert point.source == "electricitymaps:35.23,-80.84"
        assert point.intensity_g_per_kwh == 216.0
        assert server.requests[0].query == {
            "lat": "35.23",
            "lon": "-80.84",
            "disableCallerLookup": "true",
        }

    serve(check)


def test_history_keeps_the_hours_overlapping_the_window() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/history", json_file=fixture_name("history"))
        p = provider(server, zone="DE")
        # 17:30 to 18:10: the 17:00 and 18:00 hours overlap it, 19:00 does not.
        points = await call("history", p, T_2024_03_06_1800 - 1800, T_2024_03_06_1800 + 600)
        assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
            (T_2024_03_06_1800 - HOUR_S, 633.0, MEASURED),
            (T_2024_03_06_1800, 663.0, LATEST),
        ]
        assert await call("history", p, 0.0, 1000.0) == []  # older than the last 24 hours
        assert server.requests[0].path == "/v3/carbon-intensity/history"
        assert server.requests[0].query == {"zone": "DE", "disableCallerLookup": "true"}
        assert server.requests[0].headers["auth-token"] == TOKEN

    serve(check)


def test_forecast() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/forecast", json_file=fixture_name("forecast"))
        points = await call("forecast", provider(server, zone="NL"))
        assert [(p.start_s, p.end_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
            (T_2099_01_01, T_2099_01_01 + HOUR_S, 999.0, FORECAST)
        ]

    serve(check)


def test_forecast_refused_says_it_is_not_in_the_free_plan() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/forecast", status=403, body=b'{"message": "no"}')
        with pytest.raises(HttpError) as caught:
            await call("forecast", provider(server))
        assert caught.value.status == 403
        assert "unauthorized (HTTP 403): check the token" in caught.value.reason
        assert caught.value.reason.endswith("(the forecast is not in the free plan)")
        assert TOKEN not in caught.value.reason

    serve(check)


def test_bad_token_is_one_line_without_the_token() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/v3/carbon-intensity/latest", status=401, body=b'{"message": "bad"}')
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        host = server.url.removeprefix("http://")
        assert caught.value.reason == (
            f"{host}/v3/carbon-intensity/latest: unauthorized (HTTP 401): check the token"
        )
        assert server.count("/v3/carbon-intensity/latest") == 1

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        base = "/v3/carbon-intensity"
        server.route(f"{base}/latest", hang=True)
        server.route(f"{base}/history", body=b'{"zone": "DE", "history": [')
        sleeps = Sleeps()
        p = provider(server, zone="DE", retries=1, sleep=sleeps)
        with pytest.raises(ProviderError, match=r"no answer within 0\.3 s"):
            await call("latest", p)
        assert sleeps.waits == [0.5]
        with pytest.raises(ProviderError, match="malformed JSON from"):
            await call("history", p, 0.0, 1.0)
        absurd = fixture("latest")
        absurd["carbonIntensity"] = 477000  # lb/MWh of a coal plant, not g/kWh
        server.route(f"{base}/latest", json_body=absurd)
        with pytest.raises(ProviderError, match=r"wrong units\?"):
            await call("latest", provider(server))

    serve(check)


def test_500_then_success_through_the_provider() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / fixture_name("latest")).read_bytes()
        server.sequence("/v3/carbon-intensity/latest", [Route(status=500), Route(body=body)])
        sleeps = Sleeps()
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.intensity_g_per_kwh == 216.0
        assert sleeps.waits == [0.5]

    serve(check)


# --- construction -------------------------------------------------------------------------


def test_needs_a_token_and_one_way_to_place_it() -> None:
    with pytest.raises(ValueError, match="CARBONWRAP_ELECTRICITYMAPS_TOKEN"):
        ElectricityMaps("", zone="DE")
    for kw in ({}, {"lat": 1.0}, {"lon": 1.0}, {"zone": "DE", "lat": 1.0, "lon": 2.0}):
        with pytest.raises(ValueError, match="either a zone, or both lat and lon"):
            ElectricityMaps(TOKEN, **kw)


def test_is_a_provider_that_never_shows_its_token() -> None:
    p: Provider = ElectricityMaps(TOKEN, zone="DK-DK1", base="http://mirror/v3/")
    assert (p.name, p.resolution_s, p.signal) == ("electricitymaps", 3600.0, AVERAGE)
    assert TOKEN not in repr(p) and TOKEN not in str(p)
    assert repr(p) == "ElectricityMaps('electricitymaps:DK-DK1', base='http://mirror/v3')"


def fixture_name(kind: str) -> str:
    return f"electricitymaps_carbon_intensity_{kind}.json"
