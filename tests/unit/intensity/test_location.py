"""Location resolution: --region/--location/--cloud > their variables > time zone > WORLD."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import REPO

from carbonwrap.errors import CarbonwrapError, ExitCode
from carbonwrap.intensity.cloud import lookup_cloud
from carbonwrap.intensity.location import Location, em_zones, resolve_location
from carbonwrap.intensity.table import load_table

DATA = REPO / "carbonwrap" / "data"


def _flag(
    region: str | None = None, location: str | None = None, cloud: str | None = None
) -> Location:
    return resolve_location(region, location, cloud, {}, "Etc/UTC")


def _error(
    region: str | None = None,
    location: str | None = None,
    cloud: str | None = None,
    environ: dict[str, str] | None = None,
) -> str:
    with pytest.raises(CarbonwrapError) as info:
        resolve_location(region, location, cloud, environ or {}, "Etc/UTC")
    assert "\n" not in info.value.message
    assert info.value.code == ExitCode.USAGE
    return info.value.message


# --- each kind -------------------------------------------------------------------------------


def test_country() -> None:
    loc = _flag("dk")
    assert (loc.region, loc.kind, loc.em_zone, loc.dk_area) == ("DK", "country", "DK", "DK1")
    assert (loc.static.region, loc.static.intensity_g_per_kwh) == ("DK", 143.3)
    assert (loc.gb_postcode, loc.lat, loc.lon, loc.source) == (None, None, None, "flag")
    assert loc.detail == "--region dk; Energinet price area DK1 (DK1 and DK2 values are identical)"


def test_country_by_name_and_gb_is_national() -> None:
    loc = _flag("United Kingdom")
    assert (loc.region, loc.kind, loc.em_zone, loc.gb_postcode) == ("GB", "country", "GB", None)
    assert loc.static.intensity_g_per_kwh == 210.89
    assert "national GB values" in loc.detail


def test_country_without_a_zone_of_its_own_names_its_zones() -> None:
    loc = _flag("CA")  # Electricity Maps splits Canada into provinces
    assert (loc.kind, loc.em_zone, loc.static.region) == ("country", None, "CA")
    assert "Electricity Maps has no zone for all of Canada" in loc.detail
    assert "(CA-AB ... CA-YT)" in loc.detail


def test_us_state_has_no_zone() -> None:
    loc = _flag("us-ca")
    assert (loc.region, loc.kind, loc.em_zone) == ("US-CA", "us-state", None)
    assert (loc.static.region, loc.static.intensity_g_per_kwh) == ("US-CA", 179.06)
    assert "balancing areas" in loc.detail


def test_us_state_that_is_also_a_zone() -> None:
    loc = _flag("US-AK")  # Alaska is one Electricity Maps zone
    assert (loc.kind, loc.em_zone, loc.static.region) == ("us-state", "US-AK", "US-AK")


@pytest.mark.parametrize(
    ("text", "zone", "country", "area"),
    [
        ("DK-DK1", "DK-DK1", "DK", "DK1"),
        ("dk-dk2", "DK-DK2", "DK", "DK2"),
        ("DK-BHM", "DK-BHM", "DK", "DK2"),  # Bornholm is in price area DK2
        ("SE-SE3", "SE-SE3", "SE", None),
        ("GB-NIR", "GB-NIR", "GB", None),
        ("US-MIDA-PJM", "US-MIDA-PJM", "US", None),  # 14 states, none with most of the load
    ],
)
def test_zone_falls_back_to_its_country(
    text: str, zone: str, country: str, area: str | None
) -> None:
    loc = _flag(text)
    assert (loc.region, loc.kind, loc.em_zone, loc.dk_area) == (zone, "zone", zone, area)
    assert loc.static == load_table().lookup(country)
    assert f"offline fallback {loc.static.region_name} ({country}) country average" in loc.detail
    assert loc.gb_postcode is None


@pytest.mark.parametrize(
    ("text", "zone", "state"),
    [
        ("US-CAL-CISO", "US-CAL-CISO", "US-CA"),
        ("us-cal-ciso", "US-CAL-CISO", "US-CA"),
        ("US-NY-NYIS", "US-NY-NYIS", "US-NY"),
        ("US-TEX-ERCO", "US-TEX-ERCO", "US-TX"),
        ("US-FLA-FPL", "US-FLA-FPL", "US-FL"),
        ("US-HI-OA", "US-HI-OA", "US-HI"),
        ("US-SE-SOCO", "US-SE-SOCO", "US-GA"),  # multi-state: most of the load in Georgia
    ],
)
def test_a_us_balancing_area_falls_back_to_its_state(text: str, zone: str, state: str) -> None:
    loc = _flag(text)
    assert (loc.region, loc.kind, loc.em_zone) == (zone, "zone", zone)
    assert loc.static == load_table().lookup(state)
    assert f"({state}) state average" in loc.detail


def test_zone_detail() -> None:
    assert _flag("US-CAL-CISO").detail == (
        "--region US-CAL-CISO; Electricity Maps zone California Independent System Operator; "
        "offline fallback California (US-CA) state average"
    )
    assert _flag("US-NE-ISNE").detail.endswith(
        "offline fallback Massachusetts (US-MA) state average "
        "(its balancing area also serves CT, ME, NH, RI, VT)"
    )


def test_every_us_zone_is_mapped_to_a_state_of_the_table_or_to_none() -> None:
    """us_zone_states.csv: each US zone of the zone list once, each state a row of the table."""
    with open(DATA / "us_zone_states.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    us_zones = sorted(zone for zone in em_zones() if zone.startswith("US-"))
    assert [row["zone"] for row in rows] == us_zones
    table = load_table()
    for row in rows:
        assert not row["state"] or f"US-{row['state']}" in table, row
        assert not row["state"] or row["state"] in row["states_served"].split(), row


def test_a_place_gets_the_same_offline_row_however_it_is_spelt() -> None:
    """A zone, a point in it and the country or state code: one row."""
    spellings = [
        ("DK", "DK-DK1", "55.6761,12.5683"),  # Copenhagen
        ("US-CA", "US-CAL-CISO", "37.77,-122.42"),  # San Francisco
        ("DE", "DE", "50.1109,8.6821"),  # Frankfurt
        ("US-NY", "US-NY-NYIS", "40.7128,-74.006"),  # New York
    ]
    for code, zone, point in spellings:
        rows = {_flag(code).static, _flag(zone).static, _flag(location=point).static}
        assert rows == {load_table().lookup(code)}, (code, rows)


def test_zone_whose_country_has_no_table_row_falls_back_to_world() -> None:
    loc = _flag("AX")  # Åland: a zone, not in the country table
    assert (loc.kind, loc.em_zone, loc.static.region) == ("zone", "AX", "WORLD")
    assert "world average (AX has no offline data)" in loc.detail


def test_gb_postcode() -> None:
    loc = _flag("gb-postcode:RG10")
    assert (loc.region, loc.kind, loc.gb_postcode, loc.em_zone) == (
        "gb-postcode:RG10",
        "gb-postcode",
        "RG10",
        "GB",
    )
    assert loc.static == load_table().lookup("GB")
    assert loc.dk_area is None
    assert "outward code RG10" in loc.detail


def test_latlon() -> None:
    loc = _flag(location="55.6761,12.5683")
    assert (loc.region, loc.kind, loc.lat, loc.lon) == (
        "55.6761,12.5683",
        "latlon",
        55.6761,
        12.5683,
    )
    assert (loc.em_zone, loc.static.region, loc.static.intensity_g_per_kwh) == (None, "DK", 143.3)
    assert loc.detail == (
        "--location 55.6761,12.5683; offline fallback Denmark (DK) country average, "
        "where the point lies"
    )


def test_latlon_in_a_us_state() -> None:
    loc = _flag(location="37.77,-122.42")
    assert (loc.kind, loc.static.region) == ("latlon", "US-CA")
    assert "offline fallback California (US-CA) state average" in loc.detail


def test_latlon_at_sea_is_the_world_average_with_a_note() -> None:
    loc = _flag(location="30,-40")  # the middle of the North Atlantic
    assert (loc.kind, loc.static.region) == ("latlon", "WORLD")
    assert (
        loc.detail
        == "--location 30,-40; offline fallback world average (at sea: no coast within 22 km)"
    )


def test_latlon_just_off_a_coast_is_that_country_with_the_distance() -> None:
    loc = _flag(location="55.68,12.75")  # the Øresund, 8 km off Copenhagen's coast
    assert loc.static.region == "DK"
    assert "Denmark (DK) country average, the nearest coast, 8 km off" in loc.detail


def test_latlon_in_a_place_without_a_table_row() -> None:
    loc = _flag(location="60.1,19.95")  # Mariehamn, Åland: AX, as the zone AX
    assert loc.static.region == "WORLD"
    assert "world average (AX has no offline data)" in loc.detail


@pytest.mark.parametrize(
    ("text", "region"),
    [
        ("55.6761, 12.5683", "55.6761,12.5683"),
        (" 55.676100 ,12.56830 ", "55.6761,12.5683"),
        ("-33.8688,151.2093", "-33.8688,151.2093"),
        ("90,180", "90,180"),
        ("-90,-180", "-90,-180"),
        ("-0.0,0", "0,0"),
        ("1.23456789,2", "1.234568,2"),
    ],
)
def test_latlon_canonical_form(text: str, region: str) -> None:
    assert _flag(location=text).region == region


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("90.5,0", "latitude 90.5 in location '90.5,0' is outside -90..90"),
        ("-91,0", "latitude -91 in location"),
        ("0,180.01", "longitude 180.01 in location '0,180.01' is outside -180..180"),
        ("0,-181", "longitude -181 in location"),
        ("nan,0", "latitude nan in location"),
        ("0,inf", "longitude inf in location"),
        ("abc,1", "bad location 'abc,1': give LAT,LON in decimal degrees"),
        ("55.6 12.5", "bad location '55.6 12.5'"),
        ("1,2,3", "bad location '1,2,3'"),
        ("55.6,", "bad location '55.6,'"),
        ("", "empty location: give LAT,LON"),
    ],
)
def test_bad_latlon(text: str, start: str) -> None:
    assert _error(location=text).startswith(start)


# --- cloud -----------------------------------------------------------------------------------


def test_cloud_region_from_the_csv() -> None:
    loc = _flag(cloud="aws:eu-west-1")
    assert (loc.region, loc.kind, loc.em_zone) == ("aws:eu-west-1", "cloud", "IE")
    static = loc.static
    assert (static.intensity_g_per_kwh, static.region, static.region_name) == (
        279.70,
        "aws:eu-west-1",
        "EU (Ireland)",
    )
    assert static.source == (
        "derived: country average IRL 2024 from country_intensity.csv (OWID/Ember, lifecycle)"
    )
    assert (static.year, static.basis) == (2024, "lifecycle")
    assert loc.detail == "--cloud aws:eu-west-1; EU (Ireland); Electricity Maps zone IE"


@pytest.mark.parametrize(
    ("text", "value", "year", "basis", "zone"),
    [
        ("gcp:europe-west1", 103.37, 2024, "operational grid average", "BE"),
        ("GCP:US-West2", 169.28, 2024, "operational grid average", "US-CAL-CISO"),
        ("azure:westeurope", 253.31, 2024, "lifecycle", "NL"),
        ("aws:us-east-1", 244.76, 2023, "direct combustion (eGRID)", "US-MIDA-PJM"),
        ("aws:us-gov-west-1", 349.67, 2023, "direct combustion (eGRID)", "US-NW-PACW"),
        (" azure : westus ", 179.06, 2023, "direct combustion (eGRID)", "US-CAL-CISO"),
    ],
)
def test_cloud_values_and_zones(text: str, value: float, year: int, basis: str, zone: str) -> None:
    loc = _flag(cloud=text)
    assert loc.kind == "cloud"
    assert (loc.static.intensity_g_per_kwh, loc.static.year, loc.em_zone) == (value, year, zone)
    assert loc.static.basis.startswith(basis)
    assert loc.region == loc.static.region == text.replace(" ", "").lower()


@pytest.mark.parametrize("text", ["aws:ap-east-1", "aws:cn-north-1", "azure:uaenorth"])
def test_cloud_region_mapped_to_no_zone(text: str) -> None:
    loc = _flag(cloud=text)  # the zone map has the row with an empty zone
    assert (loc.kind, loc.em_zone, loc.static.region) == ("cloud", None, text)
    assert loc.detail.endswith("; no Electricity Maps zone mapped")


def test_cloud_region_missing_from_the_zone_map() -> None:
    loc = _flag(cloud="gcp:europe-north2")  # Stockholm: in cloud_regions.csv only
    assert (loc.em_zone, loc.static.intensity_g_per_kwh) == (None, 2.73)


def test_cloud_region_only_in_the_zone_map_uses_its_zones_country() -> None:
    loc = _flag(cloud="azure:uk")
    assert (loc.region, loc.em_zone) == ("azure:uk", "GB")
    assert loc.static == load_table().lookup("GB")
    assert "no intensity row for this region" in loc.detail


def test_cloud_region_only_in_the_zone_map_uses_its_zones_state() -> None:
    loc = _flag(cloud="azure:westusstage")  # mapped to US-CAL-CISO only
    assert (loc.em_zone, loc.static) == ("US-CAL-CISO", load_table().lookup("US-CA"))
    assert "offline fallback California (US-CA) state average, from its zone" in loc.detail


def test_region_flag_takes_a_cloud_region_and_a_point() -> None:
    """Every canonical Location.region resolves again through --region."""
    assert _flag("aws:eu-west-1")[:8] == _flag(cloud="aws:eu-west-1")[:8]
    assert _flag("55.6761,12.5683")[:8] == _flag(location="55.6761,12.5683")[:8]


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("aws:eu-west-9", "did you mean aws:eu-west-1 (EU (Ireland)) or aws:eu-west-2"),
        ("aws:westeurope", "did you mean azure:westeurope (West Europe (Netherlands))"),
        ("aws:frankfurt", "did you mean aws:eu-central-1 (EU (Frankfurt))"),
        ("gcp:europe-west5", "gcp:europe-west"),
        ("azure:apeast", "did you mean azure:japaneast"),  # mapped to no zone, no value: unknown
    ],
)
def test_unknown_cloud_region_suggests_that_providers_regions(text: str, hint: str) -> None:
    message = _error(cloud=text)
    assert message.startswith(f"unknown cloud region {text!r}: use PROVIDER:REGION")
    assert hint in message
    provider = text.split(":")[0]
    suggestions = message.split("did you mean ")[1]
    if "westeurope" not in text:
        assert all(s.startswith(f"{provider}:") for s in suggestions.split(" or "))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "google:europe-west1",
            "unknown cloud provider 'google': use aws, gcp or azure; "
            "did you mean gcp:europe-west1?",
        ),
        ("ibm:us-south", "unknown cloud provider 'ibm': use aws, gcp or azure"),
        (
            "eu-west-1",
            "bad cloud region 'eu-west-1': use PROVIDER:REGION, such as aws:eu-west-1, "
            "gcp:europe-west1 or azure:westeurope; did you mean aws:eu-west-1?",
        ),
        ("aws:", "bad cloud region 'aws:': use PROVIDER:REGION"),
        ("", "empty cloud region: use PROVIDER:REGION"),
    ],
)
def test_bad_cloud_values(text: str, message: str) -> None:
    assert _error(cloud=text).startswith(message)


# --- GB postcodes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "outward"),
    [
        ("RG10", "RG10"),
        ("rg10", "RG10"),
        (" RG10 ", "RG10"),
        ("RG10 9XX", "RG10"),
        ("rg109xx", "RG10"),
        ("RG10   9XX", "RG10"),
        ("W1A", "W1A"),
        ("W1A 1AA", "W1A"),
        ("SW1A1AA", "SW1A"),
        ("EC1A 1BB", "EC1A"),
        ("M1", "M1"),
        ("M11AE", "M1"),
        ("B33 8TH", "B33"),
        ("CR2 6XH", "CR2"),
    ],
)
def test_postcode_shapes(text: str, outward: str) -> None:
    loc = _flag(f"gb-postcode:{text}")
    assert (loc.region, loc.gb_postcode) == (f"gb-postcode:{outward}", outward)


def test_postcode_prefix_any_case() -> None:
    assert _flag("GB-Postcode:rg10").gb_postcode == "RG10"


@pytest.mark.parametrize("text", ["12", "RG", "R", "RGG10", "RG10 9X", "RG10 9XXX", "RG10-9XX"])
def test_bad_postcode_shapes(text: str) -> None:
    message = _error(f"gb-postcode:{text}")
    assert message.startswith(f"bad GB postcode 'gb-postcode:{text}': give an outward code")


def test_empty_postcode() -> None:
    assert _error("gb-postcode:").startswith("empty GB postcode: ")


@pytest.mark.parametrize(
    ("text", "advice"),
    [("BT1 1AA", "--region GB-NIR"), ("IM1", "--region IM"), ("JE2", "--intensity")],
)
def test_postcode_off_the_gb_grid(text: str, advice: str) -> None:
    message = _error(f"gb-postcode:{text}")
    assert message.startswith(f"GB postcode {text.split()[0]} is ")
    assert message.endswith(advice)


# --- precedence and conflicts ----------------------------------------------------------------


def test_any_flag_beats_any_variable() -> None:
    environ = {"CARBONWRAP_REGION": "DK"}
    loc = resolve_location(None, None, "gcp:europe-west1", environ, "Europe/Copenhagen")
    assert (loc.region, loc.source, loc.detail.split(";")[0]) == (
        "gcp:europe-west1",
        "flag",
        "--cloud gcp:europe-west1",
    )
    environ = {"CARBONWRAP_CLOUD": "aws:eu-west-1", "CARBONWRAP_LOCATION": "1,2"}
    loc = resolve_location("DK-DK2", None, None, environ, "Etc/UTC")  # conflicting vars ignored
    assert (loc.region, loc.source) == ("DK-DK2", "flag")


@pytest.mark.parametrize(
    ("var", "value", "region", "kind"),
    [
        ("CARBONWRAP_REGION", "dk-dk1", "DK-DK1", "zone"),
        ("CARBONWRAP_LOCATION", "55.6761,12.5683", "55.6761,12.5683", "latlon"),
        ("CARBONWRAP_CLOUD", "azure:westeurope", "azure:westeurope", "cloud"),
    ],
)
def test_variable_beats_timezone(var: str, value: str, region: str, kind: str) -> None:
    loc = resolve_location(None, None, None, {var: f" {value} "}, "Europe/Copenhagen")
    assert (loc.region, loc.kind, loc.source) == (region, kind, "env")
    assert loc.detail.startswith(f"{var}={value}")


def test_timezone_when_nothing_given() -> None:
    loc = resolve_location(None, None, None, {}, "Europe/Copenhagen")
    assert (loc.region, loc.kind, loc.source, loc.dk_area) == ("DK", "country", "timezone", "DK1")
    assert loc.detail.startswith("time zone Europe/Copenhagen; ")


def test_timezone_read_from_environ() -> None:
    loc = resolve_location(None, None, None, {"TZ": ":Europe/London"})
    assert (loc.region, loc.source, loc.em_zone) == ("GB", "timezone", "GB")


@pytest.mark.parametrize("tz", ["Etc/UTC", "", "Antarctica/Troll"])
def test_default_world(tz: str) -> None:
    loc = resolve_location(None, None, None, {}, tz)
    assert (loc.region, loc.kind, loc.source, loc.em_zone) == ("WORLD", "world", "default", None)
    assert loc.static == load_table().world()
    assert loc.detail.startswith("no region given")


def test_world_flag() -> None:
    loc = _flag("world")
    assert (loc.region, loc.kind, loc.source, loc.detail) == (
        "WORLD",
        "world",
        "flag",
        "--region world",
    )


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_variables_count_as_unset(blank: str) -> None:
    environ = {"CARBONWRAP_REGION": blank, "CARBONWRAP_CLOUD": blank, "CARBONWRAP_LOCATION": "1,2"}
    assert resolve_location(None, None, None, environ, "Etc/UTC").kind == "latlon"


@pytest.mark.parametrize(
    ("region", "location", "cloud", "names"),
    [
        ("DK", "1,2", None, "--region and --location"),
        ("DK", None, "aws:eu-west-1", "--region and --cloud"),
        (None, "1,2", "aws:eu-west-1", "--location and --cloud"),
        ("DK", "1,2", "aws:eu-west-1", "--region and --location and --cloud"),
        ("", "1,2", None, "--region and --location"),  # an empty flag is still given
    ],
)
def test_two_flags_conflict(
    region: str | None, location: str | None, cloud: str | None, names: str
) -> None:
    assert _error(region, location, cloud) == f"{names} given together: give only one of them"


def test_two_variables_conflict() -> None:
    environ = {"CARBONWRAP_REGION": "DK", "CARBONWRAP_CLOUD": "aws:eu-west-1"}
    assert _error(environ=environ) == (
        "CARBONWRAP_REGION and CARBONWRAP_CLOUD are set together: unset all but one"
    )


# --- unknown regions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("DK-DK3", "did you mean DK-DK1 (West Denmark) or DK-DK2 (East Denmark)?"),
        ("US-CAL-CISX", "did you mean US-CAL-CISO (California Independent System Operator)"),
        ("US-CAL", "did you mean US-CAL-BANC ("),  # zones that start with it come first
        ("Bornholm", "did you mean DK-BHM (Bornholm)?"),
        ("DNK", "did you mean DK (Denmark)?"),
        ("Denmrak", "DK (Denmark)"),
        ("US-CF", "US-CA (California)"),
        ("eu-west-1", "did you mean --cloud aws:eu-west-1?"),
    ],
)
def test_unknown_region_lists_near_matches(text: str, hint: str) -> None:
    message = _error(text)
    assert message.startswith(
        f"unknown region {text!r}: use a country (DK), a US state (US-CA), "
        "an Electricity Maps zone (DK-DK1) or gb-postcode:RG10"
    )
    assert hint in message


def test_unknown_region_without_near_matches() -> None:
    assert "did you mean" not in _error("qqqqqq")


def test_errors_name_the_variable() -> None:
    assert _error(environ={"CARBONWRAP_REGION": "DK-DK3"}).startswith(
        "unknown region 'DK-DK3' in CARBONWRAP_REGION: "
    )
    assert _error(environ={"CARBONWRAP_LOCATION": "95,0"}).startswith(
        "latitude 95 in location '95,0' in CARBONWRAP_LOCATION is outside"
    )
    assert _error(environ={"CARBONWRAP_CLOUD": "aws:nowhere"}).startswith(
        "unknown cloud region 'aws:nowhere' in CARBONWRAP_CLOUD: "
    )


def test_empty_and_ambiguous_region_flags() -> None:
    assert _error("").startswith("empty region: use a country (DK)")
    assert _error("Georgia") == (
        "ambiguous region 'Georgia': GE (Georgia) or US-GA (Georgia); give the code"
    )


# --- shipped data agrees with itself ---------------------------------------------------------


def _csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_mapped_zone_is_a_known_zone() -> None:
    zones = em_zones()
    mapped = {row["electricitymaps_zone"] for row in _csv("cloud_region_zone_map.csv")}
    assert mapped - {""} <= set(zones)


def test_every_cloud_row_resolves() -> None:
    table = load_table()
    for row in _csv("cloud_regions.csv"):
        found = lookup_cloud(f"{row['provider']}:{row['region']}", table)
        assert found.static.intensity_g_per_kwh == float(row["gco2e_per_kwh"])
        assert 2020 <= found.static.year <= 2030
        assert found.static.source == row["source"]


def test_every_zone_resolves_and_round_trips() -> None:
    for zone in em_zones():
        loc = _flag(zone)
        assert loc.em_zone == zone
        assert loc.kind in ("country", "zone", "us-state")
        again = _flag(loc.region)
        assert again[:8] == loc[:8]


def test_import_and_country_resolution_stay_lazy() -> None:
    """Importing reads no data; a country reads the zone list but not the cloud CSVs or difflib."""
    code = (
        "import sys\n"
        "import carbonwrap.intensity.location as loc\n"
        "assert loc.em_zones.cache_info().currsize == 0\n"
        "assert 'carbonwrap.intensity.cloud' not in sys.modules\n"
        "assert 'difflib' not in sys.modules\n"
        "loc.resolve_location('DK', None, None, {})\n"
        "assert 'carbonwrap.intensity.cloud' not in sys.modules\n"
        "assert 'difflib' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
