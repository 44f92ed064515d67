"""Energy-Charts provider: pure parsers with plain values, then a real local server."""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import Timeouts
from carbonwrap.intensity.location import em_zones
from carbonwrap.intensity.points import (
    AVERAGE,
    FORECAST,
    LATEST,
    MEASURED,
    IntensityPoint,
    ProviderError,
)
from carbonwrap.intensity.providers import Provider
from carbonwrap.intensity.providers import energycharts_areas as areas
from carbonwrap.intensity.providers.energycharts import (
    EnergyCharts,
    parse_co2eq,
    parse_history_mix,
    parse_latest_mix,
    step_mixes,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
T0 = 1710237600.0  # 2024-03-12T10:00Z, the first step of both fixtures
STEP_S = 900.0
SRC = "energycharts:PL (generation mix × lifecycle factors)"
CO2_SRC = "energycharts:DE (Energy-Charts CO2eq)"


def power() -> Any:
    return json.loads((FIXTURES / "energycharts_public_power.json").read_text())


def co2eq() -> Any:
    return json.loads((FIXTURES / "energycharts_co2eq.json").read_text())


def step5_g_per_kwh() -> float:
    """Step 5 of the fixture (11:15Z) priced by hand: MW × lifecycle g/kWh over all MW. The
    lignite, hard coal + coal-derived gas, oil, gas, biomass, run-of-river + reservoir hydro,
    geothermal, pumped-storage generation, others, waste, offshore, onshore, solar, nuclear."""
    mw_g = [
        (7810.4, 820), (2260.3 + 602.1, 820), (300.4, 650), (5150.2, 490), (4377.9, 230),
        (1385.9 + 100.4, 24), (21.1, 38), (380.2, 0), (249.5, 700), (800.3, 700),
        (3350.2, 12), (12955.6, 11), (26280.5, 48), (0.0, 12),
    ]  # fmt: skip
    return sum(mw * g for mw, g in mw_g) / sum(mw for mw, _ in mw_g)


def named(doc: Any, name: str) -> dict[str, Any]:
    return next(t for t in doc["production_types"] if t["name"] == name)


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, zone: str = "PL", **kw: Any) -> EnergyCharts:
    kw.setdefault("timeouts", FAST)
    kw.setdefault("now", lambda: T0 + 8 * STEP_S)
    return EnergyCharts(zone, base=server.url, **kw)


async def call(method: str, p: EnergyCharts, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_latest_is_the_newest_complete_step_priced() -> None:
    # Steps 6 and 7 lack Others and Waste (not published yet): step 5 is the newest complete.
    point = parse_latest_mix(power(), SRC)
    assert point.start_s == T0 + 5 * STEP_S and point.end_s == T0 + 6 * STEP_S
    assert point.intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())
    assert (point.kind, point.signal, point.source) == (LATEST, AVERAGE, SRC)


def test_history_prices_every_complete_step() -> None:
    points = parse_history_mix(power(), SRC)
    assert [p.start_s for p in points] == [T0 + i * STEP_S for i in range(6)]
    assert {p.kind for p in points} == {MEASURED}
    assert points[-1].intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())


def test_load_trade_shares_and_pumping_are_not_production() -> None:
    doc = power()
    for name in ("Load", "Residual load", "Cross border electricity trading"):
        named(doc, name)["data"] = [1e6] * 8
    named(doc, "Hydro pumped storage consumption")["data"] = [-1e6] * 8
    assert parse_latest_mix(doc, SRC) == parse_latest_mix(power(), SRC)
    _, _, mixes = step_mixes(doc, SRC)
    assert set(mixes[-1][1]) == {
        "lignite", "coal", "oil", "gas", "biomass", "hydro", "geothermal", "storage", "other",
        "waste", "wind_offshore", "wind", "solar", "nuclear",
    }  # fmt: skip


def test_unknown_types_below_a_fifth_are_tolerated_above_refused() -> None:
    doc = power()
    doc["production_types"].append({"name": "Fusion", "data": [1000.0] * 8})
    assert parse_latest_mix(doc, SRC).intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())
    named(doc, "Fusion")["data"] = [60000.0] * 8
    with pytest.raises(ProviderError, match=r"only \d+% of the generation at 2024-03-12T11:15Z"):
        parse_latest_mix(doc, SRC)
    with pytest.raises(ProviderError, match=r"unknown: Fusion\)"):
        parse_history_mix(doc, SRC)


