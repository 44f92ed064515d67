"""Energi Data Service provider: pure parsers with plain numbers, then a real local server."""

from __future__ import annotations

import copy
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
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers import Provider
from carbonwrap.intensity.providers.energidataservice import (
    EnergiDataService,
    parse_forecast,
    parse_history,
    parse_latest,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
T_2250 = 1672613400.0  # 2023-01-01T22:50Z
T_2255 = 1672613700.0  # 2023-01-01T22:55Z, the newest record in the fixture
STEP_S = 300.0
DK1 = "energidataservice:DK1"
DK2 = "energidataservice:DK2"
FILTER_DK1 = '{"PriceArea":["DK1"]}'
COLUMNS = "Minutes5UTC,PriceArea,CO2Emission"


def co2emis() -> Any:
    return json.loads((FIXTURES / "energidataservice_co2emis.json").read_text())


def prognosis() -> Any:
    """CO2EmisProg has CO2Emis's columns; six 5-minute slots from 22:50Z, DK2 = DK1 + 10."""
    records = []
    for i, value in enumerate([70.5, 72.0, 75.0, 80.0, 81.0, 79.0]):
        minute = 50 + 5 * i
        hour, minute = 22 + minute // 60, minute % 60
        for area in ("DK2", "DK1"):
            records.append(
                {
                    "Minutes5UTC": f"2023-01-01T{hour:02d}:{minute:02d}:00",
                    "Minutes5DK": f"2023-01-01T{(hour + 1) % 24:02d}:{minute:02d}:00",
                    "PriceArea": area,
                    "CO2Emission": value + (10 if area == "DK2" else 0),
                }
            )
    return {"total": len(records), "dataset": "CO2EmisProg", "records": records}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, area: str = "DK1", **kw: Any) -> EnergiDataService:
    kw.setdefault("timeouts", FAST)
    return EnergiDataService(area, base=server.url, **kw)


async def call(method: str, p: EnergiDataService, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_parse_latest_takes_the_newest_record_of_the_area() -> None:
    point = parse_latest(co2emis(), "DK1", DK1)
    assert point == IntensityPoint(T_2255, T_2255 + STEP_S, 68.0, LATEST, AVERAGE, DK1)
    assert parse_latest(co2emis(), "DK2", DK2).source == DK2


def test_parse_history_is_measured_oldest_first_other_areas_ignored() -> None:
    assert parse_history(co2emis(), "DK1", DK1) == [
        IntensityPoint(T_2250, T_2250 + STEP_S, 67.0, MEASURED, AVERAGE, DK1),
        IntensityPoint(T_2255, T_2255 + STEP_S, 68.0, MEASURED, AVERAGE, DK1),
    ]


def test_parse_forecast() -> None:
    points = parse_forecast(prognosis(), "DK2", DK2)
    assert [(p.start_s, p.end_s, p.intensity_g_per_kwh, p.kind) for p in points[:2]] == [
        (T_2250, T_2250 + STEP_S, 80.5, FORECAST),
        (T_2255, T_2255 + STEP_S, 82.0, FORECAST),
    ]
    assert len(points) == 6 and points[-1].start_s == T_2250 + 5 * STEP_S


def _edit(doc: Any, index: int, field: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    if value is KeyError:
        del doc["records"][index][field]
    else:
        doc["records"][index][field] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"total": 0, "dataset": "CO2Emis", "records": []}, "no records in CO2Emis"),
        ({"total": 5, "dataset": "CO2Emis", "records": []}, "no records in CO2Emis"),
        ({"total": 0, "dataset": "CO2Emis"}, "answer has no 'records' list"),
        ([], "answer is list, expected an object"),
        ({**co2emis(), "dataset": "CO2EmisProg"}, "answer is from dataset 'CO2EmisProg'"),
        (_edit(co2emis(), 0, "CO2Emission", 68000), "records[0].CO2Emission 68000 g/kWh"),
        (_edit(co2emis(), 0, "CO2Emission", -68), "records[0].CO2Emission -68 g/kWh"),
        (_edit(co2emis(), 2, "CO2Emission", "67"), "records[2].CO2Emission is '67', expected"),
        (_edit(co2emis(), 0, "CO2Emission", KeyError), "records[0] has no CO2Emission"),
        (_edit(co2emis(), 0, "Minutes5UTC", None), "records[0].Minutes5UTC is None"),
        (_edit(co2emis(), 0, "Minutes5UTC", "23:55"), "records[0].Minutes5UTC '23:55' is not"),
        ({"dataset": "CO2Emis", "records": ["x"]}, "records[0] is str, expected an object"),
        ({"dataset": "CO2Emis", "records": co2emis()["records"][1::2]}, "no records for DK1"),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_history(doc, "DK1", DK1)
    assert caught.value.reason.startswith(f"{DK1}: {message}")


def test_wrong_units_says_so() -> None:
    with pytest.raises(ProviderError, match=r"outside 0\.\.5000 \(wrong units\?\)"):
        parse_latest(_edit(co2emis(), 0, "CO2Emission", 5000.5), "DK1", DK1)


