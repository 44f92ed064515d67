"""Which intensity source serves a run: a live provider for the location, or the static table.

Runs on the start-up path, so it imports no provider module (they import aiohttp): it returns a
factory that the poller calls on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from carbonwrap.errors import CarbonwrapError

if TYPE_CHECKING:
    from carbonwrap.intensity.location import Location
    from carbonwrap.intensity.providers import Provider

SOURCES = ("auto", "static", "electricitymaps", "ukgrid", "energidataservice", "watttime")
EM_TOKEN = "CARBONWRAP_ELECTRICITYMAPS_TOKEN"
WT_USER = "CARBONWRAP_WATTTIME_USERNAME"
WT_PASSWORD = "CARBONWRAP_WATTTIME_PASSWORD"


class Choice(NamedTuple):
    name: str | None  # provider name; None = the static value only
    make: Callable[[], Provider] | None  # builds it (on the poller's thread)
    note: str | None  # why auto chose what it chose, for the log


def _url(environ: Mapping[str, str], name: str, default: str) -> str:
    """$CARBONWRAP_<NAME>_URL for proxies and mirrors."""
    return environ.get(f"CARBONWRAP_{name.upper()}_URL", "").rstrip("/") or default


def _electricitymaps(location: Location, environ: Mapping[str, str]) -> Callable[[], Provider]:
    token = environ[EM_TOKEN]
    url = _url(environ, "electricitymaps", "https://api.electricitymaps.com/v3")

    def make() -> Provider:
        from carbonwrap.intensity.providers.electricitymaps import ElectricityMaps

        if location.em_zone:
            return ElectricityMaps(token, zone=location.em_zone, base=url)
        return ElectricityMaps(token, lat=location.lat, lon=location.lon, base=url)

    return make


def _ukgrid(location: Location, environ: Mapping[str, str]) -> Callable[[], Provider]:
    url = _url(environ, "ukgrid", "https://api.carbonintensity.org.uk")

    def make() -> Provider:
        from carbonwrap.intensity.providers.ukgrid import UkGrid

        return UkGrid(postcode=location.gb_postcode, base=url)

    return make


def _energidataservice(location: Location, environ: Mapping[str, str]) -> Callable[[], Provider]:
    url = _url(environ, "energidataservice", "https://api.energidataservice.dk")
    area = location.dk_area or "DK1"

    def make() -> Provider:
        from carbonwrap.intensity.providers.energidataservice import EnergiDataService

        return EnergiDataService(area, base=url)

    return make


def _watttime(location: Location, environ: Mapping[str, str]) -> Callable[[], Provider]:
    user, password = environ[WT_USER], environ[WT_PASSWORD]
    url = _url(environ, "watttime", "https://api.watttime.org")

    def make() -> Provider:
        from carbonwrap.intensity.providers.watttime import WattTime

        return WattTime(user, password, lat=location.lat, lon=location.lon, base=url)

    return make


def _serves(name: str, location: Location, environ: Mapping[str, str]) -> str | None:
    """None if `name` can serve `location` with what is configured, else why not."""
    if name == "electricitymaps":
        if not environ.get(EM_TOKEN):
            return f"needs a token in ${EM_TOKEN} (free at electricitymaps.com)"
        if not location.em_zone and location.lat is None:
            return f"has no zone for {location.region}; give --region ZONE or --location LAT,LON"
        return None
    if name == "ukgrid":
        if location.em_zone == "GB":  # GB, gb-postcode, London cloud regions; not GB-NIR
            return None
        return "serves Great Britain only (--region GB or gb-postcode:RG10)"
    if name == "energidataservice":
        return None if location.dk_area else "serves Denmark only (--region DK, DK-DK1, DK-DK2)"
    if name == "watttime":
        if not (environ.get(WT_USER) and environ.get(WT_PASSWORD)):
            return f"needs ${WT_USER} and ${WT_PASSWORD}"
        if location.lat is None:
            return "needs --location LAT,LON to find its grid region"
        return None
    return f"is not a provider ({', '.join(SOURCES)})"


_FACTORIES: dict[str, Callable[[Any, Mapping[str, str]], Callable[[], Provider]]] = {
    "electricitymaps": _electricitymaps,
    "ukgrid": _ukgrid,
    "energidataservice": _energidataservice,
    "watttime": _watttime,
}
# auto's order: a configured Electricity Maps token covers every zone on the same lifecycle basis
# as the offline table; else the free official TSO APIs. WattTime's free signal is marginal
# (MOER), so auto never picks it: it has to be asked for.
_AUTO = ("electricitymaps", "energidataservice", "ukgrid")


def choose(source: str, location: Location, environ: Mapping[str, str]) -> Choice:
    """The provider for `source`; an explicit one that cannot serve is an error (exit 125)."""
    if source == "static" or (location.kind == "world" and source == "auto"):
        return Choice(None, None, None)
    if source == "auto":
        for name in _AUTO:
            if _serves(name, location, environ) is None:
                return Choice(name, _FACTORIES[name](location, environ), None)
        why = _serves("electricitymaps", location, environ)
        return Choice(None, None, f"no live intensity provider for {location.region}: "
                      f"Electricity Maps {why}; using the static table")  # fmt: skip
    if source not in _FACTORIES:
        raise CarbonwrapError(f"unknown --intensity-source {source!r}: use {', '.join(SOURCES)}")
    reason = _serves(source, location, environ)
    if reason is not None:
        raise CarbonwrapError(f"--intensity-source {source} {reason}")
    return Choice(source, _FACTORIES[source](location, environ), None)
