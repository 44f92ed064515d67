"""MISO real-time fuel mix provider: parsing with plain values, then a real local server."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.factors import factor_g_per_kwh
from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, miso_areas
from carbonwrap.intensity.providers.miso import Miso, est_epoch, fuel_steps, parse_fuel_mix

FAST = Timeouts(connect_s=0.3, total_s=0.3)
SRC = "miso:MISO"
STEP = 300.0
HOUR = 3600.0
T = 1789053300.0  # 2026-09-10 15:15 UTC: 10:15 EST, the fixture's first interval
MIDNIGHT = T - 10 * HOUR - 15 * 60  # 00:00 EST on the 10th
PATH = "/api/FuelMix"


def fixture() -> Any:
    return json.loads((FIXTURES / "miso_fuelmix_today.json").read_text())


def expected(mix: Mapping[str, float]) -> float:
    return sum(factor_g_per_kwh(f) * mw for f, mw in mix.items()) / sum(mix.values())


def entry(when: str, category: str, act: Any) -> dict[str, Any]:
    return {"INTERVALEST": when, "CATEGORY": category, "ACT": act}


def doc_of(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"RefId": "x", "TotalMW": "0", "Fuel": {"Type": list(entries)}}


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, now_s: float, **kw: Any) -> Miso:
    kw.setdefault("timeouts", FAST)
    return Miso(base=f"{server.url}{PATH}/", now=lambda: now_s, **kw)


async def call(method: str, p: Miso, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsing ---------------------------------------------------------------------------


def test_intervals_are_eastern_standard_time_all_year() -> None:
    assert T == 1789053300.0 and est_epoch("2026-09-10 10:15:00 AM", SRC, "x") == T
    assert est_epoch("2026-09-10 12:00:00 AM", SRC, "x") == MIDNIGHT
    assert est_epoch("2026-09-10 12:30:00 PM", SRC, "x") == MIDNIGHT + 12.5 * HOUR
    assert (
        est_epoch("2026-01-10 01:05:00 PM", SRC, "x")
        == est_epoch("2026-01-10 12:05:00 PM", SRC, "x") + HOUR
    )


def test_parse_prices_complete_intervals_without_imports() -> None:
    points = parse_fuel_mix(fixture(), MEASURED, SRC)
    assert [(p.start_s, p.end_s) for p in points] == [(T, T + STEP), (T + STEP, T + 2 * STEP)]
    assert {(p.kind, p.signal, p.source) for p in points} == {(MEASURED, AVERAGE, SRC)}
    # 10:15: battery charging (-85 MW) and imports (4120 MW) do not count; Other is "other"
    mix = {"coal": 30866, "gas": 28412, "nuclear": 11204, "wind": 1323, "solar": 9610}
    assert points[0].intensity_g_per_kwh == pytest.approx(expected({**mix, "other": 1402}))
    steps = fuel_steps(fixture(), SRC)
    assert steps[1].mix_mw["storage"] == 42 and "Imports" not in steps[1].mix_mw


def core(when: str) -> list[dict[str, Any]]:
    return [entry(when, c, "100") for c in ("Coal", "Natural Gas", "Nuclear", "Wind", "Solar")]


def test_an_interval_with_a_category_missing_or_empty_is_left_out() -> None:
    doc = doc_of(
        *core("2026-09-10 10:15:00 AM"),
        entry("2026-09-10 10:15:00 AM", "Other", "100"),
        *core("2026-09-10 10:20:00 AM"),  # no Other, which the answer reports
        *core("2026-09-10 10:25:00 AM")[1:],  # no Coal
        entry("2026-09-10 10:25:00 AM", "Other", "100"),
        *core("2026-09-10 10:30:00 AM")[:-1],
        entry("2026-09-10 10:30:00 AM", "Solar", ""),  # empty
        entry("2026-09-10 10:30:00 AM", "Other", "100"),
        entry("2026-09-10 10:30:00 AM", "Imports", "900"),
    )
    assert [s.start_s for s in fuel_steps(doc, SRC)] == [T]
    only_coal = doc_of(entry("2026-09-10 10:15:00 AM", "Coal", "100"))
    assert fuel_steps(only_coal, SRC) == []  # one category of the core is not a mix


def test_unknown_categories_count_against_the_mix() -> None:
    doc = doc_of(*core("2026-09-10 10:15:00 AM"), entry("2026-09-10 10:15:00 AM", "Tidal?", 4500))
    with pytest.raises(ProviderError, match=r"only 10% .* \(unknown: Tidal\?\)"):
        parse_fuel_mix(doc, LATEST, SRC)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer has no 'Fuel' object"),
        ({"Fuel": {"Type": None}}, "answer has no 'Fuel.Type' list"),
        (doc_of({"ACT": "1"}), "Fuel.Type[0] has no CATEGORY"),
        (doc_of(entry("2026-09-10 10:15", "Coal", "1")), "Fuel.Type[0].INTERVALEST is '2026-09-10"),
        (doc_of(entry("2026-09-10 13:15:00 PM", "Coal", "1")), "Fuel.Type[0].INTERVALEST '2026"),
        (doc_of(entry("2026-02-30 10:15:00 AM", "Coal", "1")), "Fuel.Type[0].INTERVALEST '2026"),
        (doc_of(entry("2026-09-10 10:15:00 AM", "Coal", "lots")), "Fuel.Type[0].ACT is 'lots'"),
        (doc_of(entry("2026-09-10 10:15:00 AM", "Coal", True)), "Fuel.Type[0].ACT is True"),
        (doc_of(entry("2026-09-10 10:15:00 AM", "Coal", "nan")), "Fuel.Type[0].ACT is 'nan'"),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_fuel_mix(doc, MEASURED, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server -----------------------------------------------------


def test_latest_reads_the_newest_complete_interval() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="miso_fuelmix_today.json")
        point = await call("latest", provider(server, T + 12 * 60))
        assert (point.start_s, point.kind) == (T + STEP, LATEST)
        (request,) = server.requests
        assert (request.method, request.path, request.query) == ("GET", PATH, {})
        assert request.headers["Accept"] == "application/json"
        incomplete = copy.deepcopy(fixture())
        incomplete["Fuel"]["Type"] = incomplete["Fuel"]["Type"][-2:]  # 10:25: coal and imports
        server.route(PATH, json_body=incomplete)
        with pytest.raises(ProviderError, match="no complete interval in the answer"):
            await call("latest", provider(server, T + 12 * 60))

    serve(check)


def test_history_reads_today_or_yesterday_and_nothing_older() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(f"{PATH}/Today", json_file="miso_fuelmix_today.json")
        server.route(f"{PATH}/Yesterday", json_file="miso_fuelmix_today.json")
        p = provider(server, T + HOUR)
        points = await call("history", p, T + 60, T + STEP + 1)
        assert [(q.start_s, q.kind) for q in points] == [(T, MEASURED), (T + STEP, MEASURED)]
        await call("history", p, MIDNIGHT - HOUR, T)
        assert [r.path for r in server.requests] == [f"{PATH}/Today", f"{PATH}/Yesterday"]
        assert await call("history", p, MIDNIGHT - 3 * 86400, MIDNIGHT - 86400) == []
        assert await call("history", p, T, T) == []
        assert len(server.requests) == 2

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server, T)) == []
        assert server.requests == []

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "miso_fuelmix_today.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=503), Route(body=body)])
        point = await call("latest", provider(server, T + HOUR, sleep=sleeps))
        assert point.start_s == T + STEP and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "120"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server, T + HOUR))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 120)
        server.route(PATH, body=b'{"Fuel": {"Type": [')
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("latest", provider(server, T + HOUR))
        server.route(PATH, json_body={"RefId": "x", "Fuel": {"Type": []}})
        with pytest.raises(ProviderError, match="no complete interval"):
            await call("latest", provider(server, T + HOUR))
        server.route(f"{PATH}/Today", json_body={"Fuel": {"Type": []}})
        assert await call("history", provider(server, T + HOUR), T, T + STEP) == []

    serve(check)


# --- construction and the light module -------------------------------------------------------


def test_is_a_provider_for_miso_only() -> None:
    p: Provider = Miso(base="http://127.0.0.1:9/api/FuelMix/")
    assert (p.name, p.resolution_s, p.signal) == ("miso", 300.0, AVERAGE)
    assert repr(p) == "Miso('miso:MISO', base='http://127.0.0.1:9/api/FuelMix')"
    with pytest.raises(ValueError, match="only 'MISO'"):
        Miso("PJM")


def test_areas_module() -> None:
    assert miso_areas.AREAS == {"US-MIDW-MISO": "MISO"}
    assert miso_areas.KEY_ENV is None and miso_areas.HISTORY_DAYS == 1.0
    assert "imports ignored" in miso_areas.BASIS
