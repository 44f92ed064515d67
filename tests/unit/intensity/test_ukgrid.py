"""GB Carbon Intensity provider: pure parsers with plain numbers, then a real local server."""

from __future__ import annotations

import json
import math
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, serve

from carbonwrap.intensity.http import Timeouts
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers.ukgrid import (
    UkGrid,
    outward_code,
    parse_national,
    parse_regional,
)

T_2018_01_20_1200 = 1516449600.0  # 2018-01-20T12:00Z
T_2017_10_01_1130 = 1506857400.0  # 2017-10-01T11:30Z
T_2020_05_19_2000 = 1589918400.0  # 2020-05-19T20:00Z
HALF_HOUR_S = 1800.0
FAST = Timeouts(connect_s=0.5, total_s=0.5)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def slot(start: str, end: str, forecast: Any, actual: Any = None) -> dict[str, Any]:
    return {"from": start, "to": end, "intensity": {"forecast": forecast, "actual": actual}}


# --- postcodes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "outward"),
    [
        ("RG10", "RG10"),
        ("rg10", "RG10"),
        ("RG10 1AA", "RG10"),
        (" rg101aa ", "RG10"),
        ("SW1A 1AA", "SW1A"),
        ("W1A 0AX", "W1A"),
        ("M1 1AE", "M1"),
        ("BH1", "BH1"),
        ("ZE1 0AA", "ZE1"),
        ("EC1A 1BB", "EC1A"),
    ],
)
def test_outward_code_of_postcodes_and_outward_codes(text: str, outward: str) -> None:
    assert outward_code(text) == outward
    assert UkGrid(text).source == f"ukgrid:{outward}"


@pytest.mark.parametrize("text", ["", "RG", "12345", "RG10 1A", "RG10-1AA", "RGX10", "1RG"])
def test_bad_postcodes_are_a_clear_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a GB postcode or outward code.*RG10 1AA"):
        UkGrid(text)


@pytest.mark.parametrize(("text", "area"), [("DK1", "DK"), ("BT1 1AA", "BT"), ("JE2", "JE")])
def test_postcodes_outside_great_britain_are_refused(text: str, area: str) -> None:
    with pytest.raises(ValueError, match=f"{area} is not a postcode area of Great Britain"):
        outward_code(text)


def test_national_by_default() -> None:
    grid = UkGrid()
    assert grid.postcode is None and grid.source == "ukgrid:national"
    assert grid.resolution_s == 1800 and grid.signal == AVERAGE and grid.name == "ukgrid"


# --- pure parsers ------------------------------------------------------------------------


def test_parse_national_actual_is_measured_once_the_slot_is_over() -> None:
    doc = fixture("ukci_intensity_docs.json")  # 12:00-12:30, forecast 266, actual 263
    window = (T_2018_01_20_1200, T_2018_01_20_1200 + HALF_HOUR_S)
    over = IntensityPoint(*window, 263.0, MEASURED, AVERAGE, "ukgrid:national")
    assert parse_national(doc, "ukgrid:national") == [over]
    assert parse_national(doc, "ukgrid:national", now_s=window[1]) == [over]
    running = parse_national(doc, "ukgrid:national", now_s=window[0] + 600)
    assert running == [over._replace(kind=LATEST)]  # the running slot's actual is provisional


def test_parse_national_forecast_only_slots_are_forecast() -> None:
    doc = {
        "data": [
            slot("2018-01-20T12:00Z", "2018-01-20T12:30Z", 266, 263),
            slot("2018-01-20T12:30Z", "2018-01-20T13:00Z", 250, None),
            slot("2018-01-20T13:00Z", "2018-01-20T13:30Z", None, None),  # a gap: skipped
        ]
    }
    points = parse_national(doc, "x", now_s=T_2018_01_20_1200 + HALF_HOUR_S)
    assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
        (T_2018_01_20_1200, 263.0, MEASURED),
        (T_2018_01_20_1200 + HALF_HOUR_S, 250.0, FORECAST),
    ]


def test_parse_national_a_day_of_slots() -> None:
    points = parse_national(fixture("ukci_intensity_fw24h_fixture.json"), "ukgrid:national")
    assert len(points) == 49
    assert points[0] == IntensityPoint(
        T_2017_10_01_1130,
        T_2017_10_01_1130 + HALF_HOUR_S,
        143.0,
        MEASURED,
        AVERAGE,
        "ukgrid:national",
    )
    assert [p.start_s for p in points] == [T_2017_10_01_1130 + i * HALF_HOUR_S for i in range(49)]
    assert points[-1].end_s == T_2017_10_01_1130 + 49 * HALF_HOUR_S


def test_parse_regional_list_shape() -> None:
    points = parse_regional(fixture("ukci_regional_postcode_docs.json"), "ukgrid:RG10")
    window = (T_2018_01_20_1200, T_2018_01_20_1200 + HALF_HOUR_S)
    assert points == [IntensityPoint(*window, 266.0, FORECAST, AVERAGE, "ukgrid:RG10")]


