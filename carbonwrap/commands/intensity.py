"""The `intensity` command: the current value (and forecast) for a location, with its source."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from typing import Any, TextIO

from carbonwrap.errors import shown
from carbonwrap.intensity.oneshot import run_bounded
from carbonwrap.intensity.points import AVERAGE, IntensityPoint, ProviderError, reason_text
from carbonwrap.settings.resolve import Config, intensity_source

TIMEOUT_S = 15.0  # the whole command, whatever the network does


def _hhmm(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch_s)) if math.isfinite(epoch_s) else ""


async def _fetch(provider: Any, forecast: bool) -> tuple[IntensityPoint, list[IntensityPoint]]:
    from carbonwrap.intensity.http import new_session

    async with new_session({"Accept": "application/json"}) as session:
        now = await provider.latest(session)
        ahead = await provider.forecast(session) if forecast else []
    return now, ahead


def intensity(
    region: str | None,
    location: str | None,
    cloud: str | None,
    source_flag: str | None,
    forecast: bool,
    as_json: bool,
    environ: Mapping[str, str],
    stdout: TextIO,
) -> int:
    """`carbonwrap intensity`: `source_flag` is --intensity-source (None: the settings')."""
    config, source = intensity_source(source_flag, environ)
    return show(region, location, cloud, source, forecast, as_json, environ, stdout, config)


def show(
    region: str | None,
    location: str | None,
    cloud: str | None,
    source: str,
    forecast: bool,
    as_json: bool,
    environ: Mapping[str, str],
    stdout: TextIO,
    config: Config | None = None,
) -> int:
    from carbonwrap.intensity.plan import plan_intensity

    plan = plan_intensity(region, location, cloud, source, None, environ, config)
    choice = plan.choice
    code, detail = plan.region["code"], plan.region["detail"]
    now, fallback = plan.static, choice.note
    ahead: list[IntensityPoint] = []
    if choice.make is not None:
        try:
            provider = choice.make()  # ValueError: the provider refuses its settings
            # Whatever the provider answers, a ProviderError (run_bounded) or a timeout.
            now, ahead = run_bounded(_fetch(provider, forecast), TIMEOUT_S)
        except (ProviderError, asyncio.TimeoutError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, ProviderError) else str(exc) or "timed out"
            fallback = f"{choice.name}: {reason_text(reason)}; showing the static table"
    if as_json:
        doc = {
            "schema": "carbonwrap.intensity/1",
            "region": code,
            "region_detail": detail,
            "provider": plan.region.get("provider"),
            "provider_why": plan.region.get("provider_why"),
            "now": _point_doc(now),
            "forecast": [_point_doc(p) for p in ahead],
            "fallback_reason": fallback,
        }
        stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    window = f" {_hhmm(now.start_s)}–{_hhmm(now.end_s)[-5:]} UTC" if now.start_s > 0 else ""
    signal = " (MARGINAL emissions rate, not average intensity)" if now.signal != AVERAGE else ""
    lines = [
        f"{code}: {now.intensity_g_per_kwh:.0f} gCO2e/kWh{signal}, {now.kind}{window}",
        f"  source  {now.source}",
        f"  region  {detail}",
    ]
    if choice.why:
        lines.append(f"  why     {choice.why}")
    if fallback:
        lines.append(f"  note    {fallback}")
    if ahead:
        best = min(ahead, key=lambda p: p.intensity_g_per_kwh)
        worst = max(ahead, key=lambda p: p.intensity_g_per_kwh)
        lines.append(
            f"  forecast {len(ahead)} values to {_hhmm(ahead[-1].end_s)} UTC: lowest "
            f"{best.intensity_g_per_kwh:.0f} at {_hhmm(best.start_s)}, highest "
            f"{worst.intensity_g_per_kwh:.0f} at {_hhmm(worst.start_s)}"
        )
    elif forecast:
        lines.append("  forecast none from this source")
    stdout.write("\n".join(shown(line) for line in lines) + "\n")  # provider text among them
    return 0


def list_sources(as_json: bool, stdout: TextIO) -> int:
    """`carbonwrap intensity --list`: every region with a live source, one line each."""
    from carbonwrap.intensity.catalog import coverage

    rows = coverage()
    free = sorted({r["region"] for r in rows if not r["key"] and r["live"]})
    if as_json:
        doc = {
            "schema": "carbonwrap.intensity-sources/1",
            "no_signup_regions": free,
            "sources": rows,
        }
        stdout.write(json.dumps(doc, indent=2) + "\n")
        return 0
    width = max(len(r["region"]) for r in rows)
    lines = [f"{'region':<{width}}  {'provider':<17} {'every':>6} {'history':>8}  key"]
    for r in rows:
        every = f"{r['resolution_s'] / 60:g} min"
        history = f"{r['history_days']:g} d" if r["history_days"] else "none"
        key = ", ".join(f"${k}" for k in r["key"]) or "no signup"
        late = "" if r["live"] else " (a day late: for reprice)"
        lines.append(
            f"{r['region']:<{width}}  {r['provider']:<17} {every:>6} {history:>8}  {key}{late}"
        )
    lines.append(f"{len(free)} regions live without signing up; others use the yearly table.")
    stdout.write("\n".join(lines) + "\n")
    return 0


def _point_doc(point: IntensityPoint) -> dict[str, Any]:
    finite = point.start_s > 0 and math.isfinite(point.end_s)
    return {
        "intensity_g_per_kwh": point.intensity_g_per_kwh,
        "kind": point.kind,
        "signal": point.signal,
        "source": point.source,
        "start": _iso(point.start_s) if finite else None,
        "end": _iso(point.end_s) if finite else None,
    }


def _iso(epoch_s: float) -> str:
    from carbonwrap.runlog.records import utc_iso

    return utc_iso(epoch_s)
