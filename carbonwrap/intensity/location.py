"""Where a run draws power: a country, US state, grid zone, GB postcode, point or cloud region."""

from __future__ import annotations

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.region import (
    ENV_VAR as REGION_ENV,
)
from carbonwrap.intensity.region import (
    closest,
    match_region,
    region_from_timezone,
    suggest,
    zone_static,
)
from carbonwrap.intensity.table import WORLD, IntensityTable, StaticIntensity, load_table
from carbonwrap.lite import NamedTuple, cache
from carbonwrap.packagedata import read_data

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Mapping

LOCATION_ENV = "CARBONWRAP_LOCATION"
CLOUD_ENV = "CARBONWRAP_CLOUD"
GB_POSTCODE = "gb-postcode:"
_ZONES_FILE = "electricitymaps_zones.json"
_OPTIONS = (("--region", REGION_ENV), ("--location", LOCATION_ENV), ("--cloud", CLOUD_ENV))
_HINT = (
    "use a country (DK), a US state (US-CA), an Electricity Maps zone (DK-DK1) or gb-postcode:RG10"
)
_POINT_HINT = "give LAT,LON in decimal degrees, such as 55.6761,12.5683"
# Outward code ("RG10", "W1A", "M1"), then optionally the inward code ("9XX"), space or not.
_POSTCODE = r"([A-Z]{1,2}[0-9][A-Z0-9]?) ?(?:[0-9][A-Z]{2})?"
# Postcode areas off the GB grid: the GB Carbon Intensity API covers Great Britain only.
_OFF_GB_GRID = {
    "BT": "in Northern Ireland, on the all-island grid: use --region GB-NIR",
    "IM": "on the Isle of Man, off the GB grid: use --region IM",
    "JE": "in Jersey, off the GB grid, with no data here: give --intensity",
    "GY": "in Guernsey, off the GB grid, with no data here: give --intensity",
}
# Energinet's price areas; CO2Emis gives DK1 and DK2 the same all-Denmark value (API_NOTES §3).
_DK_AREAS = {"DK": "DK1", "DK-DK1": "DK1", "DK-DK2": "DK2", "DK-BHM": "DK2"}


class Location(NamedTuple):
    """A resolved location: what each intensity source needs, and how it was chosen."""

    region: str  # canonical, as a user would write it: "DK", "DK-DK1", "aws:eu-west-1", "WORLD"
    kind: str  # "country" | "us-state" | "zone" | "gb-postcode" | "latlon" | "cloud" | "world"
    static: StaticIntensity  # the offline fallback value for this location
    em_zone: str | None  # Electricity Maps zone; None where none fits (US states, most points)
    gb_postcode: str | None  # outward code for the GB regional API; None = national
    dk_area: str | None  # Energinet price area "DK1" | "DK2"; None outside Denmark
    lat: float | None  # degrees north, for --location only
    lon: float | None  # degrees east, for --location only
    source: str  # "flag" | "env" | "timezone" | "default"
    detail: str  # one line: where it came from and any approximation made


def resolve_location(
    region: str | None,
    location: str | None,
    cloud: str | None,
    environ: Mapping[str, str],
    tz_name: str | None = None,
    table: IntensityTable | None = None,
    configured: tuple[str, str, str] | None = None,
) -> Location:
    """Pick the location: a flag, else its environment variable, else a settings file
    (`configured`: option, value, FILE:LINE, from config.Config.where), else the time zone,
    else WORLD.

    The flags --region, --location and --cloud (and $CARBONWRAP_REGION, $CARBONWRAP_LOCATION,
    $CARBONWRAP_CLOUD) exclude one another: two at the same level raise CarbonwrapError, while
    any flag beats every variable; a blank variable counts as unset. `tz_name` None means: read
    the system's. An unknown value raises CarbonwrapError (one line, with near matches).
    """
    table = load_table() if table is None else table
    flags = zip(_OPTIONS, (region, location, cloud), strict=True)
    given = [(option, value) for (option, _), value in flags if value is not None]
    if len(given) > 1:
        names = " and ".join(option for option, _ in given)
        raise CarbonwrapError(f"{names} given together: give only one of them")
    if given:
        option, value = given[0]
        return _parse(option, value, table, "flag", f"{option} {value}", "")
    set_vars = [(opt, var, environ.get(var, "").strip()) for opt, var in _OPTIONS]
    set_vars = [(opt, var, value) for opt, var, value in set_vars if value]
    if len(set_vars) > 1:
        names = " and ".join(var for _, var, _ in set_vars)
        raise CarbonwrapError(f"{names} are set together: unset all but one")
    if set_vars:
        option, var, value = set_vars[0]
        return _parse(option, value, table, "env", f"{var}={value}", f" in {var}")
    if configured is not None:
        option, value, origin = configured
        key = option.removeprefix("--")
        return _parse(
            option, value, table, "config", f"{key} = {value} in {origin}", f" in {origin}"
        )
    guess = region_from_timezone(environ, tz_name, table)
    return _table_location(guess.code, table, guess.source, guess.detail)


