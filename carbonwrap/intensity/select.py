"""Which intensity source serves a run: a live provider for the location, or the static table.

Runs on the start-up path, so it imports no provider module (they import aiohttp): it returns a
factory that the poller calls on its own thread. The sources, their areas and their order are
`catalog.py`'s.
"""

from __future__ import annotations

from carbonwrap.choices import INTENSITY_SOURCES as SOURCES
from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.catalog import (
    BY_NAME,
    EM_TOKEN,
    WT_PASSWORD,
    WT_USER,
    Source,
    area_for,
    areas_of,
    missing_keys,
)
from carbonwrap.lite import NamedTuple

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from carbonwrap.intensity.location import Location
    from carbonwrap.intensity.providers import Provider

__all__ = ["EM_TOKEN", "SOURCES", "WT_PASSWORD", "WT_USER", "Choice", "choose", "choose_history"]

# How far back each rule-served source's history reaches (table-served ones say it themselves).
# NESO answers at most 14 days a request (/intensity/{from}/{to}) but keeps years
# (/intensity/date/{date} for any past day): a year is what we promise, as for the others.
_HISTORY_DAYS = {
    "electricitymaps": 1.0,
    "ukgrid": 365.0,
    "energidataservice": 365.0,
    "watttime": 30.0,
}


class Choice(NamedTuple):
    name: str | None  # provider name; None = the static value only
    make: Callable[[], Provider] | None  # builds it (on the poller's thread)
    note: str | None  # why no live source serves (or the one asked for failed), for the log
    why: str = ""  # why this provider was asked: for the start record and `intensity --json`


def _url(environ: Mapping[str, str], name: str) -> str | None:
    """$CARBONWRAP_<NAME>_URL for proxies and mirrors; None: the provider's own."""
    return environ.get(f"CARBONWRAP_{name.upper()}_URL", "").rstrip("/") or None


def _factory(source: Source, area: str, environ: Mapping[str, str]) -> Callable[[], Provider]:
    base = _url(environ, source.name)
    keys = {key: environ[key] for key in source.keys}  # not the whole environment

    def make() -> Provider:
        return source.build(area, keys, base)

    return make


def _serves(
    source: Source, location: Location, environ: Mapping[str, str], *, keys_first: bool = False
) -> tuple[str | None, str | None]:
    """(the area to ask, None) if `source` can serve `location` with what is configured, else
    (None, why not). `keys_first`: a missing key is said before a location it cannot serve (a
    source asked for by name)."""
    missing = missing_keys(source, environ)
    if missing and keys_first:
        return None, _needs(source, missing)
    area, why = area_for(source, location)
    if area is None:
        return None, why
    if missing:
        return None, _needs(source, missing)
    return area, None


def _needs(source: Source, missing: list[str]) -> str:
    if source.name == "watttime":
        return f"needs ${' and $'.join(missing)}"
    signup = "a token" if source.name in ("electricitymaps", "entsoe") else "a key"
    return f"needs {signup} in ${missing[0]}"


def _reason(
    source: Source, location: Location, auto: bool, others: list[str], keyed: Sequence[str] = ()
) -> str:
    """Why `source` was asked: what it is, and (for auto) what else could have served."""
    basis = areas_of(source).BASIS if source.areas else _RULE_BASIS.get(source.name, "")
    how = "your key" if source.keys else "no signup"
    text = f"{source.label} ({how}): {basis}" if basis else f"{source.label} ({how})"
    if not auto:
        return f"asked for with --intensity-source {source.name}; {text}"
    after = f"; also serves {location.region}: {', '.join(others)}" if others else ""
    after += f"; with a key: {'; '.join(keyed)}" if keyed else ""
    return f"auto: the first source serving {location.region} in carbonwrap's order: {text}{after}"


_RULE_BASIS = {
    "electricitymaps": "lifecycle, consumption-based (imports included)",
    "ukgrid": "NESO's intensity of GB's consumption",
    "energidataservice": "Energinet's CO2Emis, consumption-based",
    "watttime": "MARGINAL operating emissions rate, not average intensity",
}


def choose(source: str, location: Location, environ: Mapping[str, str]) -> Choice:
    """The provider for `source`; an explicit one that cannot serve is an error (exit 125)."""
    if source == "static" or (location.kind == "world" and source == "auto"):
        return Choice(None, None, None)
    if source == "auto":
        return _auto(location, environ, live=True)
    chosen = BY_NAME.get(source)
    if chosen is None:
        raise CarbonwrapError(f"unknown --intensity-source {source!r}: use {', '.join(SOURCES)}")
    area, why = _serves(chosen, location, environ, keys_first=True)
    if area is None:
        raise CarbonwrapError(f"--intensity-source {source} {why}")
    if not chosen.live:
        raise CarbonwrapError(
            f"--intensity-source {source} publishes about a day late: it prices runs afterwards "
            f"(`carbonwrap reprice`), not live"
        )
    return Choice(
        source, _factory(chosen, area, environ), None, _reason(chosen, location, False, [])
    )


def _auto(location: Location, environ: Mapping[str, str], *, live: bool) -> Choice:
    """The first source in catalog order that serves `location` (for live values: one that
    gives them; for history: one that keeps it), never a marginal one."""
    serving: list[tuple[Source, str]] = []
    unkeyed: list[str] = []
    for candidate in BY_NAME.values():
        if candidate.marginal or (live and not candidate.live):
            continue
        area, why = _serves(candidate, location, environ)
        if area is not None:
            serving.append((candidate, area))
        elif why and why.startswith("needs ") and area_for(candidate, location)[0] is not None:
            unkeyed.append(f"{candidate.label} {why}")
    if serving:
        chosen, area = serving[0]
        others = [s.name for s, _ in serving[1:]]
        why = _reason(chosen, location, True, others, unkeyed)
        return Choice(chosen.name, _factory(chosen, area, environ), None, why)
    em = _serves(BY_NAME["electricitymaps"], location, environ)[1]
    hints = "; ".join(unkeyed) if unkeyed else f"Electricity Maps {em}"
    what = "live intensity" if live else "intensity history"
    return Choice(
        None, None, f"no {what} provider for {location.region}: {hints}; using the static table"
    )


def choose_history(location: Location, environ: Mapping[str, str], source: str = "auto") -> Choice:
    """The source whose history prices a logged run afterwards (`carbonwrap reprice`): the one
    asked for, else auto's order among those that keep history (EIA included, though a day
    late); Choice.name None and a note saying why where none can."""
    if source == "static" or location.kind == "world":
        return Choice(None, None, f"no intensity history for {location.region}: static only")
    if source == "auto":
        return _auto(location, environ, live=False)
    chosen = BY_NAME.get(source)
    if chosen is None:
        raise CarbonwrapError(f"unknown --intensity-source {source!r}: use {', '.join(SOURCES)}")
    area, why = _serves(chosen, location, environ, keys_first=True)
    if area is None:
        raise CarbonwrapError(f"--intensity-source {source} {why}")
    return Choice(
        source, _factory(chosen, area, environ), None, _reason(chosen, location, False, [])
    )


def history_days(name: str) -> float:
    """How far back `name`'s history reaches, in days (0: none)."""
    source = BY_NAME[name]
    if source.areas is None:
        return _HISTORY_DAYS.get(name, 0.0)
    return float(areas_of(source).HISTORY_DAYS)
