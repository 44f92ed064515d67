"""ENTSO-E provider: pure XML parsers with plain values, then a real local server."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, Route, serve

from carbonwrap.intensity.http import Timeouts
from carbonwrap.intensity.location import em_zones
from carbonwrap.intensity.points import AVERAGE, LATEST, MEASURED, ProviderError
from carbonwrap.intensity.providers import Provider
from carbonwrap.intensity.providers import entsoe_areas as areas
from carbonwrap.intensity.providers.entsoe import (
    Entsoe,
    parse_history,
    parse_latest,
    step_mixes,
)

FAST = Timeouts(connect_s=0.3, total_s=0.3)
Q = ("2024-03-12T10:00Z", "2024-03-12T10:15Z")  # the first quarter
T0 = 1710237600.0  # 2024-03-12T10:00Z, the first quarter of the fixture
STEP_S = 900.0
TOKEN = "8f3e2d1c-0b9a-4c7d-8e6f-5a4b3c2d1e0f"
SRC = "entsoe:DE (generation mix × lifecycle factors)"
NS = "urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0"


def a75() -> str:
    return (FIXTURES / "entsoe_a75_de_lu.xml").read_text()


def ack() -> str:
    return (FIXTURES / "entsoe_acknowledgement_no_data.xml").read_text()


def step5_g_per_kwh() -> float:
    """Quarter 5 of the fixture (11:15Z) priced by hand: B01 biomass, B02 lignite, B04 gas,
    B05 hard coal, B06 oil, B10 pumped-storage generation (its pumping, 1290 MW, is an
    outBiddingZone series and not counted), B11 hydro, B16 solar, B17 waste, B18 offshore,
    B19 onshore, B20 other."""
    mw_g = [
        (4377, 230), (7810, 820), (5150, 490), (2260, 820), (300, 650), (380, 0), (1385, 24),
        (26280, 48), (800, 700), (3350, 12), (12955, 11), (249, 700),
    ]  # fmt: skip
    return sum(mw * g for mw, g in mw_g) / sum(mw for mw, _ in mw_g)


def series(psr: str, start: str, end: str, resolution: str, points: str, **kw: str) -> str:
    domain = kw.get("domain", "inBiddingZone_Domain.mRID")
    return (
        f"<TimeSeries><{domain}>10YFR-RTE------C</{domain}>"
        f"<quantity_Measure_Unit.name>{kw.get('unit', 'MAW')}</quantity_Measure_Unit.name>"
        f"<curveType>{kw.get('curve', 'A01')}</curveType>"
        f"<MktPSRType><psrType>{psr}</psrType></MktPSRType><Period>"
        f"<timeInterval><start>{start}</start><end>{end}</end></timeInterval>"
        f"<resolution>{resolution}</resolution>{points}</Period></TimeSeries>"
    )


def pts(*values: float, first: int = 1) -> str:
    return "".join(
        f"<Point><position>{first + i}</position><quantity>{v:g}</quantity></Point>"
        for i, v in enumerate(values)
    )


def doc(*timeseries: str, kind: str = "A75") -> str:
    body = "".join(timeseries)
    return f'<GL_MarketDocument xmlns="{NS}"><type>{kind}</type>{body}</GL_MarketDocument>'


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def provider(server: RecordedServer, **kw: Any) -> Entsoe:
    kw.setdefault("timeouts", FAST)
    kw.setdefault("now", lambda: T0 + 2 * 3600 + 1800)  # 12:30Z
    return Entsoe("DE", TOKEN, server.url + "/api", **kw)


async def call(method: str, p: Entsoe, *args: float) -> Any:
    async with aiohttp.ClientSession() as session:
        return await getattr(p, method)(session, *args)


# --- pure parsers -------------------------------------------------------------------------


def test_latest_is_the_newest_complete_quarter_without_pumping() -> None:
    # Waste (B17) has six quarters only: quarter 5 (11:15Z) is the newest complete one.
    point = parse_latest(a75(), SRC)
    assert (point.start_s, point.end_s) == (T0 + 5 * STEP_S, T0 + 6 * STEP_S)
    assert point.intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())
    assert (point.kind, point.signal, point.source) == (LATEST, AVERAGE, SRC)


def test_history_prices_every_complete_quarter() -> None:
    points = parse_history(a75(), SRC)
    assert [p.start_s for p in points] == [T0 + i * STEP_S for i in range(6)]
    assert {p.kind for p in points} == {MEASURED}
    _, mixes = step_mixes(a75(), SRC)
    assert mixes[5][1]["storage"] == 380.0  # generation only: the 1290 MW pumped are not in


def test_hourly_series_spread_onto_quarters_and_a03_fills_to_the_next_position() -> None:
    text = doc(
        series("B14", "2024-03-12T10:00Z", "2024-03-12T11:00Z", "PT15M", pts(100, 200, 300, 400)),
        series("B04", "2024-03-12T10:00Z", "2024-03-12T11:00Z", "PT60M", pts(1000)),
        # curveType A03: position 1 holds for quarters 1-2, position 3 for quarters 3-4
        series(
            "B19", "2024-03-12T10:00Z", "2024-03-12T11:00Z", "PT15M", pts(50, first=1)
            + pts(70, first=3), curve="A03",
        ),
    )  # fmt: skip
    step_s, mixes = step_mixes(text, SRC)
    assert step_s == STEP_S
    assert mixes == [
        (T0, {"nuclear": 100.0, "gas": 1000.0, "wind": 50.0}),
        (T0 + STEP_S, {"nuclear": 200.0, "gas": 1000.0, "wind": 50.0}),
        (T0 + 2 * STEP_S, {"nuclear": 300.0, "gas": 1000.0, "wind": 70.0}),
        (T0 + 3 * STEP_S, {"nuclear": 400.0, "gas": 1000.0, "wind": 70.0}),
    ]


def test_an_acknowledgement_means_no_data() -> None:
    with pytest.raises(ProviderError, match=r"no matching data \(No matching data found for"):
        parse_latest(ack(), SRC)
    refused = ack().replace("<code>999</code>", "<code>A01</code>")
    with pytest.raises(ProviderError, match="request refused \\(code A01: No matching"):
        parse_history(refused, SRC)


def test_unknown_production_above_a_fifth_is_refused() -> None:
    text = doc(
        series("B14", "2024-03-12T10:00Z", "2024-03-12T10:15Z", "PT15M", pts(700)),
        series("B99", "2024-03-12T10:00Z", "2024-03-12T10:15Z", "PT15M", pts(300)),
    )
    with pytest.raises(ProviderError, match=r"only 70% .* \(unknown psrType: B99\)"):
        parse_latest(text, SRC)


LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    "<GL_MarketDocument>&lol2;</GL_MarketDocument>"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LAUGHS, "declares a DOCTYPE or ENTITY: refused"),
        ("<GL_MarketDocument><TimeSeries>", "malformed XML"),
        ("", "malformed XML"),
        ("<Publication_MarketDocument/>", "answer is a Publication_MarketDocument"),
        (doc(kind="A65"), "document type 'A65', asked for A75"),
        (doc(), "no generation series"),
        (
            doc(series("B04", *Q, "PT15M", pts(1), unit="KWH")),
            r"TimeSeries\[0\] is in 'KWH'",
        ),
        (
            doc(series("B04", "2024-03-12T10:00Z", "2024-03-12T10:15Z", "P1D", pts(1))),
            "unknown resolution",
        ),
        (
            doc(series("B04", "yesterday", "2024-03-12T10:15Z", "PT15M", pts(1))),
            "start 'yesterday' is not an ISO time",
        ),
        (
            doc(series("B04", "2024-03-12T10:00Z", "2124-03-12T10:15Z", "PT15M", pts(1))),
            "time interval of a wrong length",
        ),
        (
            doc(
                series(
                    "B04",
                    "2024-03-12T10:00Z",
                    "2024-03-12T10:15Z",
                    "PT15M",
                    "<Point><position>1</position><quantity>lots</quantity></Point>",
                )
            ),
            "has a point '1': 'lots'",
        ),
        (
            doc(
                series(
                    "B04",
                    "2024-03-12T10:00Z",
                    "2024-03-12T10:15Z",
                    "PT15M",
                    pts(5, first=1),
                    domain="outBiddingZone_Domain.mRID",
                )
            ),
            "no generation series",
        ),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        parse_latest(text, SRC)


def test_a_doctype_is_refused_quickly_before_any_expansion() -> None:
    started = time.perf_counter()
    with pytest.raises(ProviderError, match="DOCTYPE"):
        parse_history(LAUGHS.replace("&lol2;", "&lol2;" * 100_000), SRC)
    assert time.perf_counter() - started < 1.0


# --- the provider against a real server ---------------------------------------------------


def test_latest_sends_the_documented_query_and_asks_for_xml() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/api", body=a75().encode())
        point = await call("latest", provider(server))
        assert point.intensity_g_per_kwh == pytest.approx(step5_g_per_kwh())
        (request,) = server.requests
        assert request.query == {
            "securityToken": TOKEN,
            "documentType": "A75",
            "processType": "A16",
            "in_Domain": "10Y1001A1001A82H",
            "periodStart": "202403120600",  # six hours back from 12:30Z, to the hour
            "periodEnd": "202403121300",
        }
        assert request.headers["Accept"] == "application/xml"

    serve(check)


def test_history_cuts_the_window_and_no_data_yet_is_empty() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/api", body=a75().encode())
        p = provider(server)
        points = await call("history", p, T0 + STEP_S, T0 + 2 * STEP_S + 1)
        assert [q.start_s for q in points] == [T0 + STEP_S, T0 + 2 * STEP_S]
        assert server.requests[0].query["periodStart"] == "202403121000"
        assert server.requests[0].query["periodEnd"] == "202403121100"
        server.route("/api", body=ack().encode())
        assert await call("history", p, T0, T0 + STEP_S) == []
        assert await call("history", p, T0, T0) == []
        assert len(server.requests) == 2

    serve(check)


def test_the_token_never_reaches_a_reason_or_repr() -> None:
    async def check(server: RecordedServer) -> None:
        server.route("/api", status=401, body=b"<html>bad token " + TOKEN.encode() + b"</html>")
        p = provider(server)
        with pytest.raises(ProviderError) as caught:
            await call("latest", p)
        assert "unauthorized (HTTP 401): check the token" in caught.value.reason
        server.route("/api", body=doc(series("B04", TOKEN, TOKEN, "PT15M", pts(1))).encode())
        with pytest.raises(ProviderError) as caught:
            await call("latest", p)
        assert TOKEN not in caught.value.reason and TOKEN not in repr(p)
        assert TOKEN[:8] not in caught.value.reason

    serve(check)


def test_faults_are_retried_then_reported() -> None:
    async def check(server: RecordedServer) -> None:
        server.sequence("/api", [Route(status=502), Route(body=a75().encode())])
        sleeps = Sleeps()
        point = await call("latest", provider(server, sleep=sleeps))
        assert point.start_s == T0 + 5 * STEP_S and sleeps.waits == [0.5]
        server.route("/api", hang=True)
        with pytest.raises(ProviderError, match=r"no answer within 0\.3 s"):
            await call("latest", provider(server, retries=0))

    serve(check)


def test_forecast_is_empty_without_asking() -> None:
    async def check(server: RecordedServer) -> None:
        assert await call("forecast", provider(server)) == []
        assert server.requests == []

    serve(check)


# --- construction and areas ---------------------------------------------------------------


def test_construction_needs_a_zone_and_a_token() -> None:
    with pytest.raises(ValueError, match="no bidding zone for 'GB'"):
        Entsoe("GB", TOKEN)
    with pytest.raises(ValueError, match="needs a security token"):
        Entsoe("FR", "  ")
    p: Provider = Entsoe("SE-SE3", TOKEN)
    assert (p.name, p.resolution_s, p.signal) == ("entsoe", 900.0, AVERAGE)
    assert repr(p) == "Entsoe('entsoe:SE-SE3', base='https://web-api.tp.entsoe.eu/api')"


def test_areas_are_electricity_maps_zones_with_eic_codes() -> None:
    assert set(areas.AREAS) <= set(em_zones())
    assert all(len(eic) == 16 for eic in areas.AREAS.values())
    assert areas.AREAS["SE-SE3"] == "10Y1001A1001A46L"
    assert areas.KEY_ENV == "CARBONWRAP_ENTSOE_TOKEN"
