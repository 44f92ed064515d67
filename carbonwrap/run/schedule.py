"""Carbon-aware start (`run --start-within 8h --expected-duration 2h`): fetch the region's
intensity forecast once, choose the start with the lowest mean over the expected run
(`intensity/window.py`), say so on stderr, and wait for it before anything of the run exists
(no log, no cgroup leaf, no child). Imported only when a run asks for it.

Signals while waiting: SIGINT (Ctrl-C), SIGTERM and SIGHUP end carbonwrap with one line and
128 + N, as a shell reports a command killed by signal N; the command never runs.
"""

import errno
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any, NamedTuple, TextIO

from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.points import AVERAGE, IntensityPoint, ProviderError
from carbonwrap.intensity.window import best_window
from carbonwrap.quantities import format_duration
from carbonwrap.runlog.records import parse_utc, utc_iso
from carbonwrap.settings.catalog import Value
from carbonwrap.settings.resolve import Config, named

FETCH_BUDGET_S = 10.0  # the whole forecast fetch, whatever the network does
FORECASTS = ("ukgrid", "energidataservice", "electricitymaps")  # providers with an average one
WAIT_STEP_S = 60.0  # re-read the wall clock at least this often (NTP steps, suspend)
_WAIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):
    """A signal arrived while waiting for the chosen start: the command must not run.

    A BaseException, as KeyboardInterrupt is: it may arrive in the middle of the forecast
    fetch, where every Exception is taken for the provider's failure (and the command starts)."""

    def __init__(self, signum: int) -> None:
        self.name = signal.Signals(signum).name
        self.status = 128 + signum
        super().__init__(
            f"{self.name} while waiting for the scheduled start; the command did not run"
        )


class Forecast(NamedTuple):
    points: list[IntensityPoint]
    source: str  # the points' source, e.g. "ukgrid:national"


def requested(resolved: Mapping[str, Value]) -> tuple[float, float]:
    """(start_within_s, expected_duration_s); one line, exit 125, without an expected duration."""
    within, duration = resolved["start_within"], resolved["expected_duration"]
    if duration.value is None:
        raise CarbonwrapError(
            f"{named('start_within', within)} needs the run's expected duration to choose a "
            "window: give --expected-duration (e.g. 2h) or set expected_duration"
        )
    return float(within.value), float(duration.value)


async def _fetch(provider: Any, now: Callable[[], float]) -> Forecast:
    from carbonwrap import __version__
    from carbonwrap.intensity.http import new_session

    headers = {"User-Agent": f"carbonwrap/{__version__}", "Accept": "application/json"}
    async with new_session(headers) as session:
        points: list[IntensityPoint] = await provider.forecast(session)
        if not points:
            raise ProviderError(f"{provider.name}: the forecast is empty")
        if any(p.signal != AVERAGE for p in points):
            raise ProviderError(f"{provider.name}: the forecast is not of average intensity")
        first_s = min(p.start_s for p in points)
        now_s = now()
        if first_s > now_s:
            # Electricity Maps' forecast may begin at the next hour: the current value fills in.
            try:
                current = await provider.latest(session)
            except Exception:  # whatever it answered: the forecast alone still serves
                current = None
            if current is not None and current.signal == AVERAGE:
                points = [current._replace(start_s=now_s, end_s=first_s), *points]
        return Forecast(points, points[-1].source)


def fetch_forecast(
    make: Callable[[], Any], budget_s: float = FETCH_BUDGET_S, now: Callable[[], float] = time.time
) -> Forecast:
    """The provider's forecast within `budget_s`; ProviderError (with its reason) otherwise,
    whatever the provider answers (run_bounded turns any exception into one)."""
    import asyncio

    from carbonwrap.intensity.oneshot import run_bounded

    try:
        provider = make()
    except ValueError as exc:  # a provider's constructor refusing its settings
        raise ProviderError(str(exc)) from None
    try:
        return run_bounded(_fetch(provider, now), budget_s)
    except asyncio.TimeoutError:
        raise ProviderError(f"no forecast within {budget_s:g} s") from None


def decide(
    forecast: Forecast | str,
    within_s: float,
    duration_s: float,
    now_s: float,
    region: str,
) -> dict[str, Any]:
    """The `schedule` record for the start record: the chosen start and what the forecast says
    of it, or (`forecast` is a reason) a start at once and why. `waited_s` is added later."""
    record: dict[str, Any] = {
        "region": region,
        "requested_within_s": within_s,
        "expected_duration_s": duration_s,
        "decided_at": utc_iso(now_s),
        "chosen_start": utc_iso(now_s),
        "waited_s": 0.0,
        "forecast_mean_g_per_kwh": None,
        "now_g_per_kwh": None,
        "saving_pct": None,
        "source": None,
        "forecast_until": None,
        "latest_start": None,
        "cut": False,
        "reason": None,
    }
    if isinstance(forecast, str):
        record["reason"] = forecast
        return record
    window = best_window(forecast.points, now_s, within_s, duration_s)
    record["source"] = forecast.source
    if window is None:
        end_s = max(p.end_s for p in forecast.points)
        record["forecast_until"] = utc_iso(end_s)
        record["reason"] = (
            f"{forecast.source}: the forecast ends "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(end_s))}, before a "
            f"{format_duration(duration_s)} run started now would end"
        )
        return record
    saving = window.saving_pct
    record.update(
        chosen_start=utc_iso(window.start_s),
        forecast_mean_g_per_kwh=round(window.mean_g_per_kwh, 3),
        now_g_per_kwh=round(window.now_g_per_kwh, 3),
        saving_pct=None if saving is None else round(saving, 3),
        forecast_until=utc_iso(window.forecast_end_s),
        latest_start=utc_iso(window.latest_start_s),
        cut=window.cut,
    )
    return record


