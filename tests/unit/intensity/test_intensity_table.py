"""The shipped offline intensity table: plain numbers from the CSVs in carbonwrap/data."""

from __future__ import annotations

import math

import pytest

from carbonwrap.intensity.table import WORLD, StaticIntensity, defaults, load_table
from carbonwrap.packagedata import read_data


def test_country_row() -> None:
    assert load_table().lookup("DK") == StaticIntensity(
        intensity_g_per_kwh=143.30,
        region="DK",
        region_name="Denmark",
        year=2024,
        source="OWID/Ember 2024 yearly average (CC BY 4.0)",
        basis="lifecycle",
    )


def test_us_state_row_is_egrid() -> None:
    entry = load_table().lookup("US-CA")
    assert (entry.intensity_g_per_kwh, entry.region, entry.region_name, entry.year) == (
        179.06,
        "US-CA",
        "California",
        2023,
    )
    assert entry.source == "EPA eGRID2023 state average (public domain)"
    assert entry.basis == "direct combustion (eGRID)"


def test_us_is_the_country_row_not_egrid_national() -> None:
    entry = load_table().lookup("US")
    assert (entry.intensity_g_per_kwh, entry.region_name, entry.basis) == (
        383.55,
        "United States",
        "lifecycle",
    )
    with pytest.raises(KeyError):
        load_table().lookup("US-US")


def test_namibia_code_na_is_a_country_not_a_missing_value() -> None:
    entry = load_table().lookup("na")
    assert (entry.region, entry.region_name, entry.intensity_g_per_kwh, entry.year) == (
        "NA",
        "Namibia",
        47.62,
        2023,
    )
    assert entry.source == "Ember 2023 yearly average (CC BY 4.0)"


def test_kosovo_user_assigned_code() -> None:
    assert load_table().lookup("XK").intensity_g_per_kwh == 958.72


def test_world_average_from_defaults() -> None:
    world = load_table().world()
    assert (world.intensity_g_per_kwh, world.region, world.region_name, world.year) == (
        472.94,
        "WORLD",
        "World",
        2024,
    )
    assert world.source == "Ember 2024 world average (CC BY 4.0)"
    assert load_table().lookup("world") == world


@pytest.mark.parametrize("text", ["dk", "Dk", " DK ", "dK"])
def test_lookup_is_case_insensitive_and_canonical(text: str) -> None:
    assert load_table().lookup(text).region == "DK"


def test_state_lookup_case_insensitive() -> None:
    assert load_table().lookup("us-ca").region == "US-CA"
    assert "us-tx" in load_table()
    assert "US-XX" not in load_table()


@pytest.mark.parametrize("text", ["XX", "DNK", "US-XX", "", "Denmark", "CA-QC"])
def test_unknown_codes_raise_key_error(text: str) -> None:
    with pytest.raises(KeyError):
        load_table().lookup(text)


def test_codes_cover_countries_states_and_world() -> None:
    codes = load_table().codes()
    assert len(codes) == 214 + 51 + 1
    assert codes == sorted(codes)
    assert {"DK", "NA", "US", "US-CA", "US-DC", "WORLD"} <= set(codes)
    assert "US-US" not in codes


def test_every_entry_is_a_plain_positive_number() -> None:
    for entry in load_table().entries():
        assert math.isfinite(entry.intensity_g_per_kwh)
        # The one zero in the source: OWID gives the Central African Republic 0.00 for 2022.
        assert entry.intensity_g_per_kwh > 0 or entry.region == "CF"
        assert 2009 <= entry.year <= 2024
        assert entry.region_name
        assert load_table().lookup(entry.region) is entry


def test_iso3_map() -> None:
    iso3 = load_table().iso3_to_code()
    assert iso3["DNK"] == "DK"
    assert iso3["NAM"] == "NA"


def test_defaults_parsed_and_cached() -> None:
    assert defaults()["pue_default"]["value"] == 1.54
    assert defaults()["car_gco2_per_km"]["value"] == 106.8
    assert defaults() is defaults()
    assert load_table() is load_table()


@pytest.mark.parametrize(
    "name",
    [
        "country_intensity.csv",
        "us_state_egrid2023.csv",
        "cloud_regions.csv",
        "cloud_region_zone_map.csv",
        "defaults.json",
        "zone.tab",
        "PROVENANCE.md",
        "ATTRIBUTION.md",
    ],
)
def test_data_files_are_shipped(name: str) -> None:
    assert read_data(name)


def test_attribution_names_the_cc_by_sources() -> None:
    text = read_data("ATTRIBUTION.md").decode("utf-8")
    assert "Our World in Data based on Ember (2025) and Energy Institute" in text
    assert "Ember Yearly Electricity Data — CC BY 4.0" in text
    assert "https://creativecommons.org/licenses/by/4.0/" in text


def test_the_world_average_reads_no_csv_and_a_country_reads_them_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server in UTC runs with the world average: the table's two CSVs are not even read
    (start-up); the first country looked up reads both, once."""
    from carbonwrap.intensity import table as table_module

    read: list[str] = []

    def recording(name: str) -> bytes:
        read.append(name)
        return read_data(name)

    monkeypatch.setattr(table_module, "read_data", recording)
    fresh = table_module.IntensityTable()
    assert WORLD in fresh and fresh.lookup("world").region == WORLD
    assert not [name for name in read if name.endswith(".csv")]
    assert fresh.lookup("DK").region_name == "Denmark" and "US-CA" in fresh
    assert fresh.lookup("US-TX").region_name == "Texas"
    assert sorted(name for name in read if name.endswith(".csv")) == [
        "country_intensity.csv",
        "us_state_egrid2023.csv",
    ]
