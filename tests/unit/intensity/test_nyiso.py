"""NYISO real-time fuel mix provider: Eastern time and CSV parsing with plain values, then a real
local server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.factors import factor_g_per_kwh
from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, nyiso_areas
from carbonwrap.intensity.providers.nyiso import Nyiso, day_steps, parse_day
from carbonwrap.intensity.providers.wallclock import US_EASTERN, local_date, offset_s, wall_epoch

FAST = Timeouts(connect_s=0.3, total_s=0.3)
SRC = "nyiso:NYIS"
STEP = 300.0
HEADER = "Time Stamp,Time Zone,Fuel Category,Gen MW"
TODAY = "/20250201rtfuelmix.csv"


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


T0 = utc(2025, 2, 1, 5)  # 00:00 EST on 1 February 2025


def fixture_text() -> str:
    return (FIXTURES / "nyiso_20250201rtfuelmix.csv").read_text()


def csv(*rows: str) -> str:
    return "\r\n".join([HEADER, *rows]) + "\r\n"


def expected(mix: Mapping[str, float]) -> float:
    return sum(factor_g_per_kwh(f) * mw for f, mw in mix.items()) / sum(mix.values())


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, now_s: float, **kw: Any) -> Nyiso:
    kw.setdefault("timeouts", FAST)
    return Nyiso(base=server.url, now=lambda: now_s, **kw)


async def call(method: str, p: Nyiso, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- Eastern time ---------------------------------------------------------------------------


def test_eastern_offsets_follow_us_daylight_time() -> None:
    assert offset_s(US_EASTERN, utc(2025, 2, 1)) == -5 * 3600
    assert offset_s(US_EASTERN, utc(2025, 7, 1)) == -4 * 3600
    assert offset_s(US_EASTERN, utc(2025, 3, 9, 6, 59)) == -5 * 3600  # 01:59 EST
    assert offset_s(US_EASTERN, utc(2025, 3, 9, 7, 0)) == -4 * 3600  # 03:00 EDT
    assert offset_s(US_EASTERN, utc(2025, 11, 2, 5, 59)) == -4 * 3600  # 01:59 EDT
    assert offset_s(US_EASTERN, utc(2025, 11, 2, 6, 0)) == -5 * 3600  # 01:00 EST
    assert local_date(US_EASTERN, utc(2025, 2, 2, 4, 59)) == dt.date(2025, 2, 1)
    assert wall_epoch(US_EASTERN, dt.date(2025, 3, 9), 2, 30) is None


# --- pure parsing ---------------------------------------------------------------------------


def test_parse_day_prices_each_five_minutes_ending_at_its_stamp() -> None:
    points = parse_day(fixture_text(), MEASURED, SRC)
    assert [(p.start_s, p.end_s) for p in points] == [
        (T0 + i * STEP, T0 + (i + 1) * STEP) for i in range(4)
    ]
    assert {(p.kind, p.signal, p.source) for p in points} == {(MEASURED, AVERAGE, SRC)}
    # 00:05: dual fuel and natural gas as gas, other fossil as oil, other renewables as biomass
    mix = {
        "gas": 4613 + 3487,
        "nuclear": 3274,
        "oil": 1,
        "biomass": 232,
        "wind": 671,
        "hydro": 1846,
    }
    assert points[0].intensity_g_per_kwh == pytest.approx(expected(mix))
    assert 200 < points[-1].intensity_g_per_kwh < 400


def test_the_time_zone_column_settles_the_autumn_hour() -> None:
    text = csv(
        "11/02/2025 01:30:00,EDT,Natural Gas,100",
        "11/02/2025 01:30:00,EST,Natural Gas,100",
        "11/02/2025 01:35,EST,Natural Gas,100",  # no seconds: also written so
    )
    steps = day_steps(text, SRC)
    assert [s.end_s for s in steps] == [
        utc(2025, 11, 2, 5, 30),
        utc(2025, 11, 2, 6, 30),
        utc(2025, 11, 2, 6, 35),
    ]
    assert steps[0].start_s == steps[0].end_s - STEP


def test_snapshots_in_one_minute_are_averaged_and_incomplete_times_left_out() -> None:
    text = csv(
        "02/01/2025 10:20:00,EST,Nuclear,100",
        "02/01/2025 10:20:00,EST,Wind,100",
        "02/01/2025 10:20:22,EST,Nuclear,300",
        "02/01/2025 10:20:22,EST,Wind,100",
        "02/01/2025 10:22:00,EST,Nuclear,100",  # an odd extra snapshot
        "02/01/2025 10:22:00,EST,Wind,100",
        "02/01/2025 10:25:00,EST,Nuclear,100",
        "02/01/2025 10:25:00,EST,Wind,",  # not reported yet
    )
    steps = day_steps(text, SRC)
    assert [(s.start_s, s.end_s, dict(s.mix_mw)) for s in steps] == [
        (utc(2025, 2, 1, 15, 15), utc(2025, 2, 1, 15, 20), {"nuclear": 200.0, "wind": 100.0}),
        (utc(2025, 2, 1, 15, 20), utc(2025, 2, 1, 15, 22), {"nuclear": 100.0, "wind": 100.0}),
    ]


def test_a_mix_mostly_of_unknown_categories_is_refused() -> None:
    text = csv("02/01/2025 10:20:00,EST,Nuclear,100", "02/01/2025 10:20:00,EST,Fusion,900")
    with pytest.raises(ProviderError, match=r"only 10% of the generation .* \(unknown: Fusion\)"):
        parse_day(text, MEASURED, SRC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<html>maintenance</html>", "rtfuelmix file has no Time Stamp, Time Zone"),
        ("", "rtfuelmix file has no Time Stamp"),
        ("Time Stamp,Fuel Category\n", "rtfuelmix file has no Time Zone, Gen MW column"),
        (csv("02/01/2025 10:20:00,CET,Wind,1"), "rtfuelmix row 2 has Time Zone 'CET'"),
        (csv("2025-02-01 10:20,EST,Wind,1"), "rtfuelmix row 2 has Time Stamp '2025-02-01 10:20'"),
        (csv("02/01/2025 10:20:00,EST,Wind,lots"), "rtfuelmix row 2 has Gen MW 'lots'"),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_day(text, MEASURED, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server -----------------------------------------------------


def test_latest_reads_todays_file() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TODAY, body=fixture_text().encode())
        point = await call("latest", provider(server, T0 + 22 * 60))
        assert (point.start_s, point.end_s, point.kind) == (T0 + 3 * STEP, T0 + 4 * STEP, LATEST)
        (request,) = server.requests
        assert (request.method, request.path, request.query) == ("GET", TODAY, {})
        assert request.headers["Accept"] == "text/csv, text/plain"

    serve(check)


def test_latest_just_after_midnight_reads_yesterdays_file() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/20250202rtfuelmix.csv", status=404, body=b"Not Found")
        server.route(TODAY, body=fixture_text().encode())
        point = await call("latest", provider(server, T0 + 86400 + 60))  # 00:01 EST on the 2nd
        assert point.end_s == T0 + 4 * STEP
        assert [r.path for r in server.requests] == ["/20250202rtfuelmix.csv", TODAY]
        server.route(TODAY, status=404)
        with pytest.raises(ProviderError, match="no fuel mix in today's or yesterday's file"):
            await call("latest", provider(server, T0 + 86400 + 60))

    serve(check)


def test_history_reads_each_eastern_day_and_leaves_out_missing_ones() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(TODAY, body=fixture_text().encode())
        server.route("/20250131rtfuelmix.csv", status=404)
        p = provider(server, T0 + 3600)
        points = await call("history", p, T0 - 600, T0 + 2 * STEP)
        assert [(q.start_s, q.kind) for q in points] == [(T0, MEASURED), (T0 + STEP, MEASURED)]
        assert [r.path for r in server.requests] == ["/20250131rtfuelmix.csv", TODAY]
        assert await call("history", p, T0, T0) == []
        server.route("/20250131rtfuelmix.csv", status=403)
        with pytest.raises(HttpError, match="HTTP 403"):
            await call("history", p, T0 - 600, T0)

    serve(check)


def test_history_reads_at_most_a_week_of_files_and_none_ahead() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/*", status=404)
        await call("history", provider(server, T0 + 3600), T0 - 30 * 86400, T0 + 5 * 86400)
        paths = [r.path for r in server.requests]
        assert paths[0] == "/20250125rtfuelmix.csv" and paths[-1] == TODAY
        assert len(paths) == nyiso_areas.HISTORY_DAYS + 1

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server, T0)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = fixture_text().encode()
        sleeps = Sleeps()
        server.sequence(TODAY, [Route(status=500), Route(body=body)])
        point = await call("latest", provider(server, T0 + 3600, sleep=sleeps))
        assert point.end_s == T0 + 4 * STEP and sleeps.waits == [0.5]
        server.route(TODAY, status=429, headers={"Retry-After": "120"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server, T0 + 3600))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 120)
        server.route(TODAY, body=b"\xff\xfe\x00garbage")
        with pytest.raises(ProviderError, match="answer is not UTF-8 text"):
            await call("latest", provider(server, T0 + 3600))
        server.route(TODAY, body=b"")
        with pytest.raises(ProviderError, match="rtfuelmix file has no Time Stamp"):
            await call("latest", provider(server, T0 + 3600))

    serve(check)


# --- construction and the light module -------------------------------------------------------


def test_is_a_provider_for_nyiso_only() -> None:
    p: Provider = Nyiso(base="http://127.0.0.1:9/rtfuelmix/")
    assert (p.name, p.resolution_s, p.signal) == ("nyiso", 300.0, AVERAGE)
    assert repr(p) == "Nyiso('nyiso:NYIS', base='http://127.0.0.1:9/rtfuelmix')"
    with pytest.raises(ValueError, match="only 'NYIS'"):
        Nyiso("ISNE")


def test_areas_module() -> None:
    assert nyiso_areas.AREAS == {"US-NY-NYIS": "NYIS", "US-NY": "NYIS"}
    assert nyiso_areas.KEY_ENV is None and nyiso_areas.RESOLUTION_S == 300.0
    assert "dual-fuel units priced as gas" in nyiso_areas.BASIS
