"""Fingrid provider: pure parsers with plain values, then a real local server; the key stays
in its header."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, IntensityPoint, ProviderError
from carbonwrap.intensity.providers import Provider, fingrid_areas
from carbonwrap.intensity.providers.fingrid import Fingrid, parse_history, parse_latest

FAST = Timeouts(connect_s=0.3, total_s=0.3)
KEY = "fingrid-test-key-5f2c81d0"
T0 = dt.datetime(2024, 3, 5, 10, 0, tzinfo=dt.timezone.utc).timestamp()  # the oldest value
STEP = 180.0
SRC = "fingrid:FI"
PATH = "/datasets/265/data"


def fixture() -> Any:
    return json.loads((FIXTURES / "fingrid_265_realtime.json").read_text())


def data(*rows: tuple[str, str, Any]) -> dict[str, Any]:
    return {
        "data": [{"datasetId": 265, "startTime": s, "endTime": e, "value": v} for s, e, v in rows]
    }


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, **kw: Any) -> Fingrid:
    kw.setdefault("timeouts", FAST)
    return Fingrid(KEY, base=server.url, **kw)


async def call(method: str, p: Fingrid, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_parse_latest_is_the_newest_value_held_for_three_minutes() -> None:
    newest = T0 + 5 * STEP
    assert parse_latest(fixture(), SRC) == IntensityPoint(
        newest, newest + STEP, 63.41, LATEST, AVERAGE, SRC
    )


def test_parse_history_instants_hold_until_the_next_value() -> None:
    points = parse_history(fixture(), SRC)  # the fixture is newest first
    assert [p.start_s for p in points] == [T0 + i * STEP for i in range(6)]
    assert [p.end_s - p.start_s for p in points] == [STEP] * 6
    assert points[0].intensity_g_per_kwh == 63.62 and {p.kind for p in points} == {MEASURED}


def test_intervals_keep_their_own_end_and_gaps_are_capped() -> None:
    doc = data(
        ("2024-03-05T10:00:00Z", "2024-03-05T10:15:00Z", 50),  # a 15-minute value
        ("2024-03-05T11:00:00Z", "2024-03-05T11:00:00Z", 51),  # an instant, then an hour gap
        ("2024-03-05T12:00:00Z", "2024-03-05T12:00:00Z", None),  # a gap in the data
        ("2024-03-05T12:03:00Z", "2024-03-05T12:03:00Z", 52),
    )
    points = parse_history(doc, SRC)
    assert [(p.start_s - T0, p.end_s - T0, p.intensity_g_per_kwh) for p in points] == [
        (0, 900, 50),
        (3600, 4500, 51),
        (7380, 7560, 52),
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer is list, expected an object"),
        ({"pagination": {}}, "answer has no 'data' list"),
        ({"data": [7]}, "data[0] is int, expected an object"),
        (data(("2024-03-05T10:00:00Z", "2024-03-05T10:00:00Z", 9000)), "data[0].value 9000 g/kWh"),
        (data(("2024-03-05T10:00:00Z", "2024-03-05T10:00:00Z", "63")), "data[0].value is '63'"),
        (data(("yesterday", "2024-03-05T10:00:00Z", 63)), "data[0].startTime 'yesterday' is not"),
        (data(("2024-03-05T10:00:00Z", None, 63)), "data[0].endTime is None"),
        ({"data": [{"startTime": "2024-03-05T10:00:00Z", "endTime": "2024-03-05T10:00:00Z"}]},
         "data[0] has no value"),
    ],
)  # fmt: skip
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_history(doc, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


def test_no_values() -> None:
    assert parse_history({"data": []}, SRC) == []
    with pytest.raises(ProviderError, match="no values in the answer"):
        parse_latest({"data": [], "pagination": {"total": 0}}, SRC)


# --- the provider against a real server ---------------------------------------------------


def test_latest_sends_the_key_in_its_header_only() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="fingrid_265_realtime.json")
        now_s = T0 + 5 * STEP + 30
        point = await call("latest", provider(server, now=lambda: now_s))
        assert (point.start_s, point.intensity_g_per_kwh) == (T0 + 5 * STEP, 63.41)
        (request,) = server.requests
        assert request.headers["x-api-key"] == KEY
        assert request.query == {
            "startTime": "2024-03-05T08:15:30Z",
            "endTime": "2024-03-05T10:18:30Z",
            "format": "json",
            "pageSize": "20000",
            "sortBy": "startTime",
            "sortOrder": "desc",
        }
        assert KEY not in request.path + json.dumps(request.query)

    serve(check)


def test_history_asks_for_the_window_and_cuts_it() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="fingrid_265_realtime.json")
        points = await call("history", provider(server), T0 + STEP + 10, T0 + 3 * STEP)
        assert [p.start_s for p in points] == [T0 + STEP, T0 + 2 * STEP]
        (request,) = server.requests
        assert (request.query["startTime"], request.query["endTime"]) == (
            "2024-03-05T09:48:10Z",
            "2024-03-05T10:09:00Z",
        )
        assert request.query["sortOrder"] == "asc"
        assert await call("history", provider(server), T0, T0) == []
        assert len(server.requests) == 1
        server.route(PATH, json_body={"data": [], "pagination": {"total": 0}})
        assert await call("history", provider(server), T0, T0 + 60) == []

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server)) == []
        assert server.requests == []

    serve(check)


def test_a_rejected_or_echoed_key_never_reaches_a_reason() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, status=401, body=b'{"message": "Access denied"}')
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert caught.value.status == 401 and "check the token" in caught.value.reason
        # A mirror that echoes the request into a field the parser names in its reason.
        server.route(PATH, reflect=True, body=b'{"data": [{"startTime": "<<header:x-api-key>>"}]}')
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server))
        assert "startTime" in caught.value.reason and KEY not in caught.value.reason
        assert KEY not in repr(provider(server))

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "fingrid_265_realtime.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=503), Route(body=body)])
        point = await call("latest", provider(server, sleep=sleeps, now=lambda: T0))
        assert point.intensity_g_per_kwh == 63.41 and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "60"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 60)
        server.route(PATH, body=b'{"data": [{"startTime"')
        with pytest.raises(ProviderError, match="malformed JSON"):
            await call("history", provider(server), T0, T0 + 60)

    serve(check)


# --- construction and the light module -----------------------------------------------------


def test_needs_a_key_and_serves_finland_only() -> None:
    with pytest.raises(ValueError, match="CARBONWRAP_FINGRID_KEY"):
        Fingrid("")
    with pytest.raises(ValueError, match="only 'FI'"):
        Fingrid(KEY, "SE")
    p: Provider = Fingrid(KEY, base="http://127.0.0.1:9/fg/")
    assert (p.name, p.resolution_s, p.signal) == ("fingrid", 180.0, AVERAGE)
    assert repr(p) == "Fingrid('fingrid:FI', base='http://127.0.0.1:9/fg')"


def test_areas_module() -> None:
    assert fingrid_areas.AREAS == {"FI": "FI"}
    assert fingrid_areas.KEY_ENV == "CARBONWRAP_FINGRID_KEY"
    assert fingrid_areas.RESOLUTION_S == 180.0 and fingrid_areas.HISTORY_DAYS > 0
    assert "consumption-based" in fingrid_areas.BASIS