def test_parse_regional_object_shape() -> None:
    doc = fixture("ukci_regional_intensity_fw48h_postcode_fixture.json")
    assert isinstance(doc["data"], dict)
    points = parse_regional(doc, "ukgrid:BH1")
    assert len(points) == 48 and {p.kind for p in points} == {FORECAST}
    assert points[0].start_s == T_2020_05_19_2000 and points[0].intensity_g_per_kwh == 307.0
    assert points[1].intensity_g_per_kwh == 311.0
    assert points[-1].end_s == T_2020_05_19_2000 + 48 * HALF_HOUR_S


def test_error_body_becomes_a_provider_error_with_its_message() -> None:
    doc = fixture("ukci_error_400_docs.json")
    for parse in (parse_national, parse_regional):
        with pytest.raises(ProviderError, match="400 Bad Request: string"):
            parse(doc, "ukgrid:national")


GOOD = ("2018-01-20T12:00Z", "2018-01-20T12:30Z")


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ([], "not an object"),
        ({}, "no data"),
        ({"data": []}, "no data"),
        ({"data": None}, "no data"),
        ({"data": {"from": GOOD[0]}}, "no data"),  # national data must be a list
        ({"data": ["x"]}, "not objects"),
        ({"data": [slot(*GOOD, None, None)]}, "all null"),
        ({"data": [slot(*GOOD, None, None), slot(*GOOD, None, None)]}, "all null"),
        ({"data": [{"from": GOOD[0], "to": GOOD[1]}]}, "no intensity"),
        ({"data": [{"to": GOOD[1], "intensity": {"forecast": 1}}]}, "'from' is missing"),
        ({"data": [slot("yesterday", GOOD[1], 200)]}, "not a time"),
        ({"data": [slot("2018-01-20T12:00", GOOD[1], 200)]}, "no time zone"),
        ({"data": [slot(GOOD[1], GOOD[0], 200)]}, "ends before it starts"),
        ({"data": [slot(*GOOD, "266")]}, "not a number"),
        ({"data": [slot(*GOOD, 266, True)]}, "not a number"),
        ({"data": [slot(*GOOD, -5)]}, "outside"),
        ({"data": [slot(*GOOD, 266, 6000)]}, "outside"),
        ({"data": [slot(*GOOD, math.nan)]}, "outside"),
    ],
)
def test_parse_national_rejects_malformed_answers(doc: Any, why: str) -> None:
    with pytest.raises(ProviderError, match=why):
        parse_national(doc, "ukgrid:national")


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ({"data": []}, "no data"),
        ({"data": [{"regionid": 3}]}, "no region data"),
        ({"data": {"regionid": 3, "data": []}}, "no region data"),
        ({"data": [{"data": [slot(*GOOD, None)]}]}, "all null"),
        ({"data": [{"data": [slot(*GOOD, 9999)]}]}, "outside"),
        ({"data": [{"data": [{"from": GOOD[0], "to": GOOD[1], "intensity": 3}]}]}, "intensity"),
    ],
)
def test_parse_regional_rejects_malformed_answers(doc: Any, why: str) -> None:
    with pytest.raises(ProviderError, match=why):
        parse_regional(doc, "ukgrid:RG10")


# --- against the recorded server ---------------------------------------------------------


def run(check: Any) -> None:
    """serve(check) with an aiohttp session: check(server, session)."""

    async def with_session(server: RecordedServer) -> None:
        async with aiohttp.ClientSession() as session:
            await check(server, session)

    serve(with_session, timeout_s=5)


def grid(server: RecordedServer, postcode: str | None, now_s: float) -> UkGrid:
    return UkGrid(postcode, server.url, now=lambda: now_s, timeouts=FAST, retries=0)


def test_latest_national() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/intensity", json_file="ukci_intensity_docs.json")
        point = await grid(server, None, T_2018_01_20_1200 + 600).latest(session)
        window = (T_2018_01_20_1200, T_2018_01_20_1200 + HALF_HOUR_S)
        assert point == IntensityPoint(*window, 263.0, LATEST, AVERAGE, "ukgrid:national")
        [request] = server.requests
        assert request.headers["Accept"] == "application/json" and request.query == {}

    run(check)


def test_latest_national_without_actual_uses_the_forecast() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/intensity", json_body={"data": [slot(*GOOD, 266, None)]})
        point = await grid(server, None, T_2018_01_20_1200 + 600).latest(session)
        assert (point.intensity_g_per_kwh, point.kind) == (266.0, LATEST)

    run(check)


def test_latest_regional_list_shape() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/regional/postcode/RG10", json_file="ukci_regional_postcode_docs.json")
        point = await grid(server, "rg10 1aa", T_2018_01_20_1200).latest(session)
        window = (T_2018_01_20_1200, T_2018_01_20_1200 + HALF_HOUR_S)
        assert point == IntensityPoint(*window, 266.0, LATEST, AVERAGE, "ukgrid:RG10")
        assert server.requests[0].headers["Accept"] == "application/json"

    run(check)


