"""Which intensity source serves a location: auto order, explicit choices, their errors."""

from __future__ import annotations

import pytest

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.location import resolve_location
from carbonwrap.intensity.select import choose

TOKEN = {"CARBONWRAP_ELECTRICITYMAPS_TOKEN": "t0ken"}
WATTTIME = {"CARBONWRAP_WATTTIME_USERNAME": "u", "CARBONWRAP_WATTTIME_PASSWORD": "p"}


def where(region: str | None = None, location: str | None = None):  # type: ignore[no-untyped-def]
    return resolve_location(region, location, None, {}, tz_name="Etc/UTC")


@pytest.mark.parametrize(
    ("region", "env", "name"),
    [
        ("DK", {}, "energidataservice"),
        ("DK-DK2", {}, "energidataservice"),
        ("GB", {}, "ukgrid"),
        ("gb-postcode:RG10", {}, "ukgrid"),
        ("GB-NIR", {}, "eirgrid"),  # Northern Ireland is not on the GB grid: SONI's figure
        ("DK", TOKEN, "electricitymaps"),
        ("DE", TOKEN, "electricitymaps"),
        ("DE", {}, "energycharts"),  # no signup: the generation mix priced with factors
        ("DE", {"CARBONWRAP_ENTSOE_TOKEN": "t"}, "entsoe"),  # the user's own key first
        ("FR", {}, "odre"),  # RTE's own intensity before Energy-Charts' mix
        ("FI", {}, "energycharts"),
        ("FI", {"CARBONWRAP_FINGRID_KEY": "k"}, "fingrid"),
        ("AU-NSW", {}, None),  # Open Electricity needs a key
        ("AU-NSW", {"CARBONWRAP_OPENELECTRICITY_KEY": "k"}, "openelectricity"),
        ("US-MIDA-PJM", {"CARBONWRAP_EIA_KEY": "k"}, None),  # EIA is a day late: not live
        ("US-CA", TOKEN, "caiso"),  # a state is no Electricity Maps zone; CAISO serves most of it
        ("US-CAL-CISO", TOKEN, "electricitymaps"),
        ("US-CAL-CISO", WATTTIME, "caiso"),  # WattTime (marginal) only when asked for
        ("BR", {}, None),
    ],
)
def test_auto(region: str, env: dict[str, str], name: str | None) -> None:
    choice = choose("auto", where(region), env)
    assert choice.name == name
    assert (choice.make is None) == (name is None)
    if name is None:
        assert choice.note and "static table" in choice.note


def test_auto_builds_the_provider_it_names() -> None:
    provider = choose("auto", where("gb-postcode:RG10 1AA"), {}).make()  # type: ignore[misc]
    assert provider.name == "ukgrid" and provider.source == "ukgrid:RG10"


@pytest.mark.parametrize(
    ("source", "region", "env", "message"),
    [
        ("electricitymaps", "DE", {}, "needs a token in $CARBONWRAP_ELECTRICITYMAPS_TOKEN"),
        ("ukgrid", "DK", {}, "serves Great Britain only"),
        ("energidataservice", "GB", {}, "serves Denmark only"),
        ("watttime", "US-CA", {}, "needs $CARBONWRAP_WATTTIME_USERNAME"),
        ("watttime", "US-CA", WATTTIME, "needs --location"),
    ],
)
def test_explicit_source_that_cannot_serve_is_an_error(
    source: str, region: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(CarbonwrapError, match=message.replace("$", r"\$")):
        choose(source, where(region), env)


def test_watttime_when_asked_with_coordinates_and_static_always() -> None:
    choice = choose("watttime", where(location="37.77,-122.42"), WATTTIME)
    assert choice.name == "watttime"
    assert choose("static", where("DK"), TOKEN).make is None


def test_the_plan_names_the_provider_asked_and_why() -> None:
    from carbonwrap.intensity.plan import plan_intensity

    environ = {"XDG_CONFIG_HOME": "/nonexistent/carbonwrap-tests"}
    plan = plan_intensity("DE", None, None, "auto", None, environ)
    assert plan.region["provider"] == "energycharts"
    why = plan.region["provider_why"]
    assert why.startswith("auto: the first source serving DE in carbonwrap's order: Energy-Charts")
    assert "no signup" in why and "with a key: " in why and "ENTSO-E" in why  # what else
    static = plan_intensity("BR", None, None, "auto", None, environ)
    assert static.region["provider"] == "static"
    assert "no live intensity provider for BR" in static.region["provider_why"]


def test_history_comes_from_a_source_that_keeps_it() -> None:
    from carbonwrap.intensity.select import choose_history, history_days

    choice = choose_history(where("US-MIDA-PJM"), {"CARBONWRAP_EIA_KEY": "k"})
    assert choice.name == "eia"  # a day late, yet it keeps years: right for reprice
    assert history_days("eia") >= 365 and history_days("ukgrid") == 365.0  # 14 days a request
    assert choose_history(where("BR"), {}).name is None
