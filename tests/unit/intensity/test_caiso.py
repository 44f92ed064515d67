"""CAISO Today's Outlook provider: pure CSV parsing and Pacific time with plain values, then a
real local server."""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, caiso_areas
from carbonwrap.intensity.providers.caiso import (
    Caiso,
    pacific_date,
    pacific_epoch,
    pacific_offset_s,
    parse_day,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
SRC = "caiso:CISO"
DAY = dt.date(2024, 6, 10)  # a daylight-time day: Pacific = UTC-7
T0 = dt.datetime(2024, 6, 10, 7, tzinfo=dt.timezone.utc).timestamp()  # 00:00 PDT
STEP = 300.0
CO2_HEADER = "Time,Biogas CO2,Biomass CO2,Natural Gas CO2,Coal CO2,Imports CO2,Geothermal CO2"
DEMAND_HEADER = "Time,Day ahead forecast,Hour ahead forecast,Current demand,Demand response"


def co2_csv() -> str:
    return (FIXTURES / "caiso_co2_current.csv").read_text()


def demand_csv() -> str:
    return (FIXTURES / "caiso_demand_current.csv").read_text()


def csv(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, now_s: float, **kw: Any) -> Caiso:
    kw.setdefault("timeouts", FAST)
    return Caiso(base=server.url, now=lambda: now_s, **kw)


async def call(method: str, p: Caiso, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


def serve_current(server: RecordedServer) -> None:
    server.route("/current/co2.csv", body=(FIXTURES / "caiso_co2_current.csv").read_bytes())
    server.route("/current/demand.csv", body=(FIXTURES / "caiso_demand_current.csv").read_bytes())


# --- Pacific time -------------------------------------------------------------------------


def test_pacific_offsets_follow_us_daylight_time() -> None:
    assert pacific_offset_s(utc(2024, 1, 15)) == -8 * 3600
    assert pacific_offset_s(utc(2024, 6, 10)) == -7 * 3600
    assert pacific_offset_s(utc(2024, 3, 10, 9, 59)) == -8 * 3600  # 01:59 PST
    assert pacific_offset_s(utc(2024, 3, 10, 10, 0)) == -7 * 3600  # 03:00 PDT
    assert pacific_offset_s(utc(2024, 11, 3, 8, 59)) == -7 * 3600  # 01:59 PDT
    assert pacific_offset_s(utc(2024, 11, 3, 9, 0)) == -8 * 3600  # 01:00 PST
    assert pacific_date(utc(2024, 6, 11, 6, 59)) == DAY  # 23:59 PDT on the 10th


def test_pacific_wall_clock_gaps_and_repeats() -> None:
    spring, autumn = dt.date(2024, 3, 10), dt.date(2024, 11, 3)
    assert pacific_epoch(spring, 1, 55) == utc(2024, 3, 10, 9, 55)
    assert pacific_epoch(spring, 2, 30) is None  # skipped
    assert pacific_epoch(spring, 3, 0) == utc(2024, 3, 10, 10, 0)
    assert pacific_epoch(autumn, 1, 30) == utc(2024, 11, 3, 8, 30)  # first pass, PDT
    assert pacific_epoch(autumn, 1, 30, repeated=True) == utc(2024, 11, 3, 9, 30)
    assert pacific_epoch(DAY, 0, 0) == T0


# --- pure parsing -------------------------------------------------------------------------


def test_parse_day_divides_co2_by_demand() -> None:
    points = parse_day(co2_csv(), demand_csv(), DAY, MEASURED, SRC)
    assert [p.start_s for p in points] == [T0 + i * STEP for i in range(6)]  # blank rows left out
    assert {(p.end_s - p.start_s, p.kind, p.signal) for p in points} == {(STEP, MEASURED, AVERAGE)}
    # 00:00: (82 + 112 + 5047 + 0 + 1901 + 7) t/h over 25431 MW
    assert points[0].intensity_g_per_kwh == pytest.approx(1000 * 7149 / 25431)
    assert points[-1].intensity_g_per_kwh == pytest.approx(1000 * 7001 / 24870)


def test_trailing_midnight_and_dst_rows() -> None:
    co2 = csv(CO2_HEADER, "00:00,1,1,100,0,0,0", "02:00,1,1,100,0,0,0", "00:00,9,9,900,0,0,0")
    demand = csv(DEMAND_HEADER, "00:00,1,1,1000,", "02:00,1,1,1000,", "00:00,1,1,1000,")
    spring = parse_day(co2, demand, dt.date(2024, 3, 10), MEASURED, SRC)
    assert [p.start_s for p in spring] == [utc(2024, 3, 10, 8)]  # 02:00 does not exist
    assert spring[0].intensity_g_per_kwh == pytest.approx(102)
    co2 = csv(CO2_HEADER, "01:00,1,1,100,0,0,0", "01:00,1,1,200,0,0,0")
    demand = csv(DEMAND_HEADER, "01:00,1,1,1000,", "01:00,1,1,1000,")
    autumn = parse_day(co2, demand, dt.date(2024, 11, 3), MEASURED, SRC)
    assert [(p.start_s, p.intensity_g_per_kwh) for p in autumn] == [
        (utc(2024, 11, 3, 8), pytest.approx(102)),
        (utc(2024, 11, 3, 9), pytest.approx(202)),
    ]


def test_export_credit_below_zero_is_zero_and_missing_demand_is_a_gap() -> None:
    co2 = csv(CO2_HEADER, "00:00,50,60,900,0,-1500,5", "00:05,50,60,900,0,0,5")
    demand = csv(DEMAND_HEADER, "00:00,1,1,20000,", "00:05,1,1,,")
    (point,) = parse_day(co2, demand, DAY, MEASURED, SRC)
    assert (point.start_s, point.intensity_g_per_kwh) == (T0, 0.0)


def test_columns_are_found_by_name() -> None:
    co2 = csv("Time, Natural Gas CO2 ,Imports CO2", "00:00, 900 ,100")
    demand = csv("Time,Current demand", "00:00,20000")
    (point,) = parse_day(co2, demand, DAY, LATEST, SRC)
    assert point.intensity_g_per_kwh == pytest.approx(50) and point.kind == LATEST


@pytest.mark.parametrize(
    ("co2", "demand", "message"),
    [
        ("<html>maintenance</html>", None, "co2.csv has no Time column"),
        ("", None, "co2.csv has no Time column"),
        ("Time,Solar,Wind\n00:00,1,2\n", None, "co2.csv has no CO2 columns"),
        (None, "Time,Net demand\n00:00,1\n", "demand.csv has no 'Current demand' column"),
        (csv(CO2_HEADER, "00:00,1,1,x,0,0,0"), None, "co2.csv at 00:00 has Natural Gas CO2 'x'"),
        (csv(CO2_HEADER, "0:0:0,1,1,1,0,0,0"), None, "co2.csv row 1 has Time '0:0:0'"),
        (csv(CO2_HEADER, "00:00,1,1,900000,0,0,0"), None, "co2.csv 2024-06-10T07:00Z over demand"),
    ],
)
def test_parse_rejects(co2: str | None, demand: str | None, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_day(
            co2 if co2 is not None else co2_csv(),
            demand if demand is not None else demand_csv(),
            DAY,
            MEASURED,
            SRC,
        )
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server ---------------------------------------------------


def test_latest_reads_todays_files_with_a_cache_buster() -> None:
    async def check(server: RecordedServer) -> None:
        serve_current(server)
        now_s = T0 + 32 * 60  # 00:32 PDT
        point = await call("latest", provider(server, now_s))
        assert (point.start_s, point.kind) == (T0 + 5 * STEP, LATEST)
        assert point.intensity_g_per_kwh == pytest.approx(1000 * 7001 / 24870)
        assert sorted(r.path for r in server.requests) == [
            "/current/co2.csv",
            "/current/demand.csv",
        ]
        assert {r.query["_"] for r in server.requests} == {str(int(now_s))}
        assert {r.headers["Accept"] for r in server.requests} == {"text/csv, text/plain"}

    serve(check)


def test_latest_just_after_midnight_reads_yesterdays_file_as_yesterday() -> None:
    async def check(server: RecordedServer) -> None:
        late = [f"23:{m:02d},1,1,100,0,0,0" for m in (50, 55)]
        server.route("/current/co2.csv", body=csv(CO2_HEADER, *late).encode())
        server.route(
            "/current/demand.csv",
            body=csv(DEMAND_HEADER, "23:50,1,1,1000,", "23:55,1,1,1000,").encode(),
        )
        now_s = T0 + 24 * 3600 + 60  # 00:01 PDT on the 11th: the file is still the 10th's
        point = await call("latest", provider(server, now_s))
        assert point.start_s == T0 + 24 * 3600 - STEP  # 23:55 on the 10th

    serve(check)


def test_latest_with_nothing_yet_is_an_error() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/current/co2.csv", body=csv(CO2_HEADER, "00:00,,,,,,").encode())
        server.route("/current/demand.csv", body=csv(DEMAND_HEADER, "00:00,1,1,,").encode())
        with pytest.raises(ProviderError, match="no CO2 and demand in today's files yet"):
            await call("latest", provider(server, T0 + 60))

    serve(check)


def test_history_reads_past_days_and_today() -> None:
    async def check(server: RecordedServer) -> None:
        serve_current(server)  # the 10th, today
        server.route(
            "/history/20240609/co2.csv", body=csv(CO2_HEADER, "23:55,1,1,200,0,0,0").encode()
        )
        server.route(
            "/history/20240609/demand.csv", body=csv(DEMAND_HEADER, "23:55,1,1,1000,").encode()
        )
        p = provider(server, T0 + 3600)
        points = await call("history", p, T0 - 120, T0 + 2 * STEP)
        assert [(q.start_s, q.kind) for q in points] == [
            (T0 - STEP, MEASURED),
            (T0, MEASURED),
            (T0 + STEP, MEASURED),
        ]
        assert points[0].intensity_g_per_kwh == pytest.approx(202)
        history = [r for r in server.requests if r.path.startswith("/history/")]
        assert all("_" not in r.query for r in history)  # past days' files never change
        assert await call("history", p, T0, T0) == []

    serve(check)


def test_history_leaves_out_days_not_published() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/history/*", status=404, body=b"<html>Not Found</html>")
        points = await call("history", provider(server, T0 + 5 * 86400), T0, T0 + 3600)
        assert points == []
        server.route("/history/*", status=403)
        with pytest.raises(HttpError, match="HTTP 403"):
            await call("history", provider(server, T0 + 5 * 86400), T0, T0 + 3600)

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server, T0)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "caiso_co2_current.csv").read_bytes()
        server.sequence("/current/co2.csv", [Route(status=502), Route(body=body)])
        server.route(
            "/current/demand.csv", body=(FIXTURES / "caiso_demand_current.csv").read_bytes()
        )
        sleeps = Sleeps()
        point = await call("latest", provider(server, T0 + 3600, sleep=sleeps))
        assert point.start_s == T0 + 5 * STEP and sleeps.waits == [0.5]
        server.route("/current/co2.csv", body=b"\xff\xfe\x00garbage")
        with pytest.raises(ProviderError, match="answer is not UTF-8 text"):
            await call("latest", provider(server, T0 + 3600))
        server.route("/current/co2.csv", hang=True)
        with pytest.raises(ProviderError, match=r"no answer within 0\.3 s"):
            await call("latest", provider(server, T0 + 3600, retries=0))

    serve(check)


# --- construction and the light module -----------------------------------------------------


def test_is_a_provider_for_caiso_only() -> None:
    p: Provider = Caiso(base="http://127.0.0.1:9/outlook/")
    assert (p.name, p.resolution_s, p.signal) == ("caiso", 300.0, AVERAGE)
    assert repr(p) == "Caiso('caiso:CISO', base='http://127.0.0.1:9/outlook')"
    with pytest.raises(ValueError, match="only 'CISO'"):
        Caiso("LDWP")


def test_areas_module() -> None:
    assert caiso_areas.AREAS == {"US-CAL-CISO": "CISO", "US-CA": "CISO"}
    assert caiso_areas.KEY_ENV is None and caiso_areas.RESOLUTION_S == 300.0
    assert "80 % of California" in caiso_areas.BASIS
