"""Grid regions of the embedded table: a name or code matched, near matches for a typo, the
row an Electricity Maps zone falls back to, and the system time zone's country (the default when
no region is given; `location.py` decides)."""

from __future__ import annotations

import os

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.table import WORLD, IntensityTable, StaticIntensity
from carbonwrap.lite import NamedTuple, cache, suppress
from carbonwrap.packagedata import read_data

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    _Parser = Callable[[str, IntensityTable], "str | None"]

ENV_VAR = "CARBONWRAP_REGION"
ZONEINFO = "/usr/share/zoneinfo"
_ZONE_STATES_FILE = "us_zone_states.csv"
_ZONE_STATES_HEADER = ["zone", "state", "states_served", "why"]


class Region(NamedTuple):
    """A resolved region and how it was chosen."""

    code: str  # canonical table code, or "WORLD"
    source: str  # "flag" | "env" | "timezone" | "default"
    detail: str  # "--region dk", "CARBONWRAP_REGION=US-CA", "time zone Europe/Copenhagen", ...


def region_from_timezone(
    environ: Mapping[str, str], tz_name: str | None, table: IntensityTable
) -> Region:
    """The time zone's country (source "timezone"), else WORLD (source "default"); never raises.

    `tz_name` None means: read the system's (`system_timezone`).
    """
    tz = system_timezone(environ) if tz_name is None else tz_name
    if not tz:
        return Region(WORLD, "default", "no region given and no system time zone found")
    country = timezone_country(tz)
    if country is None:
        return Region(WORLD, "default", f"no region given and time zone {tz} has no country")
    if country not in table:
        detail = f"no region given and time zone {tz} is in {country}, which has no intensity data"
        return Region(WORLD, "default", detail)
    return Region(table.lookup(country).region, "timezone", f"time zone {tz}")


# A parser maps what the user typed to a canonical code, or None when the text is not its kind;
# ValueError("A (x) or B (y)") when the text names several regions.
# Provider zones ("DK-DK1"), "gb-postcode:RG10", points and cloud regions: see location.py.


def _by_code(text: str, table: IntensityTable) -> str | None:
    return table.lookup(text).region if text in table else None


def _by_name(text: str, table: IntensityTable) -> str | None:
    matches = [e for e in table.entries() if e.region_name.casefold() == text.casefold()]
    if len(matches) > 1:  # "Georgia": the country and the US state
        raise ValueError(" or ".join(f"{e.region} ({e.region_name})" for e in matches))
    return matches[0].region if matches else None


_PARSERS: tuple[_Parser, ...] = (_by_code, _by_name)


def match_region(text: str, table: IntensityTable, where: str = "") -> str | None:
    """The table code `text` names (code or name, any case), None if none; ambiguity raises."""
    value = text.strip()
    for parser in _PARSERS:
        try:
            code = parser(value, table)
        except ValueError as options:
            message = f"ambiguous region {text!r}{where}: {options}; give the code"
            raise CarbonwrapError(message) from None
        if code is not None:
            return code
    return None


def suggest(text: str, table: IntensityTable, limit: int = 3) -> list[str]:
    """Near matches for an unknown region, as "DK (Denmark)"; error path only (imports difflib)."""
    folded = text.strip().casefold()
    names = {e.region: e.region_name for e in table.entries()}
    alpha3 = table.iso3_to_code().get(folded.upper())
    if alpha3:  # "DNK": the user knows the country, just not the two-letter form
        return [f"{alpha3} ({names[alpha3]})"]
    if folded == "uk":  # exceptionally reserved ISO code; the table uses GB
        return [f"GB ({names['GB']})"]
    keys: dict[str, str] = {}  # casefolded code or name -> canonical code
    cutoff = 0.6
    if folded.startswith("us-"):  # a US state was meant: match the rest against states only
        folded = folded[3:]
        cutoff = 0.5  # "US-CF": one letter of two right is a ratio of 0.5
        for code, name in names.items():
            if code.startswith("US-"):
                keys[code[3:].casefold()] = code
                keys[name.casefold()] = code
    else:
        for code, name in names.items():
            keys.setdefault(code.casefold(), code)
            keys.setdefault(name.casefold(), code)
        for iso3, code in table.iso3_to_code().items():
            keys.setdefault(iso3.casefold(), code)
    return [f"{code} ({names[code]})" for code in closest(folded, keys, limit, cutoff)]


def zone_static(zone: str, table: IntensityTable) -> tuple[StaticIntensity, str]:
    """The table row an Electricity Maps zone falls back to offline, with a phrase naming it:
    a US balancing area's state (US-CAL-CISO → US-CA, us_zone_states.csv), else the zone's
    country (DK-DK1 → DK), else the world average."""
    mapped = _zone_states().get(zone)
    if mapped is not None and mapped[0]:
        state, served = mapped
        static = table.lookup(f"US-{state}")
        others = [code for code in served if code != state]
        tail = f" (its balancing area also serves {', '.join(others)})" if others else ""
        return static, f"{static.region_name} ({static.region}) state average{tail}"
    country = zone.split("-")[0]
    if country not in table:
        return table.world(), f"world average ({country} has no offline data)"
    static = table.lookup(country)
    phrase = f"{static.region_name} ({static.region}) country average"
    if mapped is not None and len(mapped[1]) > 1:  # a balancing area spread over many states
        phrase += f" (its balancing area spans {len(mapped[1])} states, none with most load)"
    return static, phrase


