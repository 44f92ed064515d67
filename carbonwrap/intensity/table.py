"""The offline yearly intensity table shipped in carbonwrap/data (countries, US states, world)."""

from __future__ import annotations

from carbonwrap.lite import NamedTuple, cache
from carbonwrap.packagedata import csv_rows, read_data

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

WORLD = "WORLD"
_COUNTRY_FILE = "country_intensity.csv"
_STATE_FILE = "us_state_egrid2023.csv"
_DEFAULTS_FILE = "defaults.json"


class StaticIntensity(NamedTuple):
    """A yearly average grid intensity for one region. Units: gCO2e/kWh."""

    intensity_g_per_kwh: float
    region: str  # canonical code: "DK", "US-CA", "WORLD"
    region_name: str  # "Denmark", "California", "World"
    year: int
    source: str  # short label naming the dataset and its licence
    basis: str  # what the figure counts: "lifecycle", "direct combustion (eGRID)"


# Column order of the shipped CSVs; load_table checks it, so a rebuilt file cannot shift values.
_COUNTRY_HEADER = ["iso3", "iso2", "country", "year", "gco2e_per_kwh", "source"]
_STATE_HEADER = ["state_code", "state", "year", "lb_co2e_per_mwh", "gco2e_per_kwh", "source"]


def _rows(name: str, header: list[str]) -> Iterator[list[str]]:
    # csv keeps every field a string: Namibia's code "NA" stays "NA" (pandas would make it NaN).
    reader = iter(csv_rows(read_data(name).decode("utf-8")))
    found = next(reader)
    if found != header:
        raise RuntimeError(f"carbonwrap/data/{name}: columns {found}, expected {header}")
    return reader


def _country(row: list[str]) -> StaticIntensity:
    _iso3, code, name, year, value, source = row
    if source.startswith("OWID"):
        label = f"OWID/Ember {year} yearly average (CC BY 4.0)"
    elif source.startswith("Ember"):
        label = f"Ember {year} yearly average (CC BY 4.0)"
    else:
        label = source
    return StaticIntensity(float(value), code, name, int(year), label, "lifecycle")


def _state(row: list[str]) -> StaticIntensity:
    code, name, year, _lb_per_mwh, value, _source = row
    label = f"EPA eGRID{year} state average (public domain)"
    return StaticIntensity(
        float(value), f"US-{code}", name, int(year), label, "direct combustion (eGRID)"
    )


@cache
def defaults() -> dict[str, Any]:
    """carbonwrap/data/defaults.json parsed: world average, PUE, car gCO2/km (see PROVENANCE.md)."""
    from carbonwrap.jsontext import loads

    parsed: dict[str, Any] = loads(read_data(_DEFAULTS_FILE))  # type: ignore[assignment]
    return parsed


class IntensityTable:
    """Lookup by canonical region code: ISO 3166 alpha-2 for countries, "US-XX" for US states.

    Rows stay raw CSV fields until looked up: a run needs one entry, not 266 (start-up budget).
    The files are read at the first question that needs them: the world average (a server's
    UTC time zone names no country) needs neither.
    """

    def __init__(self) -> None:
        self._rows: tuple[dict[str, list[str]], dict[str, list[str]]] | None = None
        self._built: dict[str, StaticIntensity] = {}

    @property
    def _countries(self) -> dict[str, list[str]]:
        """ "DK" -> its country_intensity.csv row."""
        return (self._rows or self._read())[0]

    @property
    def _states(self) -> dict[str, list[str]]:
        """ "US-CA" -> its us_state_egrid2023.csv row."""
        return (self._rows or self._read())[1]

    def _read(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        countries = {row[1]: row for row in _rows(_COUNTRY_FILE, _COUNTRY_HEADER)}
        # eGRID's national "US" row is left out: "US" is the country row (OWID, lifecycle).
        states = {
            f"US-{row[0]}": row for row in _rows(_STATE_FILE, _STATE_HEADER) if row[0] != "US"
        }
        self._rows = (countries, states)
        return self._rows

    def lookup(self, region: str) -> StaticIntensity:
        """The entry for `region` (any case); KeyError if the table has no such code."""
        key = region.strip().upper()
        if key == WORLD:
            return self.world()
        entry = self._built.get(key)
        if entry is None:
            if key in self._countries:
                entry = _country(self._countries[key])
            elif key in self._states:
                entry = _state(self._states[key])
            else:
                raise KeyError(region)
            self._built[key] = entry
        return entry

    def __contains__(self, region: object) -> bool:
        if not isinstance(region, str):
            return False
        key = region.strip().upper()
        return key == WORLD or key in self._countries or key in self._states

    def world(self) -> StaticIntensity:
        """The world average from defaults.json."""
        return _world()

    def codes(self) -> list[str]:
        """Every accepted canonical code, sorted, "WORLD" included (for hints and completion)."""
        return sorted([*self._countries, *self._states, WORLD])

    def entries(self) -> list[StaticIntensity]:
        """Every country, then every US state (not the world average), in file order."""
        return [self.lookup(code) for code in [*self._countries, *self._states]]

    def iso3_to_code(self) -> dict[str, str]:
        """ISO 3166 alpha-3 → alpha-2 for the countries in the table ("DNK" → "DK"), for hints."""
        return {row[0]: code for code, row in self._countries.items()}


@cache
def _world() -> StaticIntensity:
    world = defaults()["world_average_gco2e_per_kwh"]
    year = int(world["year"])
    source = str(world["source"])
    label = f"Ember {year} world average (CC BY 4.0)" if source.startswith("Ember") else source
    return StaticIntensity(float(world["value"]), WORLD, "World", year, label, "lifecycle")


@cache
def load_table() -> IntensityTable:
    """The shipped table, one per process: its two small CSVs are read (~0.5 ms) at the first
    question that needs them."""
    return IntensityTable()
