"""Every live intensity source: which locations it serves, what it needs, what its value is.

Read on the start-up path, so it imports no provider (they import aiohttp): each provider's areas
live in a light sibling module (`providers/<name>_areas.py`), imported only when a location is
looked up, and each source builds its provider through a factory called on the poller's thread.
"""

from __future__ import annotations

from carbonwrap.lite import NamedTuple

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from carbonwrap.intensity.location import Location
    from carbonwrap.intensity.providers import Provider

EM_TOKEN = "CARBONWRAP_ELECTRICITYMAPS_TOKEN"
WT_USER = "CARBONWRAP_WATTTIME_USERNAME"
WT_PASSWORD = "CARBONWRAP_WATTTIME_PASSWORD"


class Source(NamedTuple):
    """One live source. `areas` names its light module (None: it serves by a rule below)."""

    name: str  # as --intensity-source takes it
    label: str  # who publishes it
    areas: str | None  # module with AREAS, KEY_ENV, RESOLUTION_S, HISTORY_DAYS, BASIS
    keys: tuple[str, ...]  # environment variables it needs (empty: no signup)
    live: bool  # gives a current value (False: only history, e.g. a day late)
    marginal: bool  # its signal is a marginal rate: never chosen by auto, never mixed
    build: Callable[[str, Mapping[str, str], str | None], Provider]  # (area, environ, base)
    by_zone: bool = False  # built with the location key ("DE") rather than its own area id


def _provider(module: str, cls: str) -> Any:
    import importlib  # only when a provider is made (it imports warnings: start-up)

    return getattr(importlib.import_module(f"carbonwrap.intensity.providers.{module}"), cls)


def _base(base: str | None) -> dict[str, str]:
    return {} if base is None else {"base": base}


def _electricitymaps(area: str, environ: Mapping[str, str], base: str | None) -> Provider:
    cls = _provider("electricitymaps", "ElectricityMaps")
    if area.startswith("latlon:"):
        lat, lon = (float(x) for x in area.removeprefix("latlon:").split(","))
        return cls(environ[EM_TOKEN], lat=lat, lon=lon, **_base(base))  # type: ignore[no-any-return]
    return cls(environ[EM_TOKEN], zone=area, **_base(base))  # type: ignore[no-any-return]


def _watttime(area: str, environ: Mapping[str, str], base: str | None) -> Provider:
    lat, lon = (float(x) for x in area.removeprefix("latlon:").split(","))
    cls = _provider("watttime", "WattTime")
    return cls(environ[WT_USER], environ[WT_PASSWORD], lat=lat, lon=lon, **_base(base))  # type: ignore[no-any-return]


def _simple(
    module: str, cls: str, *, key: str | None = None, key_first: bool = True
) -> Callable[..., Provider]:
    """A factory for providers built as Cls([key,] area, base=...), or Cls(area, key, base=...)
    where `key_first` is False (ENTSO-E's and Energy-Charts' constructors take the zone first)."""

    def build(area: str, environ: Mapping[str, str], base: str | None) -> Provider:
        provider = _provider(module, cls)
        if key is None:
            args: tuple[str, ...] = (area,)
        else:
            args = (environ[key], area) if key_first else (area, environ[key])
        return provider(*args, **_base(base))  # type: ignore[no-any-return]

    return build


def _ukgrid(area: str, environ: Mapping[str, str], base: str | None) -> Provider:
    cls = _provider("ukgrid", "UkGrid")
    return cls(postcode=area or None, **_base(base))  # type: ignore[no-any-return]