def test_records_without_a_value_are_gaps() -> None:
    doc = _edit(co2emis(), 0, "CO2Emission", None)  # DK1 22:55
    assert [p.start_s for p in parse_history(doc, "DK1", DK1)] == [T_2250]
    doc = _edit(doc, 2, "CO2Emission", None)  # DK1 22:50: nothing left for DK1
    with pytest.raises(ProviderError, match="no records for DK1"):
        parse_latest(doc, "DK1", DK1)


# --- the provider against a real server ---------------------------------------------------


def test_latest_asks_for_the_newest_records_of_the_area() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", json_file="energidataservice_co2emis.json")
        point = await call("latest", provider(server))
        assert point == IntensityPoint(T_2255, T_2255 + STEP_S, 68.0, LATEST, AVERAGE, DK1)
        (request,) = server.requests
        assert request.path == "/dataset/CO2Emis"
        assert request.query == {
            "filter": FILTER_DK1,
            "columns": COLUMNS,
            "sort": "Minutes5UTC desc",
            "limit": "4",
        }

    serve(check)


def test_history_asks_with_local_time_slack_and_cuts_on_utc() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", json_file="energidataservice_co2emis.json")
        p = provider(server, "DK2")
        points = await call("history", p, T_2255, T_2255 + 60)
        assert points == [IntensityPoint(T_2255, T_2255 + STEP_S, 68.0, MEASURED, AVERAGE, DK2)]
        assert server.requests[0].query == {
            "filter": '{"PriceArea":["DK2"]}',
            "columns": COLUMNS,
            # UTC wall time as start, UTC + 2 h as end: covers the window whether the API
            # reads them as Danish winter (UTC+1) or summer (UTC+2) time, or as UTC.
            "start": "2023-01-01T22:55",
            "end": "2023-01-02T00:56",
            "sort": "Minutes5UTC asc",
            "limit": str(2 * (25 + 1)),
        }
        both = await call("history", p, T_2250 + 10, T_2255 + 1)
        assert [(q.start_s, q.intensity_g_per_kwh) for q in both] == [
            (T_2250, 67.0),
            (T_2255, 68.0),
        ]
        assert server.requests[1].query["start"] == "2023-01-01T22:50"
        assert await call("history", p, T_2255, T_2255) == []
        assert len(server.requests) == 2  # an empty window asks nothing

    serve(check)


def test_history_without_records_yet_is_empty() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(
            "/dataset/CO2Emis", json_body={"total": 0, "dataset": "CO2Emis", "records": []}
        )
        assert await call("history", provider(server), T_2250, T_2255) == []

    serve(check)


def test_latest_without_records_is_an_error() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(
            "/dataset/CO2Emis", json_body={"total": 0, "dataset": "CO2Emis", "records": []}
        )
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server))
        assert caught.value.reason == f"{DK1}: no records in CO2Emis"

    serve(check)


def test_forecast_from_the_current_slot_on() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2EmisProg", json_body=prognosis())
        now_s = T_2255 + 70  # 22:56:10Z: the 22:55 slot is current, 22:50 is over
        points = await call("forecast", provider(server, now=lambda: now_s))
        assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
            (T_2255 + i * STEP_S, v, FORECAST) for i, v in enumerate([72.0, 75.0, 80.0, 81.0, 79.0])
        ]
        assert {p.source for p in points} == {DK1}
        assert server.requests[0].path == "/dataset/CO2EmisProg"
        assert server.requests[0].query == {
            "filter": FILTER_DK1,
            "columns": COLUMNS,
            "start": "2023-01-01T22:55",
            "sort": "Minutes5UTC asc",
            "limit": "576",
        }

    serve(check)


def test_forecast_answered_from_the_wrong_dataset_is_an_error() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2EmisProg", json_file="energidataservice_co2emis.json")
        with pytest.raises(ProviderError, match="answer is from dataset 'CO2Emis'"):
            await call("forecast", provider(server, now=lambda: T_2250))

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/dataset/CO2Emis", body=b'{"total": 576, "records": [{"Minutes5UTC"')
        server.route("/dataset/CO2EmisProg", hang=True)
        sleeps = Sleeps()
        p = provider(server, retries=1, sleep=sleeps)
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("latest", p)
        assert sleeps.waits == []  # a malformed answer is not retried
        with pytest.raises(ProviderError, match=r"no answer within 0\.3 s \(gave up after 2"):
            await call("forecast", p)
        assert sleeps.waits == [0.5]

    serve(check)


def test_500_then_success_through_the_provider() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "energidataservice_co2emis.json").read_bytes()
        server.sequence("/dataset/CO2Emis", [Route(status=503), Route(body=body)])
        sleeps = Sleeps()
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.intensity_g_per_kwh == 68.0
        assert sleeps.waits == [0.5]
        assert server.count("/dataset/CO2Emis") == 2

    serve(check)


# --- construction -------------------------------------------------------------------------


def test_price_area_must_be_dk1_or_dk2() -> None:
    with pytest.raises(ValueError, match="use DK1 or DK2"):
        EnergiDataService("DK3")


def test_is_a_provider_with_an_overridable_base() -> None:
    p: Provider = EnergiDataService("DK2", "http://127.0.0.1:9/eds")
    assert (p.name, p.resolution_s, p.signal) == ("energidataservice", 300.0, AVERAGE)
    assert repr(p) == "EnergiDataService('energidataservice:DK2', base='http://127.0.0.1:9/eds')"
