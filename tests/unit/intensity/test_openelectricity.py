"""Open Electricity provider: pure parsing with plain values, then a real local server; the
key stays in its Authorization header."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, openelectricity_areas
from carbonwrap.intensity.providers.openelectricity import (
    OpenElectricity,
    parse_history,
    parse_latest,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
KEY = "oe-test-key-3b7e0f19a2"
SRC = "openelectricity:NSW1"
PATH = "/data/network/NEM"
STEP = 300.0
T0 = dt.datetime(2025, 7, 22, 15, 45, tzinfo=dt.timezone.utc).timestamp()  # 01:45 AEST


def fixture() -> Any:
    return json.loads((FIXTURES / "openelectricity_network_nem_energy_emissions.json").read_text())


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, region: str = "NSW1", **kw: Any) -> OpenElectricity:
    kw.setdefault("timeouts", FAST)
    return OpenElectricity(KEY, region, base=server.url, **kw)


async def call(method: str, p: OpenElectricity, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsing -------------------------------------------------------------------------


def test_parse_history_is_emissions_over_energy() -> None:
    points = parse_history(fixture(), "NSW1", SRC)
    # the 02:00 interval has no values yet: left out
    assert [p.start_s for p in points] == [T0, T0 + STEP, T0 + 2 * STEP]
    assert points[0].intensity_g_per_kwh == pytest.approx(1000 * 501.63 / 702.51)
    assert {(p.end_s - p.start_s, p.kind, p.signal) for p in points} == {(STEP, MEASURED, AVERAGE)}


def test_parse_latest_is_the_newest_interval_of_the_region() -> None:
    point = parse_latest(fixture(), "VIC1", "openelectricity:VIC1")
    assert (point.start_s, point.kind) == (T0 + 2 * STEP, LATEST)
    assert point.intensity_g_per_kwh == pytest.approx(1000 * 395.77 / 447.66)


def test_network_region_column_is_read_too_and_zero_energy_is_a_gap() -> None:
    doc = fixture()
    for series in doc["data"]:
        for result in series["results"]:
            result["columns"] = {"network_region": result["columns"]["region"]}
    doc["data"][0]["results"][0]["data"][0][1] = 0.0  # NSW1 energy at 01:45
    assert [p.start_s for p in parse_history(doc, "NSW1", SRC)] == [T0 + STEP, T0 + 2 * STEP]


def test_a_region_not_in_the_answer() -> None:
    assert parse_history(fixture(), "SA1", "openelectricity:SA1") == []
    with pytest.raises(ProviderError, match="no interval with both energy and emissions for SA1"):
        parse_latest(fixture(), "SA1", "openelectricity:SA1")


FIRST = ("data", 0, "results", 0, "data", 0)  # NSW1's first energy value


def _edit(path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(fixture())
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer is list, expected an object"),
        ({"success": False, "error": "x"}, "answer has no 'data' list"),
        ({"data": [fixture()["data"][0]]}, "answer lacks the energy or the emissions series"),
        ({"data": ["x"]}, "data[0] is str, expected an object"),
        (_edit(("data", 1, "unit"), "ktCO2e"), "data[1] (emissions) is in 'ktCO2e'"),
        (_edit(("data", 0, "unit"), "GWh"), "data[0] (energy) is in 'GWh'"),
        (_edit(("data", 0, "interval"), "1h"), "data[0] has interval '1h', asked for 5m"),
        (_edit(("data", 0, "results"), None), "data[0] has no 'results' list"),
        (_edit(("data", 0, "results", 0, "columns"), None), "data[0].results[0] is not a result"),
        (_edit(("data", 0, "results", 0, "data", 0), [1]), "data[0].results[0].data[0] is [1]"),
        (_edit((*FIRST, 0), "01:45"), "data[0].results[0].data[0] '01:45' is not"),
        (_edit((*FIRST, 1), "702"), "data[0].results[0].data[0] value is '702'"),
        (_edit(("data", 1, *FIRST[2:], 1), 9000.0), "emissions/energy at 2025-07-23T01:45:00"),
    ],
)  # fmt: skip
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_history(doc, "NSW1", SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server ---------------------------------------------------


def test_latest_asks_with_a_bearer_key_and_nem_time() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="openelectricity_network_nem_energy_emissions.json")
        now_s = T0 + 3 * STEP + 70  # 02:01:10 AEST
        point = await call("latest", provider(server, now=lambda: now_s))
        assert (point.start_s, point.kind) == (T0 + 2 * STEP, LATEST)
        (request,) = server.requests
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        assert request.query == {
            "metrics": "energy",  # the first of the two: see test_both_metrics_are_asked_for
            "interval": "5m",
            "primary_grouping": "network_region",
            "date_start": "2025-07-23T00:01:10",
            "date_end": "2025-07-23T02:01:10",
        }
        assert KEY not in request.path + json.dumps(request.query)

    serve(check)


def test_both_metrics_are_asked_for() -> None:
    async def check(server: RecordedServer) -> None:
        body = b'{"data": [{"metric": "energy", "unit": "<<request>>"}]}'
        server.route(PATH, reflect=True, body=body)
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server, now=lambda: T0))
        assert "GET /data/network/NEM?metrics=energy&metrics=emissions&interval=5m" in (
            caught.value.reason
        )

    serve(check)


def test_history_asks_for_the_window_and_cuts_it() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="openelectricity_network_nem_energy_emissions.json")
        points = await call("history", provider(server), T0 + STEP + 30, T0 + 2 * STEP + 1)
        assert [p.start_s for p in points] == [T0 + STEP, T0 + 2 * STEP]
        (request,) = server.requests
        assert (request.query["date_start"], request.query["date_end"]) == (
            "2025-07-23T01:45:30",
            "2025-07-23T01:55:01",
        )
        long = await call("history", provider(server), T0 - 30 * 86400, T0 + STEP)
        assert [p.start_s for p in long] == [T0]
        assert server.requests[1].query["date_start"] == "2025-07-16T01:45:00"  # a week back
        assert await call("history", provider(server), T0, T0) == []
        assert len(server.requests) == 2

    serve(check)


def test_a_rejected_or_echoed_key_never_reaches_a_reason() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, status=403, json_body={"detail": f"bad key {KEY}"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert caught.value.status == 403 and KEY not in caught.value.reason
        server.route(
            PATH,
            reflect=True,
            body=b'{"data": [{"metric": "energy", "unit": "<<header:authorization>>"}]}',
        )
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server))
        assert "(energy) is in" in caught.value.reason and KEY not in caught.value.reason
        assert KEY not in repr(provider(server))

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "openelectricity_network_nem_energy_emissions.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=500), Route(body=body)])
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.start_s == T0 + 2 * STEP and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "90"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert caught.value.retry_after_s == 90
        server.route(PATH, body=b'{"data": [{"metric"')
        with pytest.raises(ProviderError, match="malformed JSON"):
            await call("history", provider(server), T0, T0 + STEP)

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server)) == []
        assert server.requests == []

    serve(check)


# --- construction and the light module -----------------------------------------------------


def test_needs_a_key_and_a_nem_region() -> None:
    with pytest.raises(ValueError, match="CARBONWRAP_OPENELECTRICITY_KEY"):
        OpenElectricity("", "NSW1")
    with pytest.raises(ValueError, match="region 'WEM'"):
        OpenElectricity(KEY, "WEM")
    p: Provider = OpenElectricity(KEY, "QLD1", base="http://127.0.0.1:9/oe/")
    assert (p.name, p.resolution_s, p.signal) == ("openelectricity", 300.0, AVERAGE)
    assert repr(p) == "OpenElectricity('openelectricity:QLD1', base='http://127.0.0.1:9/oe')"


def test_areas_module() -> None:
    zones = json.loads((FIXTURES / "electricitymaps_zones.json").read_text())
    assert set(openelectricity_areas.AREAS) <= set(zones)
    assert openelectricity_areas.AREAS["AU-NSW"] == "NSW1"
    assert openelectricity_areas.KEY_ENV == "CARBONWRAP_OPENELECTRICITY_KEY"
    assert "production-based" in openelectricity_areas.BASIS
