"""Where the runs' grid regions are (country, region, cloud, coordinates), from the shipped
intensity table, for exports that name places (CodeCarbon's emissions.csv)."""

from __future__ import annotations

from collections.abc import Mapping

from carbonwrap.intensity.table import IntensityTable, load_table
from carbonwrap.report.model import Place
from carbonwrap.runlog.summary import RunSummary


def places_of(runs: list[RunSummary]) -> dict[str, Place]:
    """Country and region names of the runs' grid regions, from the shipped table."""
    places = Places()
    for s in runs:
        code = s.region.get("code", "")
        if code:
            places(code, s.region.get("kind", ""))
    return places.found


class Places:
    """`place_of` with the table loaded once and each region looked up once (`found`), as the
    runs are read."""

    def __init__(self) -> None:
        self._table = load_table()
        self._iso3 = {code: iso for iso, code in self._table.iso3_to_code().items()}
        self.found: dict[str, Place] = {}

    def __call__(self, code: str, kind: str) -> Place:
        if not code:
            return Place()
        place = self.found.get(code)
        if place is None:
            place = self.found[code] = place_of(code, kind, self._table, self._iso3)
        return place


def place_of(code: str, kind: str, table: IntensityTable, iso3: Mapping[str, str]) -> Place:
    """Where a grid region is, in CodeCarbon's terms; what is not known stays empty."""
    if kind == "cloud":
        provider, _, region = code.partition(":")
        return Place(cloud_provider=provider, cloud_region=region, on_cloud="Y")
    if kind == "latlon":
        lat, _, lon = code.partition(",")
        return Place(latitude=lat, longitude=lon)
    country, region = code.upper(), ""
    if kind == "us-state":
        country, region = "US", table.lookup(code).region_name.lower()
    elif kind == "gb-postcode":
        country, region = "GB", code.rpartition(":")[2]
    elif kind == "zone":
        country, region = code.upper().partition("-")[0], code
    if country not in iso3:
        return Place(region=region)
    return Place(table.lookup(country).region_name, iso3[country], region)
