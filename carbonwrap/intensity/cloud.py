"""Cloud regions ("aws:eu-west-1"): their offline intensity and Electricity Maps zone."""

import csv
import functools
import re
from typing import NamedTuple

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.region import closest, zone_static
from carbonwrap.intensity.table import IntensityTable, StaticIntensity
from carbonwrap.packagedata import read_data

PROVIDERS = ("aws", "gcp", "azure")
_REGIONS_FILE = "cloud_regions.csv"
_ZONE_MAP_FILE = "cloud_region_zone_map.csv"
_REGIONS_HEADER = ["provider", "region", "location", "iso2", "gco2e_per_kwh", "source"]
_ZONE_MAP_HEADER = ["provider", "region", "electricitymaps_zone"]
_ALIASES = {"google": "gcp", "gce": "gcp", "amazon": "aws", "ec2": "aws", "microsoft": "azure"}
_HINT = "use PROVIDER:REGION, such as aws:eu-west-1, gcp:europe-west1 or azure:westeurope"


class CloudRegion(NamedTuple):
    """A provider's region, its offline value and its Electricity Maps zone."""

    code: str  # canonical "aws:eu-west-1"
    static: StaticIntensity  # cloud_regions.csv row, else the mapped zone's state or country
    em_zone: str | None  # from cloud_region_zone_map.csv; None where unmapped or mapped empty
    note: str  # one clause for Location.detail: the region's name and any approximation


def lookup_cloud(text: str, table: IntensityTable, where: str = "") -> CloudRegion:
    """The cloud region `text` ("aws:eu-west-1", any case) names, or CarbonwrapError.

    Known regions: every row of cloud_regions.csv, plus the rows of cloud_region_zone_map.csv
    with a zone (Azure's staging and geography names), whose offline value is then the zone's
    US state or country average (`region.zone_static`). Reads both CSVs on first use (~1 ms); a
    run without --cloud never does.
    """
    value = text.strip()
    if not value:
        raise CarbonwrapError(f"empty cloud region{where}: {_HINT}")
    provider, sep, name = value.partition(":")
    provider, name = provider.strip().lower(), name.strip().lower()
    if not sep or not provider or not name:
        # "eu-west-1": the provider left out; name the ones that have such a region.
        bare = value.lower()
        named = [code for code in region_labels() if code.split(":", 1)[1] == bare]
        tail = f"; did you mean {' or '.join(named)}?" if named else ""
        raise CarbonwrapError(f"bad cloud region {text!r}{where}: {_HINT}{tail}")
    if provider not in PROVIDERS:
        alias = _ALIASES.get(provider)
        tail = f"; did you mean {alias}:{name}?" if alias else ""
        message = f"unknown cloud provider {provider!r}{where}: use aws, gcp or azure{tail}"
        raise CarbonwrapError(message)
    key = (provider, name)
    code = f"{provider}:{name}"
    row = _regions().get(key)
    zone = _zone_map().get(key) or None
    if row is not None:
        static = _static(code, row)
        note = row[2]
    elif zone is not None:
        static, fallback = zone_static(zone, table)
        note = f"no intensity row for this region; offline fallback {fallback}, from its zone"
    else:
        hints = suggest_cloud(provider, name)
        tail = f"; did you mean {' or '.join(hints)}?" if hints else ""
        raise CarbonwrapError(f"unknown cloud region {text!r}{where}: {_HINT}{tail}")
    zone_note = f"Electricity Maps zone {zone}" if zone else "no Electricity Maps zone mapped"
    return CloudRegion(code, static, zone, f"{note}; {zone_note}")


def suggest_cloud(provider: str, name: str, limit: int = 3) -> list[str]:
    """Near matches among `provider`'s regions, as "aws:eu-west-1 (EU (Ireland))"; error path.

    Also matches the place ("aws:frankfurt" → eu-central-1), and puts first the same region
    name under another provider ("aws:westeurope" → azure:westeurope).
    """
    labels = region_labels()
    exact = [code for code in labels if code.split(":", 1)[1] == name]
    keys: dict[str, str] = {}  # casefolded region id or place -> "provider:region"
    for code, place in labels.items():
        if not code.startswith(f"{provider}:"):
            continue
        keys.setdefault(code.split(":", 1)[1], code)
        if place:
            keys.setdefault(place.casefold(), code)
            inner = place.partition("(")[2].rstrip(")")  # "EU (Ireland)" -> "Ireland"
            if inner:
                keys.setdefault(inner.casefold(), code)
    codes = [*exact, *closest(name, keys, limit)][:limit]
    return [f"{code} ({labels[code]})" if labels[code] else code for code in codes]


def region_labels() -> dict[str, str]:
    """Every known cloud region, "aws:eu-west-1" → its place ("EU (Ireland)", or "")."""
    labels = {f"{p}:{r}": row[2] for (p, r), row in _regions().items()}
    for (p, r), zone in _zone_map().items():
        if zone:
            labels.setdefault(f"{p}:{r}", "")
    return labels


def _static(code: str, row: list[str]) -> StaticIntensity:
    _provider, _region, place, _iso2, value, source = row
    # The CSV has no year column; each source names its vintage ("yearly/2024.csv", "eGRID2023",
    # "country average IRL 2024"), the first four-digit year in it.
    found = re.search(r"(?<!\d)20\d\d(?!\d)", source)
    if found is None:
        raise RuntimeError(f"carbonwrap/data/{_REGIONS_FILE}: no year in the source of {code}")
    if source.startswith("Google"):
        basis = "operational grid average (Google region-carbon-info)"
    elif "eGRID" in source:
        basis = "direct combustion (eGRID)"
    else:
        basis = "lifecycle"
    return StaticIntensity(float(value), code, place, int(found.group()), source, basis)


def _rows(name: str, header: list[str]) -> list[list[str]]:
    reader = csv.reader(read_data(name).decode("utf-8").splitlines())
    found = next(reader)
    if found != header:
        raise RuntimeError(f"carbonwrap/data/{name}: columns {found}, expected {header}")
    return list(reader)


@functools.cache
def _regions() -> dict[tuple[str, str], list[str]]:
    """cloud_regions.csv as {(provider, region): row}."""
    return {(row[0], row[1]): row for row in _rows(_REGIONS_FILE, _REGIONS_HEADER)}


@functools.cache
def _zone_map() -> dict[tuple[str, str], str]:
    """cloud_region_zone_map.csv as {(provider, region): zone}; "" where CCF maps none."""
    return {(row[0], row[1]): row[2] for row in _rows(_ZONE_MAP_FILE, _ZONE_MAP_HEADER)}
