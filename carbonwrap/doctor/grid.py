"""Doctor checks of where the run is and its intensity source: the region with its source, the
provider `auto` (or --intensity-source) picks, its credentials, and whether it answers in time.

The steps are plan_intensity's (location, credentials, choice), taken one by one so that a bad
config file or a provider that cannot serve is a line of the report, not the end of it.
"""

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from carbonwrap.doctor import ERROR, MISSING, OK, WARN, Check
from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.location import Location

TIMEOUT_S = 3.0  # the provider's whole answer, retries included: doctor never waits longer
_TABLE_KINDS = ("country", "us-state", "world")


def check_region(where: Location) -> Check:
    """The resolved location: its code, name and source (flag, env, timezone, default)."""
    from carbonwrap.intensity.location import em_zones

    name = where.static.region_name if where.kind in _TABLE_KINDS else None
    if where.kind == "zone":
        name = em_zones().get(where.region)
    label = f"{where.region} ({name})" if name else where.region
    detail = f"{label}, source {where.source}: {where.detail}"
    if where.source == "default":
        return Check(
            "region",
            WARN,
            detail + "; the world average is used",
            "give --region CODE, or export CARBONWRAP_REGION=CODE (a country such as DK, a US "
            "state such as US-CA, an Electricity Maps zone such as DK-DK1)",
        )
    return Check("region", OK, detail)


def check_intensity(
    where: Location, source: str, environ: Mapping[str, str], timeout_s: float = TIMEOUT_S
) -> list[Check]:
    """Which intensity source a run would use, its credentials, and one bounded request to it."""
    from carbonwrap.intensity.select import choose
    from carbonwrap.secrets import user_config_path, with_secrets

    static = where.static
    table = (
        f"static table: {static.region_name} {static.year}, "
        f"{static.intensity_g_per_kwh:.0f} gCO2e/kWh, {static.source}"
    )
    checks: list[Check] = []
    try:
        merged, notes = with_secrets(environ)
    except CarbonwrapError as exc:
        return [Check("intensity", ERROR, exc.message)]
    for note in notes:  # the config file holds a secret that others can read
        path = user_config_path(environ)
        checks.append(Check("credentials", WARN, note.partition(": chmod")[0], f"chmod 600 {path}"))
    try:
        choice = choose(source, where, merged)
    except CarbonwrapError as exc:  # an --intensity-source that cannot serve this location
        return [*checks, Check("intensity", MISSING, exc.message)]
    if choice.make is None:
        if choice.note is None:
            # choose() picks none without a note for `static` and for the world average.
            why = "--intensity-source static" if source == "static" else "no live provider for it"
            checks.append(Check("intensity", OK, f"{table}; {why}"))
        else:
            checks.append(
                Check("intensity", WARN, f"{table}; {choice.note}", _live_fix(merged, environ))
            )
        return checks
    how = "auto" if source == "auto" else "--intensity-source"
    detail = f"{choice.name} ({how}) for {where.region}, {_credentials(choice.name, environ)}"
    checks.append(Check("intensity", OK, f"{detail}; fallback {table}"))
    checks.append(_reach(choice.name or "", choice.make, timeout_s))
    return checks


def _live_fix(merged: Mapping[str, str], environ: Mapping[str, str]) -> str:
    from carbonwrap.intensity.select import EM_TOKEN
    from carbonwrap.secrets import user_config_path

    if not merged.get(EM_TOKEN):
        return (
            f"export {EM_TOKEN}=TOKEN (free at electricitymaps.com), or put it in "
            f'{user_config_path(environ)} as [electricitymaps] token = "..." (chmod 600)'
        )
    return "give --region ZONE (an Electricity Maps zone, e.g. US-CAL-CISO) or --location LAT,LON"


def _credentials(name: str | None, environ: Mapping[str, str]) -> str:
    """Where the provider's credentials come from; never their values."""
    from carbonwrap.intensity.select import EM_TOKEN, WT_PASSWORD, WT_USER
    from carbonwrap.secrets import user_config_path

    needed = {"electricitymaps": (EM_TOKEN,), "watttime": (WT_USER, WT_PASSWORD)}.get(name or "")
    if not needed:
        return "no credentials needed"
    origins = [f"${var}" if environ.get(var) else user_config_path(environ) for var in needed]
    what = "token" if len(needed) == 1 else "username and password"
    return f"{what} from {' and '.join(dict.fromkeys(origins))}"


def _reach(name: str, make: Callable[[], Any], timeout_s: float) -> Check:
    """One `latest` request, bounded by `timeout_s` whatever the network does."""
    from carbonwrap.intensity.points import ProviderError

    started = time.monotonic()
    place = name
    # A loop of our own, closed without waiting for its executor: asyncio.run would wait for a
    # thread stuck in getaddrinfo (a DNS server that never answers) long after the timeout.
    loop = asyncio.new_event_loop()
    try:
        provider = make()
        place = _place(provider) or name
        point = loop.run_until_complete(asyncio.wait_for(_latest(provider), timeout_s))
    except asyncio.TimeoutError:
        return Check("intensity api", WARN, f"{place}: no answer within {timeout_s:g} s", _ON_FAIL)
    except ProviderError as exc:
        return Check("intensity api", WARN, exc.reason, _ON_FAIL)
    except Exception as exc:  # the type only: an exception's text may carry a URL with a key
        return Check("intensity api", WARN, f"{place}: failed ({type(exc).__name__})", _ON_FAIL)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    took_s = time.monotonic() - started
    return Check(
        "intensity api",
        OK,
        f"{place} answered in {took_s:.2f} s: {point.intensity_g_per_kwh:.0f} gCO2e/kWh "
        f"({point.kind}, {point.source})",
    )


_ON_FAIL = (
    "none needed if it is a passing outage: runs fall back to the static table; else check "
    "the network or proxy (and $CARBONWRAP_<PROVIDER>_URL where set)"
)


async def _latest(provider: Any) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        return await provider.latest(session)


def _place(provider: Any) -> str:
    """host[:port]/path of the provider's base URL, never a query or credentials."""
    from carbonwrap.intensity.http import where

    base = getattr(provider, "base", "")
    return where(base) if base else ""
