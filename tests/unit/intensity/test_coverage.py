"""Issue 16's promise: at least 40 regions live without any signup, each one's source asked
through carbonwrap's own choice (`select.choose`, "auto") and answering from a recorded
response on a real aiohttp server on 127.0.0.1 — the request names that region's area."""

from __future__ import annotations

import aiohttp
import pytest
from intensity_server import FIXTURES, RecordedServer, serve

from carbonwrap.choices import INTENSITY_SOURCES
from carbonwrap.intensity import catalog
from carbonwrap.intensity.location import resolve_location
from carbonwrap.intensity.points import AVERAGE
from carbonwrap.intensity.select import choose

# What each no-signup source's server answers: path -> fixture (the same recorded answer for
# every area: the test checks what was asked, and that the answer parses into a value).
ROUTES: dict[str, dict[str, str]] = {
    "energycharts": {"/public_power": "energycharts_public_power.json",
                     "/co2eq": "energycharts_co2eq.json"},
    "ukgrid": {"/intensity": "ukci_intensity_docs.json"},
    "energidataservice": {"/dataset/CO2Emis": "energidataservice_co2emis.json"},
    "odre": {"/catalog/datasets/eco2mix-national-tr/records": "odre_eco2mix_national_tr.json"},
    "caiso": {"/current/co2.csv": "caiso_co2_current.csv",
              "/current/demand.csv": "caiso_demand_current.csv"},
    "eirgrid": {"/api/chart/": "eirgrid_co2intensity_roi.json"},
    "nyiso": {"/*": "nyiso_20250201rtfuelmix.csv"},
    "miso": {"/*": "miso_fuelmix_today.json"},
    "ercot": {"/fuel-mix.json": "ercot_fuel_mix.json"},
}  # fmt: skip
ASKED_AS = {  # which query parameter (or path part) carries the area, per provider
    "energycharts": "country",
    "energidataservice": "filter",
}


def free_regions() -> list[tuple[str, str]]:
    """(region, provider) for every region auto serves live without a key."""
    rows = catalog.coverage()
    return sorted({(r["region"], r["provider"]) for r in rows if not r["key"] and r["live"]})


def test_the_lists_of_sources_agree() -> None:
    assert ("auto", "static", *catalog.NAMES) == INTENSITY_SOURCES


def test_at_least_40_regions_are_live_without_signing_up() -> None:
    regions = {region for region, _ in free_regions()}
    assert len(regions) >= 40, sorted(regions)


def _provider_for(region: str) -> tuple[str, object]:
    where = resolve_location(region, None, None, {}, tz_name="Etc/UTC")
    choice = choose("auto", where, {})
    assert choice.make is not None, (region, choice.note)
    return choice.name or "", where


@pytest.mark.parametrize(("region", "provider"), free_regions())
def test_each_free_region_is_served_from_a_recorded_answer(
    region: str, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = resolve_location(region, None, None, {}, tz_name="Etc/UTC")
    routes = ROUTES.get(provider)
    if routes is None:
        pytest.fail(f"no recorded answer routed for {provider}: add it to ROUTES")

    async def check(server: RecordedServer) -> None:
        for path, fixture in routes.items():
            data = (FIXTURES / fixture).read_bytes()
            if provider == "eirgrid":  # one recorded day, for the region asked (ROI or NI)
                area, _ = catalog.area_for(catalog.BY_NAME[provider], where)
                data = data.replace(b'"ROI"', f'"{area}"'.encode())
            server.route(path, body=data)
        environ = {f"CARBONWRAP_{provider.upper()}_URL": server.url}
        choice = choose(provider, where, environ)  # the same factory auto uses
        assert choice.make is not None
        made = choice.make()
        async with aiohttp.ClientSession() as session:
            point = await made.latest(session)
        assert point.signal == AVERAGE and 0 < point.intensity_g_per_kwh < 2000
        assert point.source.startswith(provider)
        asked = [r for r in server.requests if r.path in routes or "/*" in routes]
        assert asked, "the provider asked the server nothing"
        parameter = ASKED_AS.get(provider)
        if parameter is not None:
            source = catalog.BY_NAME[provider]
            area, _ = catalog.area_for(source, where)
            assert area is not None
            wanted = catalog.areas_of(source).AREAS[area] if source.by_zone else area
            assert any(wanted in r.query.get(parameter, "") for r in asked), asked

    serve(check)
    # and auto picks a live source for it without any key
    name, _ = _provider_for(region)
    assert name


def test_the_list_command_and_its_json() -> None:
    import io
    import json

    from carbonwrap.commands.intensity import list_sources

    out = io.StringIO()
    assert list_sources(True, out) == 0
    doc = json.loads(out.getvalue())
    assert doc["schema"] == "carbonwrap.intensity-sources/1"
    assert len(doc["no_signup_regions"]) >= 40
    fr = [s for s in doc["sources"] if s["region"] == "FR"]
    assert {s["provider"] for s in fr} >= {"odre", "energycharts", "entsoe"}
    assert next(s for s in fr if s["provider"] == "entsoe")["key"] == ["CARBONWRAP_ENTSOE_TOKEN"]
    text = io.StringIO()
    list_sources(False, text)
    assert text.getvalue().rstrip().endswith("others use the yearly table.")
