"""EIA provider: pure parsing and mix arithmetic with plain values, then a real local server;
the key EIA takes in the URL never reaches a reason or a log line."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, REFLECT, RecordedServer, Route, serve

from carbonwrap.intensity.factors import factor_g_per_kwh
from carbonwrap.intensity.http import HttpError, Timeouts
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider, eia_areas
from carbonwrap.intensity.providers.eia import (
    Eia,
    hour_intensity,
    parse_hours,
    parse_latest,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
KEY = "eia-test-key-9c1d44be7a"
SRC = "eia:CISO"
PATH = "/electricity/rto/fuel-type-data/data/"
H = 3600.0
END_20 = dt.datetime(2024, 6, 10, 20, tzinfo=dt.timezone.utc).timestamp()  # label "…T20"


def fixture() -> Any:
    return json.loads((FIXTURES / "eia_fuel_type_data_ciso.json").read_text())


def hour_21_g_per_kwh() -> float:
    """The fixture's hour ending 21:00Z by hand: battery charging (negative) and zeros out."""
    mw = {"gas": 4911, "nuclear": 2254, "hydro": 2530, "solar": 15480, "wind": 2105}
    mw |= {"geothermal": 812, "other": 298}
    return sum(factor_g_per_kwh(f) * p for f, p in mw.items()) / sum(mw.values())


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, **kw: Any) -> Eia:
    kw.setdefault("timeouts", FAST)
    return Eia(KEY, "CISO", base=server.url, **kw)


async def call(method: str, p: Eia, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure arithmetic and parsing -----------------------------------------------------------


def test_hour_intensity_weights_factors_by_output() -> None:
    expected = (factor_g_per_kwh("gas") * 100 + factor_g_per_kwh("nuclear") * 300) / 400
    assert hour_intensity({"NG": 100, "NUC": 300, "BAT": -50}, SRC, "h") == pytest.approx(expected)
    assert hour_intensity({"WAT": 10, "PS": 10}, SRC, "h") == pytest.approx(
        (factor_g_per_kwh("hydro") + factor_g_per_kwh("storage")) / 2
    )


def test_unknown_codes_are_refused_above_a_tenth_of_the_output() -> None:
    assert hour_intensity({"NG": 950, "XYZ": 50}, SRC, "h") == pytest.approx(
        factor_g_per_kwh("gas")
    )
    with pytest.raises(ProviderError, match="h: fuel codes XYZ carry 20% of the output"):
        hour_intensity({"NG": 800, "XYZ": 200}, SRC, "h")
    with pytest.raises(ProviderError, match="h has no positive generation"):
        hour_intensity({"NG": 0, "SUN": -3}, SRC, "h")


def test_parse_hours_keeps_complete_hours_labelled_by_their_end() -> None:
    points = parse_hours(fixture(), "CISO", MEASURED, SRC)
    # the newest hour (ending 22:00Z) has 3 of 10 fuels so far: left out
    assert [(p.start_s, p.end_s) for p in points] == [(END_20 - H, END_20), (END_20, END_20 + H)]
    assert points[1].intensity_g_per_kwh == pytest.approx(hour_21_g_per_kwh())
    assert {(p.kind, p.signal, p.source) for p in points} == {(MEASURED, AVERAGE, SRC)}


def test_parse_latest_is_the_newest_complete_hour() -> None:
    point = parse_latest(fixture(), "CISO", SRC)
    assert (point.start_s, point.end_s, point.kind) == (END_20, END_20 + H, LATEST)


def test_other_respondents_and_gaps_are_ignored() -> None:
    doc = fixture()
    for row in doc["response"]["data"]:
        if row["period"] == "2024-06-10T21" and row["fueltype"] == "NUC":
            row["value"] = None  # a gap: the hour is no longer complete
    doc["response"]["data"].append({**doc["response"]["data"][0], "respondent": "BANC"})
    assert [p.end_s for p in parse_hours(doc, "CISO", MEASURED, SRC)] == [END_20]
    assert parse_hours(doc, "LDWP", MEASURED, SRC) == []
    with pytest.raises(ProviderError, match="no hour with generation by fuel"):
        parse_latest(doc, "LDWP", SRC)


def test_numbers_as_strings_are_numbers() -> None:
    doc = fixture()
    for row in doc["response"]["data"]:
        row["value"] = str(row["value"])
    assert parse_latest(doc, "CISO", SRC).intensity_g_per_kwh == pytest.approx(hour_21_g_per_kwh())


def _edit(field: str, value: Any) -> Any:
    doc = copy.deepcopy(fixture())
    doc["response"]["data"][0][field] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "answer has no 'response' object"),
        ({"response": {"total": 0}}, "answer has no 'response.data' list"),
        ({"error": "invalid api_key"}, "answer has no 'response' object"),
        ({"response": {"data": [3]}}, "data[0] is int, expected an object"),
        (_edit("period", "2024-06-10 22:00"), "data[0].period '2024-06-10 22:00' is not"),
        (_edit("period", None), "data[0].period is None"),
        (_edit("fueltype", None), "data[0].fueltype is None"),
        (_edit("value", "n/a"), "data[0].value is 'n/a', expected a number"),
        (_edit("value", float("nan")), "data[0].value is nan"),
    ],
)
def test_parse_rejects(doc: Any, message: str) -> None:
    with pytest.raises(ProviderError) as caught:
        parse_hours(doc, "CISO", MEASURED, SRC)
    assert caught.value.reason.startswith(f"{SRC}: {message}")