def test_a_type_that_never_reports_does_not_block_completeness() -> None:
    doc = power()
    doc["production_types"].append({"name": "Fossil peat", "data": [None] * 8})
    assert parse_latest_mix(doc, SRC).start_s == T0 + 5 * STEP_S


def test_co2eq_measured_and_forecast() -> None:
    latest = parse_co2eq(co2eq(), "co2eq", LATEST, CO2_SRC)[-1]
    assert latest == IntensityPoint(
        T0 + 4 * STEP_S, T0 + 5 * STEP_S, 336.9, LATEST, AVERAGE, CO2_SRC
    )
    ahead = parse_co2eq(co2eq(), "co2eq_forecast", FORECAST, CO2_SRC)
    assert [(p.start_s, p.intensity_g_per_kwh) for p in ahead] == [
        (T0 + 5 * STEP_S, 339.5),
        (T0 + 6 * STEP_S, 344.0),
        (T0 + 7 * STEP_S, 349.7),
    ]


def _set(doc: Any, key: str, value: Any) -> Any:
    doc = copy.deepcopy(doc)
    doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer is list, expected an object"),
        (_set(power(), "unix_seconds", None), "answer has no 'unix_seconds' list"),
        (_set(power(), "unix_seconds", [T0, T0]), r"unix_seconds\[1\] does not increase"),
        (_set(power(), "unix_seconds", [T0, "x"]), r"unix_seconds\[1\] is 'x'"),
        (_set(power(), "production_types", {}), "answer has no 'production_types' list"),
        (_set(power(), "production_types", [{"data": []}]), r"production_types\[0\] has no name"),
        (
            _set(power(), "production_types", [{"name": "Solar", "data": [1.0]}]),
            r"production_types\[0\]: 'data' has 1 values for 8 steps",
        ),
        (
            _set(power(), "production_types", [{"name": "Solar", "data": ["1"] * 8}]),
            r"production_types\[0\]\.data\[0\] is '1', expected a number of MW",
        ),
        (
            _set(power(), "production_types", [{"name": "Solar", "data": [None] * 8}]),
            "no complete step",
        ),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        parse_latest_mix(doc, SRC)


def test_co2eq_out_of_range_is_wrong_units() -> None:
    doc = _set(co2eq(), "co2eq", [0.35, 0.34, 9000.0, None, None, None, None, None])
    with pytest.raises(ProviderError, match=r"co2eq\[2\] 9000 g/kWh is outside"):
        parse_co2eq(doc, "co2eq", MEASURED, CO2_SRC)


# --- the provider against a real server ---------------------------------------------------


def test_latest_prices_the_public_power_mix() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/public_power", json_file="energycharts_public_power.json")
        point = await call("latest", provider(server))
        assert point.intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())
        assert point.source == SRC
        (request,) = server.requests
        assert request.query == {
            "country": "pl",
            "start": "2024-03-12T06:00Z",  # six hours back from "now", 12:00Z
            "end": "2024-03-12T12:00Z",
        }

    serve(check)


def test_latest_prefers_the_own_co2eq_series_where_published() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/co2eq", json_file="energycharts_co2eq.json")
        point = await call("latest", provider(server, "DE"))
        assert (point.intensity_g_per_kwh, point.source) == (336.9, CO2_SRC)
        assert [(r.path, r.query) for r in server.requests] == [("/co2eq", {"country": "de"})]

    serve(check)


def test_co2eq_refused_or_empty_falls_back_to_the_mix() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/co2eq", status=400, json_body={"detail": "'ch' is not available"})
        server.route("/public_power", json_file="energycharts_public_power.json")
        point = await call("latest", provider(server, "CH"))
        assert point.source == "energycharts:CH (generation mix × lifecycle factors)"
        assert [r.path for r in server.requests] == ["/co2eq", "/public_power"]
        server.route("/co2eq", json_body=_set(co2eq(), "co2eq", [None] * 8))
        assert (await call("latest", provider(server, "CH"))).start_s == T0 + 5 * STEP_S

    serve(check)