# auto's order among the sources that serve a location: a configured keyed source first (the
# user signed up for it), Electricity Maps before the regional ones (lifecycle and
# consumption-based, the table's basis); then the official no-signup ones, the TSOs' own
# intensity before a generation mix priced with factors. WattTime (marginal) is never auto's.
SOURCES: tuple[Source, ...] = (
    Source("electricitymaps", "Electricity Maps", None, (EM_TOKEN,), True, False, _electricitymaps),
    Source("entsoe", "ENTSO-E Transparency Platform", "entsoe_areas",
           ("CARBONWRAP_ENTSOE_TOKEN",), True, False,
           _simple("entsoe", "Entsoe", key="CARBONWRAP_ENTSOE_TOKEN", key_first=False),
           by_zone=True),
    Source("fingrid", "Fingrid", "fingrid_areas", ("CARBONWRAP_FINGRID_KEY",), True, False,
           _simple("fingrid", "Fingrid", key="CARBONWRAP_FINGRID_KEY")),
    Source("openelectricity", "Open Electricity (Australia NEM)", "openelectricity_areas",
           ("CARBONWRAP_OPENELECTRICITY_KEY",), True, False,
           _simple("openelectricity", "OpenElectricity", key="CARBONWRAP_OPENELECTRICITY_KEY")),
    Source("eia", "US EIA Open Data (hourly, about a day late)", "eia_areas",
           ("CARBONWRAP_EIA_KEY",), False, False, _simple("eia", "Eia", key="CARBONWRAP_EIA_KEY")),
    Source("ukgrid", "NESO Carbon Intensity API", None, (), True, False, _ukgrid),
    Source("energidataservice", "Energinet Energi Data Service", None, (), True, False,
           _simple("energidataservice", "EnergiDataService")),
    Source("odre", "RTE éCO2mix (ODRÉ)", "odre_areas", (), True, False, _simple("odre", "Odre")),
    Source("caiso", "CAISO", "caiso_areas", (), True, False, _simple("caiso", "Caiso")),
    Source("eirgrid", "EirGrid/SONI Smart Grid Dashboard", "eirgrid_areas", (), True, False,
           _simple("eirgrid", "EirGrid")),
    Source("nyiso", "NYISO", "nyiso_areas", (), True, False, _simple("nyiso", "Nyiso")),
    Source("miso", "MISO", "miso_areas", (), True, False, _simple("miso", "Miso")),
    Source("ercot", "ERCOT (answers US addresses only)", "ercot_areas", (), True, False,
           _simple("ercot", "Ercot")),
    Source("energycharts", "Energy-Charts (Fraunhofer ISE)", "energycharts_areas", (), True,
           False, _simple("energycharts", "EnergyCharts"), by_zone=True),
    Source("watttime", "WattTime (marginal)", None, (WT_USER, WT_PASSWORD), True, True, _watttime),
)  # fmt: skip
BY_NAME = {source.name: source for source in SOURCES}
NAMES = tuple(BY_NAME)


def areas_of(source: Source) -> Any:
    """The light module of a source with an area table (AREAS, KEY_ENV, RESOLUTION_S, …)."""
    assert source.areas is not None
    import importlib

    return importlib.import_module(f"carbonwrap.intensity.providers.{source.areas}")


def area_for(source: Source, location: Location) -> tuple[str | None, str | None]:
    """(the area `source` would be asked for at `location`, None) or (None, why not)."""
    name = source.name
    if name == "electricitymaps":
        if location.em_zone:
            return location.em_zone, None
        if location.lat is not None:
            return f"latlon:{location.lat},{location.lon}", None
        return None, f"has no zone for {location.region}; give --region ZONE or --location LAT,LON"
    if name == "watttime":
        if location.lat is None:
            return None, "needs --location LAT,LON to find its grid region"
        return f"latlon:{location.lat},{location.lon}", None
    if name == "ukgrid":
        if location.em_zone == "GB":  # GB, gb-postcode, London cloud regions; not GB-NIR
            return location.gb_postcode or "", None
        return None, "serves Great Britain only (--region GB or gb-postcode:RG10)"
    if name == "energidataservice":
        if location.dk_area:
            return location.dk_area, None
        return None, "serves Denmark only (--region DK, DK-DK1, DK-DK2)"
    table: Mapping[str, str] = areas_of(source).AREAS
    for key in (location.em_zone, location.region):
        if key and key in table:
            return (key if source.by_zone else table[key]), None
    return None, f"does not serve {location.region}"


def missing_keys(source: Source, environ: Mapping[str, str]) -> list[str]:
    return [key for key in source.keys if not environ.get(key)]


def coverage() -> list[dict[str, Any]]:
    """Every location key with a live source: one row per (key, source), for `intensity --list`."""
    rows: list[dict[str, Any]] = []
    for source in SOURCES:
        if source.areas is None:
            continue
        module = areas_of(source)
        for key in sorted(module.AREAS):
            rows.append(
                {
                    "region": key,
                    "provider": source.name,
                    "publisher": source.label,
                    "resolution_s": float(module.RESOLUTION_S),
                    "history_days": float(module.HISTORY_DAYS),
                    "key": list(source.keys),
                    "live": source.live,
                    "basis": str(module.BASIS),
                }
            )
    rows += _rule_rows()
    return sorted(rows, key=lambda row: (row["region"], row["provider"]))


def _rule_rows() -> list[dict[str, Any]]:
    """The sources that serve by a rule rather than a table, as rows of the same shape."""
    common = {"key": [], "live": True}
    return [
        {"region": "* (any Electricity Maps zone)", "provider": "electricitymaps",
         "publisher": BY_NAME["electricitymaps"].label, "resolution_s": 3600.0,
         "history_days": 1.0, "key": [EM_TOKEN], "live": True,
         "basis": "lifecycle, consumption-based (imports included)"},
        {"region": "GB", "provider": "ukgrid", "publisher": BY_NAME["ukgrid"].label,
         "resolution_s": 1800.0, "history_days": 365.0,
         "basis": "NESO's national (or regional, by postcode) intensity, consumption-based",
         **common},
        *({"region": area, "provider": "energidataservice",
           "publisher": BY_NAME["energidataservice"].label, "resolution_s": 300.0,
           "history_days": 365.0, "basis": "Energinet's CO2Emis, consumption-based", **common}
          for area in ("DK", "DK-DK1", "DK-DK2")),
    ]  # fmt: skip
