"""ERCOT fuel-mix dashboard provider: parsing with plain values, then a real local server."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.factors import factor_g_per_kwh
from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, ercot_areas
from carbonwrap.intensity.providers.ercot import Ercot, mix_steps, parse_fuel_mix

FAST = Timeouts(connect_s=0.3, total_s=0.3)
SRC = "ercot:ERCO"
STEP = 300.0
PATH = "/fuel-mix.json"


def utc(*args: int) -> float:
    return dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp()


END0 = utc(2025, 10, 9, 4, 55)  # 23:55 CDT on the 8th: "23:54:56-0500" rounded


def fixture() -> Any:
    return json.loads((FIXTURES / "ercot_fuel_mix.json").read_text())


def expected(mix: Mapping[str, float]) -> float:
    mix = {f: mw for f, mw in mix.items() if mw > 0}
    return sum(factor_g_per_kwh(f) * mw for f, mw in mix.items()) / sum(mix.values())


def doc_of(stamps: Mapping[str, Any], types: list[str] | None = None) -> Any:
    doc: dict[str, Any] = {"data": {"2025-11-02": dict(stamps)}}
    if types is not None:
        doc["types"] = types
    return doc


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, now_s: float, **kw: Any) -> Ercot:
    kw.setdefault("timeouts", FAST)
    return Ercot(base=server.url, now=lambda: now_s, **kw)


async def call(method: str, p: Ercot, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsing ---------------------------------------------------------------------------


def test_parse_prices_the_five_minutes_ending_at_each_rounded_stamp() -> None:
    points = parse_fuel_mix(fixture(), MEASURED, SRC)
    assert [(p.start_s, p.end_s) for p in points] == [
        (END0 + (i - 1) * STEP, END0 + i * STEP) for i in range(5)
    ]
    assert {(p.kind, p.signal, p.source) for p in points} == {(MEASURED, AVERAGE, SRC)}
    mix = {
        "coal": 9467.0234375,
        "hydro": 0,
        "nuclear": 3704.12036132812,
        "other": 50.4000015258789,
        "storage": 93.811149597168,
        "solar": 0.140157386660576,
        "wind": 8779.744140625,
        "gas": 33691.66397094727,
    }
    assert points[0].intensity_g_per_kwh == pytest.approx(expected(mix))


def test_offsets_in_the_stamps_settle_the_autumn_hour_and_duplicates_are_averaged() -> None:
    stamps = {
        "2025-11-02 01:04:56-0500": {"Wind": {"gen": 100}},
        "2025-11-02 01:04:56-0600": {"Wind": {"gen": 100}},
        "2025-11-02 01:10:02-0600": {"Wind": {"gen": 300}},
        "2025-11-02 01:09:57-0600": {"Wind": {"gen": 100}},
    }
    steps = mix_steps(doc_of(stamps), SRC)
    assert [(s.end_s, dict(s.mix_mw)) for s in steps] == [
        (utc(2025, 11, 2, 6, 5), {"wind": 100.0}),
        (utc(2025, 11, 2, 7, 5), {"wind": 100.0}),
        (utc(2025, 11, 2, 7, 10), {"wind": 200.0}),
    ]


def test_a_stamp_missing_a_listed_type_is_left_out() -> None:
    stamps = {
        "2025-11-02 10:04:56-0600": {"Wind": {"gen": 1}, "Solar": {"gen": 1}},
        "2025-11-02 10:09:56-0600": {"Wind": {"gen": 1}, "Solar": {"gen": None}},
        "2025-11-02 10:14:56-0600": {"Wind": {"gen": 1}},
    }
    assert [s.end_s for s in mix_steps(doc_of(stamps, ["Wind", "Solar"]), SRC)] == [
        utc(2025, 11, 2, 16, 5)
    ]
    # without a `types` list, every type seen anywhere must be there
    assert len(mix_steps(doc_of(stamps), SRC)) == 1


def test_a_mix_mostly_of_unknown_types_is_refused() -> None:
    stamps = {"2025-11-02 10:04:56-0600": {"Wind": {"gen": 1}, "Geothermal?": {"gen": 99}}}
    with pytest.raises(ProviderError, match=r"only 1% .* \(unknown: Geothermal\?\)"):
        parse_fuel_mix(doc_of(stamps), LATEST, SRC)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer has no 'data' object"),
        ({"data": []}, "answer has no 'data' object"),
        ({"data": {"2025-11-02": []}}, "data['2025-11-02'] is not an object"),
        (doc_of({"2025-11-02T10:04:56Z": {}}), "data['2025-11-02']['2025-11-02T10:04:56Z'] is not"),
        (doc_of({"2025-11-02 10:04:56-0600": 5}), "data['2025-11-02']['2025-11-02 10:04:56-0600']"),
        (doc_of({"2025-11-02 10:04:56-0600": {"Wind": {"gen": "x"}}}), "data['2025-11-02']"),
        (doc_of({"2025-11-02 10:04:56-0600": {"Wind": {"gen": True}}}), "data['2025-11-02']"),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_fuel_mix(doc, MEASURED, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


def test_parse_rejects_names_the_bad_gen() -> None:
    with pytest.raises(ProviderError, match=r"\['Wind'\]\.gen is 'x', expected a number"):
        parse_fuel_mix(doc_of({"2025-11-02 10:04:56-0600": {"Wind": {"gen": "x"}}}), LATEST, SRC)


# --- the provider against a real server -----------------------------------------------------


def test_latest_reads_the_newest_complete_mix_not_ahead_of_the_clock() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="ercot_fuel_mix.json")
        point = await call("latest", provider(server, END0 + 4 * STEP + 30))
        assert (point.end_s, point.kind) == (END0 + 4 * STEP, LATEST)
        point = await call("latest", provider(server, END0 + 2 * STEP - 60))
        assert point.end_s == END0 + 2 * STEP
        request = server.requests[0]
        assert (request.method, request.path, request.query) == ("GET", PATH, {})
        assert request.headers["Accept"] == "application/json"
        server.route(PATH, json_body={"data": {}})
        with pytest.raises(ProviderError, match="no complete mix in the answer"):
            await call("latest", provider(server, END0))

    serve(check)


def test_history_keeps_the_window_and_skips_what_the_dashboard_no_longer_has() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="ercot_fuel_mix.json")
        p = provider(server, END0 + 3600)
        points = await call("history", p, END0 - 60, END0 + STEP + 1)
        assert [(q.end_s, q.kind) for q in points] == [
            (END0, MEASURED),
            (END0 + STEP, MEASURED),
            (END0 + 2 * STEP, MEASURED),
        ]
        assert await call("history", p, END0 - 5 * 86400, END0 - 3 * 86400) == []
        assert await call("history", p, END0, END0) == []
        assert len(server.requests) == 1

    serve(check)


def test_a_refusal_outside_the_us_says_so() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, status=403, body=b"<html>Access Denied</html>")
        with pytest.raises(HttpError, match="answers US addresses only") as caught:
            await call("latest", provider(server, END0))
        assert caught.value.status == 403
        server.route(PATH, status=404)
        with pytest.raises(HttpError, match="HTTP 404 Not Found"):
            await call("latest", provider(server, END0))

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server, END0)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "ercot_fuel_mix.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=502), Route(body=body)])
        point = await call("latest", provider(server, END0 + 3600, sleep=sleeps))
        assert point.end_s == END0 + 4 * STEP and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "120"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server, END0 + 3600))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 120)
        server.route(PATH, body=b'{"data": {')
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("history", provider(server, END0 + 3600), END0, END0 + STEP)
        server.route(PATH, body=b"")
        with pytest.raises(ProviderError, match="malformed JSON"):
            await call("latest", provider(server, END0 + 3600))

    serve(check)


# --- construction and the light module -------------------------------------------------------


def test_is_a_provider_for_ercot_only() -> None:
    p: Provider = Ercot(base="http://127.0.0.1:9/dashboards/")
    assert (p.name, p.resolution_s, p.signal) == ("ercot", 300.0, AVERAGE)
    assert repr(p) == "Ercot('ercot:ERCO', base='http://127.0.0.1:9/dashboards')"
    with pytest.raises(ValueError, match="only 'ERCO'"):
        Ercot("SWPP")


def test_areas_module() -> None:
    assert ercot_areas.AREAS == {"US-TEX-ERCO": "ERCO", "US-TX": "ERCO"}
    assert ercot_areas.KEY_ENV is None and ercot_areas.HISTORY_DAYS == 1.0
    assert "US addresses only" in ercot_areas.BASIS