@cache
def _zone_states() -> dict[str, tuple[str, list[str]]]:
    """us_zone_states.csv as {zone: (state or "", [states served])}; read on first use."""
    import csv

    reader = csv.reader(read_data(_ZONE_STATES_FILE).decode("utf-8").splitlines())
    found = next(reader)
    if found != _ZONE_STATES_HEADER:
        raise RuntimeError(f"carbonwrap/data/{_ZONE_STATES_FILE}: columns {found}")
    return {row[0]: (row[1], row[2].split()) for row in reader}


def closest(text: str, keys: dict[str, str], limit: int, cutoff: float = 0.6) -> list[str]:
    """Codes whose key is close to `text`: ratio >= cutoff and within 0.1 of the best one."""
    from difflib import SequenceMatcher

    matcher = SequenceMatcher(b=text)
    scored: list[tuple[float, str]] = []
    for key, code in keys.items():
        matcher.set_seq1(key)
        score = matcher.ratio()
        if score >= cutoff:
            scored.append((score, code))
    scored.sort(key=lambda pair: -pair[0])  # stable: ties keep file order
    if not scored:
        return []
    best = scored[0][0]
    codes = [code for score, code in scored if score >= best - 0.1]
    return list(dict.fromkeys(codes))[:limit]


def system_timezone(
    environ: Mapping[str, str], etc_root: str | os.PathLike[str] = "/etc"
) -> str | None:
    """The system's time zone name ("Europe/Copenhagen"), as libc would pick it, or None.

    $TZ first (":Europe/Copenhagen", a zoneinfo path, or empty for UTC, as glibc reads it), then
    the zoneinfo file that <etc_root>/localtime links to (what glibc and systemd use), then
    <etc_root>/timezone (Debian's, often stale in containers). A $TZ that is a POSIX rule
    ("CET-1CEST") is returned as is; it names no country.
    """
    tz = environ.get("TZ")
    if tz is not None:
        tz = tz.strip().removeprefix(":")
        if not tz:
            return "UTC"  # glibc: TZ set but empty means UTC
        if not tz.startswith("/"):
            return tz
        name = _zone_from_path(tz)
        if name:
            return name
        # A path we cannot name (say TZ=:/etc/localtime with a copied file): try /etc below.
    name = _zone_from_path(os.path.join(etc_root, "localtime"))
    if name:
        return name
    try:
        with open(os.path.join(etc_root, "timezone"), encoding="utf-8") as f:
            text = f.read()
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                return line
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _zone_from_path(path: str) -> str | None:
    """The zone name ("Europe/Copenhagen") in a zoneinfo path or in the link it is, or None."""
    candidates = [path]
    with suppress(OSError):
        candidates.append(os.readlink(path))
    candidates.append(os.path.realpath(path))
    for candidate in candidates:
        _, sep, name = candidate.rpartition("zoneinfo/")
        if sep and name:
            for prefix in ("posix/", "right/"):
                name = name.removeprefix(prefix)
            return name
    return None


def timezone_country(tz_name: str, zoneinfo: str | os.PathLike[str] = ZONEINFO) -> str | None:
    """The ISO 3166 alpha-2 code zone.tab gives a time zone ("Europe/Copenhagen" → "DK"), or None.

    Reads <zoneinfo>/zone.tab (current with the system's tzdata), else the copy we ship. Old names
    that tzdata keeps as links ("US/Pacific", "Europe/Kiev") are followed through
    <zoneinfo>/tzdata.zi where there is one. Zones without a country ("Etc/UTC", "UTC") give None.
    """
    name = tz_name.strip().removeprefix(":")
    if name.startswith("Etc/") or name in _NO_COUNTRY:
        return None  # common on servers; spares reading tzdata.zi for a link that cannot help
    zoneinfo = os.fspath(zoneinfo)
    zones = _zone_tab(zoneinfo)
    for _ in range(4):  # tzdata links point at zones; a few hops are plenty
        if name in zones:
            return zones[name]
        target = _tz_links(zoneinfo).get(name)
        if target is None:
            return None
        name = target
    return None


# Zones (or links to Etc/ zones) that belong to no country.
_NO_COUNTRY = frozenset(
    {"UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "Universal", "Zulu"}
)


@cache
def _zone_tab(zoneinfo: str) -> dict[str, str]:
    """zone.tab as {zone: country}: the system's copy, else the one we ship."""
    try:
        text = _read(os.path.join(zoneinfo, "zone.tab"))
    except OSError:
        text = read_data("zone.tab").decode("utf-8")
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones.setdefault(fields[2], fields[0])
    return zones


@cache
def _tz_links(zoneinfo: str) -> dict[str, str]:
    """{link: target} from tzdata.zi ("L target link" lines); empty without one. Read on a miss."""
    try:
        text = _read(os.path.join(zoneinfo, "tzdata.zi"))
    except OSError:
        return {}
    links: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("L "):
            fields = line.split()
            if len(fields) == 3:
                links[fields[2]] = fields[1]
    return links


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()