# --- the provider against a real server ---------------------------------------------------


def test_latest_asks_for_three_days_newest_first() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_file="eia_fuel_type_data_ciso.json")
        now_s = END_20 + 3 * H + 600  # 23:10Z
        point = await call("latest", provider(server, now=lambda: now_s))
        assert (point.start_s, point.kind) == (END_20, LATEST)
        (request,) = server.requests
        assert request.query == {
            "frequency": "hourly",
            "data[0]": "value",
            "facets[respondent][]": "CISO",
            "start": "2024-06-07T23",
            "end": "2024-06-11T00",
            "sort[0][column]": "period",
            "sort[0][direction]": "desc",
            "offset": "0",
            "length": "5000",
            "api_key": KEY,  # EIA takes it nowhere else
        }
        assert not any(KEY in v for v in request.headers.values())

    serve(check)


def test_history_pages_and_cuts_the_window() -> None:
    async def check(server: RecordedServer) -> None:
        full = fixture()["response"]["data"]
        page = {"response": {"total": 5001, "data": (full * 250)[:5000]}}  # a full page
        rest = {"response": {"total": 5001, "data": []}}
        server.sequence(
            PATH, [Route(body=json.dumps(page).encode()), Route(body=json.dumps(rest).encode())]
        )
        points = await call("history", provider(server), END_20 - 1800, END_20 + 60)
        assert [(p.start_s, p.kind) for p in points] == [(END_20 - H, MEASURED), (END_20, MEASURED)]
        assert [r.query["offset"] for r in server.requests] == ["0", "5000"]
        assert server.requests[0].query["sort[0][direction]"] == "asc"
        assert (server.requests[0].query["start"], server.requests[0].query["end"]) == (
            "2024-06-10T19",
            "2024-06-10T21",
        )
        assert await call("history", provider(server), END_20, END_20) == []
        assert len(server.requests) == 2

    serve(check)


def test_history_not_out_yet_is_empty_latest_is_an_error() -> None:
    async def check(server: RecordedServer) -> None:
        server.route(PATH, json_body={"response": {"total": 0, "data": []}})
        assert await call("history", provider(server), END_20, END_20 + H) == []
        with pytest.raises(ProviderError, match="no hour with generation by fuel"):
            await call("latest", provider(server))

    serve(check)