def wait_until(
    target_s: float,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    step_s: float = WAIT_STEP_S,
) -> None:
    """Return once the wall clock `now()` reaches `target_s`, sleeping at most `step_s` at a
    time: a monotonic sleep does not count a suspended machine, and the wall clock may be set."""
    while True:
        left_s = target_s - now()
        if left_s <= 0:
            return
        sleep(min(left_s, step_s))


def _no_forecast_reason(
    choice_name: str | None, note: str | None, fixed: bool, source: str
) -> str | None:
    """Why this run has no forecast to choose by, before asking any provider; None if it may."""
    if fixed:
        return "the intensity is fixed by --intensity"
    if choice_name is None:
        if source == "static":
            return "the intensity source is static"
        return (note or "no live intensity provider").split("; using the static")[0]
    if choice_name not in FORECASTS:
        return f"{choice_name} forecasts a marginal emissions rate, not average intensity"
    return None


def check_before_waiting(
    command: Sequence[str],
    environ: Mapping[str, str],
    json_path: str | None,
    log_dir: str,
    prometheus_textfile: str | None,
) -> None:
    """What would fail once the wait is over, checked now: a mistake found after hours is
    hours lost. Same one-line errors as the run gives."""
    from carbonwrap.outfiles import check_log_directory
    from carbonwrap.run.child import exec_error
    from carbonwrap.run.outputs import check_json_target

    argv0 = command[0]
    search = environ.get("PATH", os.defpath)
    found = os.path.exists(argv0) if "/" in argv0 else shutil.which(argv0, os.F_OK, search)
    if not found:
        raise exec_error(argv0, FileNotFoundError(errno.ENOENT, argv0))
    check_json_target(json_path)
    if prometheus_textfile is not None:
        from carbonwrap.live.textfile import check_target

        check_target(prometheus_textfile)
    check_log_directory(log_dir)


def start_when_greenest(
    resolved: Mapping[str, Value],
    command: Sequence[str],
    where: tuple[str | None, str | None, str | None],
    json_path: str | None,
    config: Config,
    environ: Mapping[str, str],
    stderr: TextIO,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Choose the start, announce it (unless quiet), wait for it; the `schedule` record.

    `resolved`: the run's settings (`config.resolve`), start_within > 0. Interrupted when a
    signal ends the wait; CarbonwrapError for what the run would refuse anyway."""
    from carbonwrap.intensity.plan import plan_intensity
    from carbonwrap.render.schedule import announce

    within_s, duration_s = requested(resolved)
    setting = {key: value.value for key, value in resolved.items()}
    previous = _catch_signals()
    try:
        check_before_waiting(
            command, environ, json_path, setting["log_dir"], setting["prometheus_textfile"]
        )
        region, location, cloud = where
        source = str(setting["intensity_source"])
        fixed = setting["intensity"]
        plan = plan_intensity(region, location, cloud, source, fixed, environ, config)
        choice = plan.choice
        reason = _no_forecast_reason(choice.name, choice.note, fixed is not None, source)
        forecast: Forecast | str
        if reason is not None or choice.make is None:
            forecast = reason or "no live intensity provider"
        else:
            try:
                forecast = fetch_forecast(choice.make, now=now)
            except ProviderError as exc:
                forecast = f"{choice.name}: {exc.reason}"
        record = decide(forecast, within_s, duration_s, now(), plan.region["code"])
        if not setting["quiet"]:
            stderr.write("".join(line + "\n" for line in announce(record)))
            stderr.flush()
        waiting_since_s = now()
        if record["reason"] is None:
            wait_until(parse_utc(record["chosen_start"]) or waiting_since_s, now, sleep)
        record["waited_s"] = round(max(0.0, now() - waiting_since_s), 3)
    finally:
        _restore_signals(previous)
    return record


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _catch_signals() -> dict[int, Any]:
    """Turn the wait's signals into Interrupted, except those carbonwrap was started with
    ignored (nohup, a background job): those stay ignored, as they would for the command."""
    previous: dict[int, Any] = {}
    for sig in _WAIT_SIGNALS:
        handler = signal.getsignal(sig)
        if handler != signal.SIG_IGN:
            previous[sig] = handler
            signal.signal(sig, _raise_interrupted)
    return previous


def _restore_signals(previous: Mapping[int, Any]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