def _parse(
    option: str, text: str, table: IntensityTable, source: str, origin: str, where: str
) -> Location:
    if option == "--location":
        return _point(text, table, source, origin, where)
    if option == "--cloud":
        return _cloud(text, table, source, origin, where)
    return _region(text, table, source, origin, where)


def _region(text: str, table: IntensityTable, source: str, origin: str, where: str) -> Location:
    """--region: a table code or name, an Electricity Maps zone, or gb-postcode:OUTWARD.

    Also takes the canonical forms of the other two options ("55.6761,12.5683",
    "aws:eu-west-1"), so that any Location.region resolves again to the same place.
    """
    value = text.strip()
    if not value:
        raise CarbonwrapError(f"empty region{where}: {_HINT}")
    if value.casefold().startswith(GB_POSTCODE):
        return _postcode(text, value[len(GB_POSTCODE) :], table, source, origin, where)
    code = match_region(value, table, where)
    if code is not None:
        return _table_location(code, table, source, origin)
    zone = value.upper()
    if zone in em_zones():
        return _zone(zone, table, source, origin)
    provider = value.partition(":")[0].strip().casefold()
    if provider in ("aws", "gcp", "azure"):  # cloud.PROVIDERS, without importing it yet
        return _cloud(text, table, source, origin, where)
    if "," in value and _floats(value) is not None:
        return _point(text, table, source, origin, where)
    hints = _region_hints(value, table)
    tail = f"; did you mean {' or '.join(hints)}?" if hints else ""
    raise CarbonwrapError(f"unknown region {text!r}{where}: {_HINT}{tail}")


def _table_location(code: str, table: IntensityTable, source: str, origin: str) -> Location:
    """A country, US state or WORLD of the offline table."""
    static = table.lookup(code)
    if code == WORLD:
        return Location(WORLD, "world", static, None, None, None, None, None, source, origin)
    zones = em_zones()
    em_zone = code if code in zones else None
    notes: list[str] = []
    if code.startswith("US-"):
        kind = "us-state"
        if em_zone is None:
            notes.append("no Electricity Maps zone: its zones are balancing areas (US-CAL-CISO)")
    else:
        kind = "country"
        subzones = sorted(zone for zone in zones if zone.startswith(f"{code}-"))
        if em_zone is None and subzones:
            notes.append(
                f"Electricity Maps has no zone for all of {static.region_name}: give one of its "
                f"{len(subzones)} zones ({subzones[0]} ... {subzones[-1]}) for live data"
            )
        elif em_zone is None:
            notes.append(f"Electricity Maps has no zone for {static.region_name}")
    dk_area = _DK_AREAS.get(code)
    if dk_area is not None:
        notes.append(f"Energinet price area {dk_area} (DK1 and DK2 values are identical)")
    if code == "GB":
        notes.append("national GB values (gb-postcode:OUTWARD for regional)")
    detail = "; ".join([origin, *notes])
    return Location(code, kind, static, em_zone, None, dk_area, None, None, source, detail)


def _zone(zone: str, table: IntensityTable, source: str, origin: str) -> Location:
    """An Electricity Maps zone the table does not have; offline value: its US state's or
    country's (`region.zone_static`)."""
    static, fallback = zone_static(zone, table)
    notes = [f"Electricity Maps zone {em_zones()[zone]}", f"offline fallback {fallback}"]
    dk_area = _DK_AREAS.get(zone)
    if zone == "DK-BHM":
        notes.append("Bornholm is in Energinet price area DK2")
    elif dk_area is not None:
        notes.append(f"Energinet price area {dk_area}")
    detail = "; ".join([origin, *notes])
    return Location(zone, "zone", static, zone, None, dk_area, None, None, source, detail)


def _postcode(
    text: str, postcode: str, table: IntensityTable, source: str, origin: str, where: str
) -> Location:
    """gb-postcode:RG10 (or a full postcode, of which the outward code is kept)."""
    normal = " ".join(postcode.upper().split())
    if not normal:
        raise CarbonwrapError(
            f"empty GB postcode{where}: give an outward code, as gb-postcode:RG10"
        )
    import re  # only for a postcode (start-up)

    match = re.fullmatch(_POSTCODE, normal)
    if match is None:
        message = (
            f"bad GB postcode {text!r}{where}: give an outward code (RG10, W1A, M1) "
            f"or a full postcode (RG10 9XX), as gb-postcode:RG10"
        )
        raise CarbonwrapError(message)
    outward = match.group(1)
    area = outward[:2] if outward[1].isalpha() else outward[:1]  # "RG10" -> "RG", "M1" -> "M"
    if area in _OFF_GB_GRID:
        raise CarbonwrapError(f"GB postcode {outward}{where} is {_OFF_GB_GRID[area]}")
    static = table.lookup("GB")
    em_zone = "GB" if "GB" in em_zones() else None
    notes = [
        f"outward code {outward} for the GB regional API",
        f"offline fallback {static.region_name} (GB) country average",
    ]
    detail = "; ".join([origin, *notes])
    region = f"{GB_POSTCODE}{outward}"
    return Location(
        region, "gb-postcode", static, em_zone, outward, None, None, None, source, detail
    )


