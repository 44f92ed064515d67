"""Doctor checks of where the run is and its intensity source: the region with its source, the
provider `auto` (or --intensity-source) picks, its credentials, and whether it answers in time.

The decision is plan_intensity's, the one `run` and `intensity` use, so doctor cannot disagree
with them; a provider that cannot serve, or a bad settings file, is a line of the report.
"""

import time
from collections.abc import Callable, Mapping
from typing import Any

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check
from carbonwrap.errors import CarbonwrapError
from carbonwrap.settings.resolve import Config, load_config

TIMEOUT_S = 3.0  # the provider's whole answer, retries included: doctor never waits longer
_TABLE_KINDS = ("country", "us-state", "world")


def check_grid(
    region: str | None,
    location: str | None,
    cloud: str | None,
    source: str,
    environ: Mapping[str, str],
    timeout_s: float = TIMEOUT_S,
    config: Config | None = None,
) -> list[Check]:
    """The region line, then the intensity lines. A bad --region, --location or --cloud raises
    CarbonwrapError (exit 125), as it does for `run`. `config`: the settings files (None: those
    of the working directory and the user)."""
    from carbonwrap.intensity.plan import plan_intensity

    try:
        config = load_config(environ) if config is None else config  # a bad file: a line below
        plan = plan_intensity(region, location, cloud, source, None, environ, config)
    except CarbonwrapError as exc:
        from carbonwrap.intensity.location import resolve_location

        # a bad option raises again; a region from a settings file counts as it does for a run
        configured = config.where() if config is not None else None
        where = resolve_location(region, location, cloud, environ, configured=configured)
        place = {"code": where.region, "kind": where.kind, "source": where.source}
        place["detail"] = where.detail
        status = MISSING if exc.message.startswith("--intensity-source") else ERROR
        return [check_region(place), Check("intensity", status, exc.message)]
    return [check_region(plan.region), *check_intensity(plan, source, environ, config, timeout_s)]


def check_region(place: Mapping[str, str]) -> Check:
    """The resolved location (a start record's `region`): code, name and source (flag, env,
    timezone, default)."""
    from carbonwrap.intensity.location import em_zones
    from carbonwrap.intensity.table import load_table

    code, kind = place["code"], place["kind"]
    name = load_table().lookup(code).region_name if kind in _TABLE_KINDS else None
    if kind == "zone":
        name = em_zones().get(code)
    label = f"{code} ({name})" if name else code
    detail = f"{label}, source {place['source']}: {place['detail']}"
    if place["source"] == "default":
        return Check(
            "region",
            WARN,
            detail + "; the world average is used",
            "give --region CODE, or export CARBONWRAP_REGION=CODE (a country such as DK, a US "
            "state such as US-CA, an Electricity Maps zone such as DK-DK1)",
        )
    return Check("region", OK, detail)


def check_intensity(
    plan: Any,
    source: str,
    environ: Mapping[str, str],
    config: Config,
    timeout_s: float = TIMEOUT_S,
) -> list[Check]:
    """Which intensity source the plan gives a run, its credentials, one bounded request to it."""
    from carbonwrap.settings.files import user_config_path

    static, choice = plan.static, plan.choice
    table = f"{static.source}: {static.intensity_g_per_kwh:.0f} gCO2e/kWh"
    checks: list[Check] = []
    merged, notes = config.credentials(environ), config.notes
    note = choice.note
    for secret_note in reversed(notes):  # the plan appends these to its note: a line each here
        note = (note or "").removesuffix(secret_note).removesuffix("; ") or None
    for secret_note in notes:  # e.g. the settings file holds a secret that others can read
        path = user_config_path(environ)
        detail = secret_note.partition(": chmod")[0]
        checks.append(Check("credentials", WARN, detail, f"chmod 600 {path}"))
    if choice.make is None:
        if note is None:
            # The plan picks none without a note for `static` and for the world average.
            why = "--intensity-source static" if source == "static" else "no live provider for it"
            checks.append(Check("intensity", OK, f"{table}; {why}"))
        else:
            checks.append(Check("intensity", WARN, f"{table}; {note}", _live_fix(merged, environ)))
        return checks
    how = "auto" if source == "auto" else "--intensity-source"
    where = plan.region["code"]
    detail = f"{choice.name} ({how}) for {where}, {_credentials(choice.name, environ)}"
    checks.append(Check("intensity", OK, f"{detail}; fallback {table}"))
    checks.append(_reach(choice.name or "", choice.make, timeout_s))
    return checks


def _live_fix(merged: Mapping[str, str], environ: Mapping[str, str]) -> str:
    from carbonwrap.intensity.select import EM_TOKEN
    from carbonwrap.settings.files import user_config_path

    if not merged.get(EM_TOKEN):
        return (
            f"export {EM_TOKEN}=TOKEN (free at electricitymaps.com), or put it in "
            f'{user_config_path(environ)} as [electricitymaps] token = "..." (chmod 600)'
        )
    return "give --region ZONE (an Electricity Maps zone, e.g. US-CAL-CISO) or --location LAT,LON"


def _credentials(name: str | None, environ: Mapping[str, str]) -> str:
    """Where the provider's credentials come from; never their values."""
    from carbonwrap.intensity.catalog import BY_NAME
    from carbonwrap.settings.files import user_config_path

    source = BY_NAME.get(name or "")
    needed = source.keys if source else ()
    if not needed:
        return "no credentials needed"
    origins = [f"${var}" if environ.get(var) else user_config_path(environ) for var in needed]
    what = (
        ("token" if "TOKEN" in needed[0] else "key")
        if len(needed) == 1
        else "username and password"
    )
    return f"{what} from {' and '.join(dict.fromkeys(origins))}"


def _reach(name: str, make: Callable[[], Any], timeout_s: float) -> Check:
    """One `latest` request, bounded by `timeout_s` whatever the network does."""
    import asyncio

    from carbonwrap.intensity.oneshot import run_bounded
    from carbonwrap.intensity.points import ProviderError

    started = time.monotonic()
    place = name
    try:
        provider = make()
        place = _place(provider) or name
        point = run_bounded(_latest(provider), timeout_s)
    except asyncio.TimeoutError:
        return Check("intensity api", WARN, f"{place}: no answer within {timeout_s:g} s", _ON_FAIL)
    except ProviderError as exc:  # whatever the provider answered (run_bounded)
        named = place in exc.reason or name in exc.reason
        return Check(
            "intensity api", WARN, exc.reason if named else f"{name}: {exc.reason}", _ON_FAIL
        )
    except Exception as exc:  # the type only: an exception's text may carry a URL with a key
        return Check("intensity api", WARN, f"{place}: failed ({type(exc).__name__})", _ON_FAIL)
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
    from carbonwrap.intensity.http import new_session

    async with new_session() as session:
        return await provider.latest(session)


def _place(provider: Any) -> str:
    """host[:port]/path of the provider's base URL, never a query or credentials."""
    from carbonwrap.intensity.http import where

    base = getattr(provider, "base", "")
    return where(base) if base else ""
