"""EirGrid Smart Grid Dashboard provider: Irish time and row parsing with plain values, then a
real local server."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, eirgrid_areas
from carbonwrap.intensity.providers.eirgrid import EirGrid, dashboard_date, parse_rows
from carbonwrap.intensity.providers.wallclock import IRELAND, local_date, offset_s, wall_epoch

FAST = Timeouts(connect_s=0.3, total_s=0.3)
SRC = "eirgrid:ROI"
PATH = "/api/chart/"
Q = 900.0


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


T10 = utc(2025, 6, 4, 9)  # 10:00 IST (UTC+1), the fixture's first row


def fixture() -> Any:
    return json.loads((FIXTURES / "eirgrid_co2intensity_roi.json").read_text())


def row(when: str, value: Any, field: str = "CO2_INTENSITY", region: str = "ROI") -> Any:
    return {"EffectiveTime": when, "FieldName": field, "Region": region, "Value": value}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, now_s: float, **kw: Any) -> EirGrid:
    kw.setdefault("timeouts", FAST)
    return EirGrid("ROI", base=server.url, now=lambda: now_s, **kw)


async def call(method: str, p: EirGrid, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- Irish time -----------------------------------------------------------------------------


def test_irish_offsets_follow_eu_summer_time() -> None:
    assert offset_s(IRELAND, utc(2025, 1, 15)) == 0
    assert offset_s(IRELAND, utc(2025, 6, 4)) == 3600
    assert offset_s(IRELAND, utc(2025, 3, 30, 0, 59)) == 0  # last Sunday of March, 01:00 UTC
    assert offset_s(IRELAND, utc(2025, 3, 30, 1, 0)) == 3600
    assert offset_s(IRELAND, utc(2025, 10, 26, 0, 59)) == 3600  # last Sunday of October
    assert offset_s(IRELAND, utc(2025, 10, 26, 1, 0)) == 0
    assert local_date(IRELAND, utc(2025, 6, 3, 23, 30)) == dt.date(2025, 6, 4)  # 00:30 IST


def test_irish_wall_clock_gaps_and_repeats() -> None:
    spring, autumn = dt.date(2025, 3, 30), dt.date(2025, 10, 26)
    assert wall_epoch(IRELAND, spring, 0, 45) == utc(2025, 3, 30, 0, 45)
    assert wall_epoch(IRELAND, spring, 1, 15) is None  # skipped
    assert wall_epoch(IRELAND, spring, 2, 0) == utc(2025, 3, 30, 1, 0)
    assert wall_epoch(IRELAND, autumn, 1, 15) == utc(2025, 10, 26, 0, 15)  # first pass, IST
    assert wall_epoch(IRELAND, autumn, 1, 15, repeated=True) == utc(2025, 10, 26, 1, 15)


def test_dashboard_dates_are_english_whatever_the_locale() -> None:
    assert dashboard_date(dt.date(2025, 6, 4)) == "04-Jun-2025"
    assert dashboard_date(dt.date(2026, 12, 31)) == "31-Dec-2026"


# --- pure parsing ---------------------------------------------------------------------------


def test_parse_rows_reads_the_published_quarter_hours() -> None:
    points = parse_rows(fixture(), "ROI", MEASURED, SRC)
    assert [p.start_s for p in points] == [T10 + i * Q for i in range(4)]  # null rows left out
    assert [p.intensity_g_per_kwh for p in points] == [231, 226, 219, 214]
    assert {(p.end_s - p.start_s, p.kind, p.signal, p.source) for p in points} == {
        (Q, MEASURED, AVERAGE, SRC)
    }


def test_other_fields_are_skipped_and_the_autumn_hour_is_kept_twice() -> None:
    doc = {
        "Rows": [
            row("26-Oct-2025 01:00:00", 300),
            row("26-Oct-2025 01:00:00", 200, field="CO2_EMISSIONS"),
            row("26-Oct-2025 01:00:00", 250),
            row("30-Mar-2025 01:30:00", 999),  # skipped by the spring change
        ]
    }
    points = parse_rows(doc, "ROI", LATEST, SRC)
    assert [(p.start_s, p.intensity_g_per_kwh) for p in points] == [
        (utc(2025, 10, 26, 0), 300),
        (utc(2025, 10, 26, 1), 250),
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer is list, expected an object"),
        ({"ErrorMessage": "x"}, "answer has no 'Rows' list"),
        ({"Rows": ["x"]}, "Rows[0] is str, expected an object"),
        ({"Rows": [row("04-Jun-2025 10:00:00", 1, region="NI")]}, "Rows[0] is for region 'NI'"),
        ({"Rows": [row("2025-06-04T10:00", 1)]}, "Rows[0].EffectiveTime is '2025-06-04T10:00'"),
        ({"Rows": [row("31-Jun-2025 10:00:00", 1)]}, "Rows[0].EffectiveTime '31-Jun-2025"),
        ({"Rows": [row("04-Jun-2025 10:00:00", "high")]}, "Rows[0].Value is 'high'"),
        ({"Rows": [row("04-Jun-2025 10:00:00", 90000)]}, "Rows[0].Value 90000 g/kWh is outside"),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_rows(doc, "ROI", MEASURED, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server -----------------------------------------------------


def test_latest_asks_for_yesterday_and_today_in_irish_dates() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="eirgrid_co2intensity_roi.json")
        point = await call("latest", provider(server, T10 + 2 * 3600))  # 12:00 IST
        assert (point.start_s, point.intensity_g_per_kwh, point.kind) == (T10 + 3 * Q, 214, LATEST)
        (request,) = server.requests
        assert (request.method, request.path) == ("GET", PATH)
        assert request.query == {
            "region": "ROI",
            "chartType": "co2",
            "dateRange": "day",
            "dateFrom": "03-Jun-2025",
            "dateTo": "04-Jun-2025",
            "areas": "co2intensity",
        }
        assert request.headers["Accept"] == "application/json"

    serve(check)


def test_latest_ignores_values_ahead_of_the_clock_and_fails_on_none() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="eirgrid_co2intensity_roi.json")
        point = await call("latest", provider(server, T10 + Q + 60))
        assert point.start_s == T10 + Q
        server.route(PATH, json_body={"Rows": [row("04-Jun-2025 10:00:00", None)]})
        with pytest.raises(ProviderError, match="no CO2 intensity since yesterday"):
            await call("latest", provider(server, T10 + 3600))
        server.route(PATH, json_body={"Rows": []})
        with pytest.raises(ProviderError, match="no CO2 intensity since yesterday"):
            await call("latest", provider(server, T10 + 3600))

    serve(check)


def test_history_asks_for_the_windows_days_at_most_a_month() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="eirgrid_co2intensity_roi.json")
        p = provider(server, T10 + 5 * 3600)
        points = await call("history", p, T10 + 600, T10 + 2 * Q)
        assert [(q.start_s, q.kind) for q in points] == [(T10, MEASURED), (T10 + Q, MEASURED)]
        assert (server.requests[0].query["dateFrom"], server.requests[0].query["dateTo"]) == (
            "04-Jun-2025",
            "04-Jun-2025",
        )
        await call("history", p, T10 - 90 * 86400, T10 + 10 * 86400)
        assert (server.requests[1].query["dateFrom"], server.requests[1].query["dateTo"]) == (
            "05-May-2025",  # 31 days, ending today: not the future
            "04-Jun-2025",
        )
        server.route(PATH, json_body={"Rows": []})
        assert await call("history", p, T10, T10 + 3600) == []
        assert await call("history", p, T10, T10) == []
        assert len(server.requests) == 3

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server, T10)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "eirgrid_co2intensity_roi.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=500), Route(body=body)])
        point = await call("latest", provider(server, T10 + 3600, sleep=sleeps))
        assert point.intensity_g_per_kwh == 214 and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "120"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server, T10 + 3600))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 120)
        server.route(PATH, body=b'{"Rows": [')
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("latest", provider(server, T10 + 3600))
        server.route(PATH, body=b"")
        with pytest.raises(ProviderError, match="malformed JSON"):
            await call("history", provider(server, T10 + 3600), T10, T10 + Q)
        server.route(PATH, hang=True)
        with pytest.raises(ProviderError, match=r"no answer within 0\.3 s"):
            await call("latest", provider(server, T10 + 3600, retries=0))

    serve(check)


# --- construction and the light module -------------------------------------------------------


def test_is_a_provider_for_roi_and_ni() -> None:
    p: Provider = EirGrid("NI", base="http://127.0.0.1:9/sgd/")
    assert (p.name, p.resolution_s, p.signal) == ("eirgrid", 900.0, AVERAGE)
    assert repr(p) == "EirGrid('eirgrid:NI', base='http://127.0.0.1:9/sgd')"
    with pytest.raises(ValueError, match="use one of ROI, NI"):
        EirGrid("ALL")


def test_areas_module() -> None:
    assert eirgrid_areas.AREAS == {"IE": "ROI", "GB-NIR": "NI"}
    assert eirgrid_areas.KEY_ENV is None and eirgrid_areas.RESOLUTION_S == 900.0
    assert eirgrid_areas.HISTORY_DAYS >= 31 and "EirGrid/SONI" in eirgrid_areas.BASIS