def _point(text: str, table: IntensityTable, source: str, origin: str, where: str) -> Location:
    """--location LAT,LON; offline value: the US state or country the point lies in."""
    value = text.strip()
    if not value:
        raise CarbonwrapError(f"empty location{where}: {_POINT_HINT}")
    pair = _floats(value)
    if pair is None:
        raise CarbonwrapError(f"bad location {text!r}{where}: {_POINT_HINT}")
    lat, lon = pair
    if not -90 <= lat <= 90:
        message = f"latitude {lat:g} in location {text!r}{where} is outside -90..90: {_POINT_HINT}"
        raise CarbonwrapError(message)
    if not -180 <= lon <= 180:
        message = (
            f"longitude {lon:g} in location {text!r}{where} is outside -180..180: {_POINT_HINT}"
        )
        raise CarbonwrapError(message)
    static, note = _point_static(lat, lon, table)
    region = f"{_degrees(lat)},{_degrees(lon)}"
    detail = f"{origin}; {note}"
    return Location(region, "latlon", static, None, None, None, lat, lon, source, detail)


# Off the outline by less than this: the outline's own accuracy (1:50m, simplified), not the sea.
_ON_THE_COAST_KM = 5.0


def _point_static(lat: float, lon: float, table: IntensityTable) -> tuple[StaticIntensity, str]:
    """The table row for the place a point lies in (boundaries.py), and a phrase saying so."""
    from carbonwrap.intensity.boundaries import COAST_KM, locate  # reads 250 kB: only when asked

    place = locate(lat, lon)
    if place is None:
        return table.world(), (
            f"offline fallback world average (at sea: no coast within {COAST_KM:.0f} km)"
        )
    if place.code not in table:
        return table.world(), f"offline fallback world average ({place.code} has no offline data)"
    static = table.lookup(place.code)
    kind = "state" if place.code.startswith("US-") else "country"
    where = "where the point lies"
    if place.coast_km >= _ON_THE_COAST_KM:
        where = f"the nearest coast, {place.coast_km:.0f} km off"
    name = f"{static.region_name} ({static.region})"
    return static, f"offline fallback {name} {kind} average, {where}"


def _floats(value: str) -> tuple[float, float] | None:
    """(lat, lon) from "55.6761, 12.5683"; None unless two numbers, comma-separated."""
    parts = value.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return lat, lon  # nan and inf fail the range checks


def _degrees(value: float) -> str:
    """Up to 6 decimals (~0.1 m), trailing zeros dropped: 55.676100 → "55.6761", 12.0 → "12"."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _cloud(text: str, table: IntensityTable, source: str, origin: str, where: str) -> Location:
    from carbonwrap.intensity.cloud import lookup_cloud  # reads two CSVs: only when asked

    found = lookup_cloud(text, table, where)
    detail = f"{origin}; {found.note}"
    return Location(
        found.code, "cloud", found.static, found.em_zone, None, None, None, None, source, detail
    )


def _region_hints(value: str, table: IntensityTable, limit: int = 5) -> list[str]:
    """Near matches for an unknown --region; error path only (reads the cloud CSVs, difflib).

    In order: up to 3 zones the text starts ("US-CAL" → US-CAL-BANC …), table codes and names,
    a cloud region of that name ("eu-west-1" → --cloud aws:eu-west-1), then close zones.
    """
    from carbonwrap.intensity.cloud import region_labels

    folded = value.casefold()
    zones = em_zones()
    starting = [zone for zone in zones if zone.casefold().startswith(f"{folded}-")][:3]
    hints = [f"{zone} ({zones[zone]})" for zone in starting]
    hints += suggest(value, table)
    hints += [f"--cloud {code}" for code in region_labels() if code.split(":", 1)[1] == folded]
    keys: dict[str, str] = {}  # casefolded zone code or name -> zone code
    for zone, name in zones.items():
        keys.setdefault(zone.casefold(), zone)
        keys.setdefault(name.casefold(), zone)
    seen = {hint.split(" ")[0] for hint in hints}
    for zone in closest(folded, keys, limit):
        if zone not in seen:
            hints.append(f"{zone} ({zones[zone]})")
            seen.add(zone)
    return hints[:limit]


@cache
def em_zones() -> dict[str, str]:
    """Electricity Maps zones shipped in carbonwrap/data, {"DK-DK1": "West Denmark", …}.

    The recorded answer of `GET /v3/zones` (see PROVENANCE.md). Parsed on first use (~0.8 ms).
    """
    from carbonwrap.jsontext import loads

    parsed: dict[str, dict[str, str]] = loads(read_data(_ZONES_FILE))  # type: ignore[assignment]
    return {str(zone): str(info.get("zoneName", zone)) for zone, info in parsed.items()}
