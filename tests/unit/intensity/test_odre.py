"""ODRÉ (RTE éCO2mix) provider: pure parsers with plain values, then a real local server."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import (
    AVERAGE,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers import Provider, odre_areas
from carbonwrap.intensity.providers.odre import (
    CONSOLIDATED_SET,
    REALTIME_SET,
    Odre,
    parse_history,
    parse_latest,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
T0 = dt.datetime(2023, 9, 21, tzinfo=dt.timezone.utc).timestamp()  # the fixture's first record
Q = 900.0
SRC = "odre:national"
TR_PATH = f"/catalog/datasets/{REALTIME_SET}/records"
CONS_PATH = f"/catalog/datasets/{CONSOLIDATED_SET}/records"


def fixture() -> Any:
    return json.loads((FIXTURES / "odre_eco2mix_national_tr.json").read_text())


def records(*pairs: tuple[str, Any]) -> dict[str, Any]:
    rows = [{"date_heure": t, "taux_co2": v} for t, v in pairs]
    return {"total_count": len(rows), "results": rows}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, **kw: Any) -> Odre:
    kw.setdefault("timeouts", FAST)
    return Odre(base=server.url, **kw)


async def call(method: str, p: Odre, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_parse_latest_is_the_newest_quarter_hour() -> None:
    newest = T0 + 7 * Q  # 01:45Z, taux_co2 13
    assert parse_latest(fixture(), SRC) == IntensityPoint(
        newest, newest + Q, 13.0, LATEST, AVERAGE, SRC
    )


def test_parse_history_is_measured_oldest_first_whatever_the_order() -> None:
    doc = fixture()
    doc["results"].reverse()  # as order_by=date_heure desc sends them
    points = parse_history(doc, SRC)
    assert [p.intensity_g_per_kwh for p in points] == [12, 12, 13, 13, 13, 12, 13, 13]
    assert [p.start_s for p in points] == [T0 + i * Q for i in range(8)]
    assert {(p.end_s - p.start_s, p.kind) for p in points} == {(Q, MEASURED)}


def test_half_hourly_values_hold_to_the_next_one_at_most_30_minutes() -> None:
    doc = records(
        ("2023-09-21T00:00:00+00:00", 20),
        ("2023-09-21T00:30:00+00:00", 22),
        ("2023-09-21T01:30:00+00:00", 25),  # an hour later: the one before holds 30 min only
    )
    points = parse_history(doc, SRC)
    assert [(p.start_s - T0, p.end_s - T0) for p in points] == [
        (0, 1800),
        (1800, 3600),
        (5400, 7200),
    ]


def test_a_lone_value_holds_a_quarter_hour() -> None:
    (point,) = parse_history(records(("2023-09-21T00:00:00Z", 20)), SRC)
    assert point.end_s - point.start_s == Q


def test_null_values_are_gaps() -> None:
    doc = records(("2023-09-21T00:00:00+00:00", 12), ("2023-09-21T00:15:00+00:00", None))
    assert [p.start_s for p in parse_history(doc, SRC)] == [T0]
    with pytest.raises(ProviderError, match="no taux_co2 value in the answer"):
        parse_latest(records(("2023-09-21T00:15:00+00:00", None)), SRC)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer is list, expected an object"),
        ({"total_count": 0}, "answer has no 'results' list"),
        ({"results": ["x"]}, "results[0] is str, expected an object"),
        ({"results": [{"date_heure": "2023-09-21T00:00:00Z"}]}, "results[0] has no taux_co2"),
        (records(("2023-09-21T00:00:00Z", 6000)), "results[0].taux_co2 6000 g/kWh is outside"),
        (records(("2023-09-21T00:00:00Z", "12")), "results[0].taux_co2 is '12', expected"),
        (records(("21/09/2023 00:00", 12)), "results[0].date_heure '21/09/2023 00:00' is not"),
        (records((None, 12)), "results[0].date_heure is None"),  # type: ignore[arg-type]
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_history(doc, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server ---------------------------------------------------


def test_latest_asks_for_the_newest_values() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TR_PATH, json_file="odre_eco2mix_national_tr.json")
        point = await call("latest", provider(server))
        assert (point.start_s, point.intensity_g_per_kwh, point.kind) == (T0 + 7 * Q, 13, LATEST)
        (request,) = server.requests
        assert request.query == {
            "select": "date_heure,taux_co2",
            "where": "taux_co2 is not null",
            "order_by": "date_heure desc",
            "limit": "100",
            "offset": "0",
            "timezone": "UTC",
        }
        assert "apikey" not in request.query  # no signup: nothing secret is sent

    serve(check)


def test_history_asks_for_the_window_and_cuts_it() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TR_PATH, json_file="odre_eco2mix_national_tr.json")
        points = await call("history", provider(server), T0 + Q + 60, T0 + 3 * Q)
        assert [(p.start_s, p.kind) for p in points] == [(T0 + Q, MEASURED), (T0 + 2 * Q, MEASURED)]
        (request,) = server.requests
        assert request.query["where"] == (
            "taux_co2 is not null and date_heure >= '2023-09-20T23:46:00Z'"
            " and date_heure < '2023-09-21T00:45:00Z'"
        )
        assert request.query["order_by"] == "date_heure asc"
        assert await call("history", provider(server), T0, T0) == []
        assert len(server.requests) == 1  # an empty window asks nothing

    serve(check)


def test_history_pages_through_long_windows() -> None:
    async def check(server: RecordedServer) -> None:
        first = {
            "total_count": 103,
            "results": [{"date_heure": "2023-09-21T00:00:00Z", "taux_co2": 10} for _ in range(100)],
        }
        second = records(("2023-09-21T00:15:00Z", 11), ("2023-09-21T00:30:00Z", 12))
        server.sequence(
            TR_PATH,
            [Route(body=json.dumps(first).encode()), Route(body=json.dumps(second).encode())],
        )
        points = await call("history", provider(server), T0, T0 + 3600)
        assert [p.intensity_g_per_kwh for p in points] == [10, 11, 12]
        assert [r.query["offset"] for r in server.requests] == ["0", "100"]

    serve(check)


def test_history_falls_back_to_the_consolidated_dataset() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TR_PATH, json_body={"total_count": 0, "results": []})
        server.route(CONS_PATH, json_body=records(("2023-09-21T00:00:00+00:00", 30)))
        points = await call("history", provider(server), T0, T0 + Q)
        assert [(p.start_s, p.intensity_g_per_kwh) for p in points] == [(T0, 30.0)]
        assert [r.path for r in server.requests] == [TR_PATH, CONS_PATH]
        server.route(CONS_PATH, json_body={"total_count": 0, "results": []})
        assert await call("history", provider(server), T0, T0 + Q) == []

    serve(check)


def test_latest_without_values_is_an_error() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TR_PATH, json_body={"total_count": 0, "results": []})
        with pytest.raises(ProviderError, match="no taux_co2 value in the answer"):
            await call("latest", provider(server))

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "odre_eco2mix_national_tr.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(TR_PATH, [Route(status=500), Route(body=body)])
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.intensity_g_per_kwh == 13 and sleeps.waits == [0.5]
        server.route(TR_PATH, status=429, headers={"Retry-After": "120"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 120)
        server.route(TR_PATH, body=b'{"total_count": 3, "results": [')
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("latest", provider(server))
        server.route(TR_PATH, status=400, json_body={"error_code": "ODSQLError"})
        with pytest.raises(HttpError, match="HTTP 400 Bad Request"):
            await call("history", provider(server), T0, T0 + Q)

    serve(check)


# --- construction and the light module -----------------------------------------------------


def test_is_a_provider_for_france_only() -> None:
    p: Provider = Odre(base="http://127.0.0.1:9/odre/")
    assert (p.name, p.resolution_s, p.signal) == ("odre", 900.0, AVERAGE)
    assert repr(p) == "Odre('odre:national', base='http://127.0.0.1:9/odre')"
    with pytest.raises(ValueError, match="only 'national'"):
        Odre("IDF")


def test_areas_module() -> None:
    assert odre_areas.AREAS == {"FR": "national"}
    assert odre_areas.KEY_ENV is None
    assert odre_areas.RESOLUTION_S == 900.0 and odre_areas.HISTORY_DAYS > 0
    assert "production-based" in odre_areas.BASIS