def test_forecast_national_from_now() -> None:
    doc = {
        "data": [
            slot("2018-01-20T11:30Z", "2018-01-20T12:00Z", 270, 268),  # ends at {from}: dropped
            slot("2018-01-20T12:00Z", "2018-01-20T12:30Z", 266, 263),  # running: provisional
            slot("2018-01-20T12:30Z", "2018-01-20T13:00Z", 250, None),
            slot("2018-01-20T13:00Z", "2018-01-20T13:30Z", 240, None),
        ]
    }

    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/intensity/2018-01-20T12:10Z/fw48h", json_body=doc)
        points = await grid(server, None, T_2018_01_20_1200 + 630.5).forecast(session)
        assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
            (T_2018_01_20_1200, 263.0, LATEST),
            (T_2018_01_20_1200 + HALF_HOUR_S, 250.0, FORECAST),
            (T_2018_01_20_1200 + 2 * HALF_HOUR_S, 240.0, FORECAST),
        ]
        assert server.requests[0].headers["Accept"] == "application/json"

    run(check)


def test_forecast_regional_object_shape() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route(
            "/regional/intensity/2020-05-19T20:10Z/fw48h/postcode/BH1",
            json_file="ukci_regional_intensity_fw48h_postcode_fixture.json",
        )
        points = await grid(server, "BH1 1AA", T_2020_05_19_2000 + 600).forecast(session)
        assert len(points) == 48 and {p.kind for p in points} == {FORECAST}
        assert points[0].intensity_g_per_kwh == 307.0 and points[0].source == "ukgrid:BH1"

    run(check)


def test_history_national_splits_at_14_days_and_merges() -> None:
    start_s = T_2017_10_01_1130 + 900  # 11:45Z
    end_s = start_s + 15 * 86400 + 30  # 15 days later, not on a minute

    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        first = "/intensity/2017-10-01T11:45Z/2017-10-15T11:45Z"
        second = "/intensity/2017-10-15T11:45Z/2017-10-16T11:46Z"
        for path in (first, second):
            server.route(path, json_file="ukci_intensity_fw24h_fixture.json")
        points = await grid(server, None, end_s + 3600).history(session, start_s, end_s)
        assert [r.path for r in server.requests] == [first, second]
        # Both answers hold the same 49 slots: merged once, all inside the window.
        assert len(points) == 49 and {p.kind for p in points} == {MEASURED}
        assert [p.start_s for p in points] == sorted({p.start_s for p in points})
        assert points[0].intensity_g_per_kwh == 143.0

    run(check)


def test_history_filters_to_the_window_and_marks_forecast_only_slots() -> None:
    start_s = T_2017_10_01_1130 + HALF_HOUR_S  # 12:00Z
    end_s = start_s + HALF_HOUR_S * 2  # 13:00Z

    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        doc = fixture("ukci_intensity_fw24h_fixture.json")
        doc["data"][2]["intensity"]["actual"] = None  # 12:30-13:00 has only a forecast
        server.route("/intensity/2017-10-01T12:00Z/2017-10-01T13:00Z", json_body=doc)
        points = await grid(server, None, end_s).history(session, start_s, end_s)
        assert [(p.start_s, p.intensity_g_per_kwh, p.kind) for p in points] == [
            (start_s, 140.0, MEASURED),
            (start_s + HALF_HOUR_S, 151.0, FORECAST),
        ]

    run(check)


def test_history_regional_is_empty_without_a_request() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        assert await grid(server, "RG10", 0).history(session, 0, 3600) == []
        assert await grid(server, None, 0).history(session, 10, 10) == []
        assert server.requests == []

    run(check)


def test_http_400_is_a_provider_error() -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/intensity", json_file="ukci_error_400_docs.json", status=400)
        with pytest.raises(ProviderError, match="HTTP 400 Bad Request"):
            await grid(server, None, T_2018_01_20_1200).latest(session)

    run(check)


@pytest.mark.parametrize(
    ("route", "why"),
    [
        ({"json_file": "ukci_error_400_docs.json"}, "400 Bad Request: string"),
        ({"body": b'{"data": [{"from": "2018-01-20T12:00Z"'}, "malformed JSON"),
        ({"json_body": {"data": []}}, "no data"),
        ({"json_body": {"data": [slot(*GOOD, None, None)]}}, "all null"),
    ],
)
def test_bad_answers_are_provider_errors(route: dict[str, Any], why: str) -> None:
    async def check(server: RecordedServer, session: aiohttp.ClientSession) -> None:
        server.route("/intensity", **route)
        with pytest.raises(ProviderError, match=why):
            await grid(server, None, T_2018_01_20_1200).latest(session)

    run(check)