def test_the_key_never_reaches_a_reason_or_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def check(server: RecordedServer) -> None:
        reasons: list[str] = []
        for status in (400, 403, 404, 500):
            server.route(PATH, status=status, body=b'{"error": "api_key ' + KEY.encode() + b'"}')
            with pytest.raises(ProviderError) as caught:
                await call("latest", provider(server, retries=0))
            reasons.append(caught.value.reason)
        # A mirror echoing the request line, query and all, into a field the reason names.
        server.route(
            PATH,
            reflect=True,
            body=b'{"response": {"data": [{"respondent": "CISO", "period": "' + REFLECT + b'"}]}}',
        )
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server))
        reasons.append(caught.value.reason)
        server.route(PATH, hang=True)
        with pytest.raises(ProviderError) as caught:
            await call("latest", provider(server, retries=0))
        reasons.append(caught.value.reason)
        assert "data[0].period" in reasons[4] and "fuel-type-data" in reasons[0]
        assert not [r for r in reasons if KEY in r or KEY[:12] in r]
        assert KEY not in repr(provider(server))

    serve(check)
    # Our own loggers (carbonwrap, aiohttp's client) say nothing of it; aiohttp.access is the
    # test server's own request log, the mirror's side.
    ours = [r for r in caplog.records if not r.name.startswith("aiohttp.access")]
    assert not [r for r in ours if KEY in r.getMessage()]
    assert any(KEY in r.getMessage() for r in caplog.records)  # the check can see a leak


def test_faults_reach_the_caller_as_provider_errors() -> None:
    async def check(server: RecordedServer) -> None:
        body = (FIXTURES / "eia_fuel_type_data_ciso.json").read_bytes()
        sleeps = Sleeps()
        server.sequence(PATH, [Route(status=504), Route(body=body)])
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.start_s == END_20 and sleeps.waits == [0.5]
        server.route(PATH, status=429, headers={"Retry-After": "3600"})
        with pytest.raises(HttpError) as caught:
            await call("latest", provider(server))
        assert (caught.value.status, caught.value.retry_after_s) == (429, 3600)
        server.route(PATH, body=b'{"response": {"data": [')
        with pytest.raises(ProviderError, match="malformed JSON"):
            await call("history", provider(server), END_20, END_20 + H)

    serve(check)


def test_forecast_is_empty_and_asks_nothing() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server)) == []
        assert server.requests == []

    serve(check)


# --- construction and the light module -----------------------------------------------------


def test_needs_a_key_and_a_mapped_respondent() -> None:
    with pytest.raises(ValueError, match="CARBONWRAP_EIA_KEY"):
        Eia("", "CISO")
    with pytest.raises(ValueError, match="'XXXX' is not a balancing authority"):
        Eia(KEY, "XXXX")
    p: Provider = Eia(KEY, "ERCO", base="http://127.0.0.1:9/eia/")
    assert (p.name, p.resolution_s, p.signal) == ("eia", 3600.0, AVERAGE)
    assert repr(p) == "Eia('eia:ERCO', base='http://127.0.0.1:9/eia')"


def test_areas_cover_the_us_zones_we_know_that_report_to_eia() -> None:
    zones = json.loads((FIXTURES / "electricitymaps_zones.json").read_text())
    assert set(eia_areas.AREAS) <= set(zones)
    assert {k: eia_areas.AREAS[k] for k in ("US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM")} == {
        "US-CAL-CISO": "CISO",
        "US-TEX-ERCO": "ERCO",
        "US-MIDA-PJM": "PJM",
    }
    assert "US-AK" not in eia_areas.AREAS and "US-CA" not in eia_areas.AREAS
    assert eia_areas.KEY_ENV == "CARBONWRAP_EIA_KEY" and eia_areas.RESOLUTION_S == 3600.0
    assert "production-based" in eia_areas.BASIS