def test_history_asks_for_the_window_and_cuts_it() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/public_power", json_file="energycharts_public_power.json")
        p = provider(server)
        points = await call("history", p, T0 + STEP_S + 60, T0 + 3 * STEP_S)
        assert [q.start_s for q in points] == [T0 + STEP_S, T0 + 2 * STEP_S]
        assert server.requests[0].query == {
            "country": "pl",
            "start": "2024-03-12T10:01Z",  # one step before the window, to the minute
            "end": "2024-03-12T10:45Z",
        }
        assert await call("history", p, T0, T0) == []
        assert len(server.requests) == 1

    serve(check)


def test_history_not_published_yet_is_empty() -> None:
    async def check(server: RecordedServer) -> None:
        doc = power()
        for entry in doc["production_types"]:
            entry["data"] = [None] * 8
        server.route("/public_power", json_body=doc)
        assert await call("history", provider(server), T0, T0 + STEP_S) == []
        server.route("/public_power", json_body={"unix_seconds": [], "production_types": []})
        assert await call("history", provider(server), T0, T0 + STEP_S) == []

    serve(check)


def test_history_from_co2eq_where_published() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/co2eq", json_file="energycharts_co2eq.json")
        points = await call("history", provider(server, "DE"), T0, T0 + 2 * STEP_S)
        assert [(q.intensity_g_per_kwh, q.kind) for q in points] == [
            (352.4, MEASURED),
            (347.1, MEASURED),
        ]

    serve(check)


def test_forecast_from_co2eq_only() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/co2eq", json_file="energycharts_co2eq.json")
        now = T0 + 6 * STEP_S + 10  # in step 6: step 5 is over
        points = await call("forecast", provider(server, "DE", now=lambda: now))
        assert [(q.start_s, q.kind) for q in points] == [
            (T0 + 6 * STEP_S, FORECAST),
            (T0 + 7 * STEP_S, FORECAST),
        ]
        assert await call("forecast", provider(server, "PL")) == []
        assert len(server.requests) == 1  # no forecast of the mix: nothing asked

    serve(check)


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "energycharts_public_power.json").read_bytes()
        server.sequence("/public_power", [Route(status=500), Route(body=body)])
        sleeps = Sleeps()
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.start_s == T0 + 5 * STEP_S and sleeps.waits == [0.5]
        server.route("/public_power", body=b'{"unix_seconds": [1710237600')
        with pytest.raises(ProviderError, match=r"malformed JSON from 127\.0\.0\.1"):
            await call("latest", provider(server))
        server.route("/public_power", status=429, headers={"Retry-After": "120"})
        with pytest.raises(ProviderError, match="rate limited") as caught:
            await call("latest", provider(server))
        assert caught.value.retry_after_s == 120.0
        server.route("/co2eq", status=503)
        with pytest.raises(ProviderError, match=r"service unavailable \(HTTP 503\)"):
            await call("latest", provider(server, "DE", retries=0))

    serve(check)


# --- construction and areas ---------------------------------------------------------------


def test_zone_must_be_served() -> None:
    with pytest.raises(ValueError, match="Energy-Charts serves no zone 'US-CAL-CISO'"):
        EnergyCharts("US-CAL-CISO")


def test_is_a_provider_with_an_overridable_base() -> None:
    p: Provider = EnergyCharts("GB", "http://127.0.0.1:9/ec/")
    assert (p.name, p.resolution_s, p.signal) == ("energycharts", 900.0, AVERAGE)
    assert repr(p) == "EnergyCharts('energycharts:GB', base='http://127.0.0.1:9/ec')"


def test_areas_are_electricity_maps_zones_without_a_key() -> None:
    assert len(areas.AREAS) >= 35
    assert set(areas.AREAS) <= set(em_zones())
    assert areas.AREAS["GB"] == "uk" and areas.AREAS["DE"] == "de"
    assert set(areas.AREAS) >= areas.CO2EQ_AREAS
    assert areas.KEY_ENV is None and areas.HISTORY_DAYS > 0
    assert "imports ignored" in areas.BASIS
