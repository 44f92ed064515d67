"""Poll one live provider on its own thread and asyncio loop; emit intensity records on change.

Nothing here can delay the child or the sampler: aiohttp is imported on the poller's thread, every
request has hard timeouts, and `stop` returns within its budget whatever the network does.
Nothing a provider answers can end the polling either: any exception from a request or its
parsing is a failure with a reason (`points.provider_failure`), as a ProviderError is.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from carbonwrap.intensity.points import MEASURED, IntensityPoint, provider_failure, reason_text
from carbonwrap.intensity.providers import Provider
from carbonwrap.runlog import records

MIN_POLL_S = 60.0  # never ask more often than once a minute, whatever a provider publishes
AFTER_SLOT_S = 30.0  # ask this long after a slot ends, when its successor is likely published
HISTORY_EVERY_S = 1800.0  # measured history for the run so far, every half hour
FORECAST_EVERY_S = 1800.0  # the forecast, once predictions want it (`want_forecast`)


def next_poll_delay_s(now_s: float, point: IntensityPoint | None, resolution_s: float) -> float:
    """When to ask again: shortly after the current value's window ends, within bounds. A value
    whose window has already ended (Energinet publishes 15–60 min late) means the provider lags:
    the next one comes a resolution later, not sooner."""
    upper = max(MIN_POLL_S, resolution_s)
    if point is None or point.end_s <= now_s:
        return upper
    return float(min(upper, max(MIN_POLL_S, point.end_s - now_s + AFTER_SLOT_S)))


def failure_delay_s(failures: int, retry_after_s: float | None, resolution_s: float) -> float:
    """Back off after consecutive failures: 30 s, 60 s, 120 s … up to the provider's resolution
    (at least 5 minutes); a Retry-After from the server wins when longer."""
    backoff = min(max(300.0, resolution_s), 30.0 * 2.0 ** max(0, failures - 1))
    return max(backoff, retry_after_s or 0.0)


class IntensityPoller:
    """One provider, polled at its resolution; falls back to the last good value while it is
    still valid, then to the static value, recording every change and the reason."""

    def __init__(
        self,
        make_provider: Callable[[], Provider],
        provider_name: str,
        static: IntensityPoint,
        region: str,
        emit: Callable[[dict[str, Any]], None],
        warn: Callable[[str], None],
        run_start_s: float,
        mono_start_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # Built on the poller's thread: provider modules import aiohttp (~0.3 s here).
        self._make_provider = make_provider
        self._name = provider_name
        self._provider: Provider | None = None
        self._static = static
        self._region = region
        self._emit = emit
        self._warn = warn
        self._run_start_s = run_start_s
        self._mono_start_s = mono_start_s
        self._clock = clock
        self._current: IntensityPoint = static
        self._last_good: IntensityPoint | None = None
        self._last_good_at_s = 0.0
        self._failures = 0
        self._warned: set[str] = set()
        self._measured: dict[tuple[float, float], float] = {}
        self._forecast_wanted = False
        self._forecast: list[IntensityPoint] = []  # replaced whole, never changed
        self._forecast_warned = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._session: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, name="carbonwrap-intensity")
        self._thread.daemon = True

    # -- the caller's side ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def want_forecast(self) -> None:
        """Fetch the provider's forecast from now on, every FORECAST_EVERY_S (predictions
        price the remaining energy with it); `forecast()` has the latest. Idempotent."""
        if self._forecast_wanted:
            return
        self._forecast_wanted = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)

    def forecast(self) -> list[IntensityPoint]:
        """The latest forecast fetched; [] until one arrives (or where there is none)."""
        return self._forecast

    def stop(self, budget_s: float = 0.3) -> None:
        """Fetch measured history once more if the budget allows, then end; returns within
        about `budget_s` even if a request hangs."""
        deadline = time.monotonic() + budget_s
        if not self._ready.wait(timeout=max(0.0, budget_s / 3)) or self._loop is None:
            return  # still importing aiohttp: nothing fetched yet, nothing to wait for
        final = self._final(budget_s * 0.8)
        try:
            future = asyncio.run_coroutine_threadsafe(final, self._loop)
        except RuntimeError:  # the loop has closed: the polling ended on its own
            final.close()
        else:
            with contextlib.suppress(Exception):
                future.result(timeout=max(0.0, deadline - time.monotonic()))
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()))

    # -- the poller's thread ------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            _can_hold_a_loop()
            loop = asyncio.new_event_loop()
        except Exception as exc:  # e.g. no descriptor left for its self-pipe (ulimit -n)
            why = reason_text(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                self._warn(f"intensity polling not started ({why}); static value in force")
            self._ready.set()
            return
        self._loop = loop
        try:
            self._main = loop.create_task(self._run())
            loop.run_until_complete(self._main)
        except (asyncio.CancelledError, Exception) as exc:
            if not isinstance(exc, asyncio.CancelledError):
                # Not a provider's answer (those are failures of one poll), a fault of ours.
                why = reason_text(f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):  # the log may be what failed
                    if self._current is not self._static:
                        self._record(self._static, reason=f"intensity polling stopped ({why})")
                    self._warn(f"intensity polling stopped ({why}); static value from here on")
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._ready.set()  # stop() need not wait for a session that will never come

    async def _run(self) -> None:
        from carbonwrap import __version__

        # here, on this thread: aiohttp takes ~0.1–0.3 s that must not delay the child
        from carbonwrap.intensity.http import new_session

        self._wake = asyncio.Event()
        try:
            self._provider = self._make_provider()
        except Exception as exc:  # a broken provider must not end the run
            why = reason_text(str(exc))
            self._warn(f"{self._name}: cannot start ({why}); static value in force")
            return
        headers = {"User-Agent": f"carbonwrap/{__version__}", "Accept": "application/json"}
        async with new_session(headers) as session:
            self._session = session
            self._ready.set()
            next_history_s = time.monotonic() + HISTORY_EVERY_S
            next_latest_s = next_forecast_s = 0.0
            while True:
                self._wake.clear()  # a want_forecast() from here on wakes the wait below
                if time.monotonic() >= next_latest_s:
                    next_latest_s = time.monotonic() + await self._poll_latest(session)
                if time.monotonic() >= next_history_s:
                    next_history_s = time.monotonic() + HISTORY_EVERY_S
                    await self._fetch_history(session)
                if self._forecast_wanted and time.monotonic() >= next_forecast_s:
                    next_forecast_s = time.monotonic() + FORECAST_EVERY_S
                    await self._fetch_forecast(session)
                with contextlib.suppress(asyncio.TimeoutError):
                    delay_s = max(0.0, next_latest_s - time.monotonic())
                    await asyncio.wait_for(self._wake.wait(), delay_s)

    async def _poll_latest(self, session: Any) -> float:
        provider = self._provider
        assert provider is not None
        try:
            point = await provider.latest(session)
        except Exception as exc:  # whatever the answer did to the parser: never the thread's end
            failure = provider_failure(exc)
            self._failures += 1
            self._fallback(failure.reason)
            return failure_delay_s(self._failures, failure.retry_after_s, provider.resolution_s)
        self._failures = 0
        self._last_good = point
        self._last_good_at_s = self._clock()
        if (point.intensity_g_per_kwh, point.source, point.signal) != (
            self._current.intensity_g_per_kwh,
            self._current.source,
            self._current.signal,
        ):
            self._record(point, reason=None)
        return next_poll_delay_s(self._clock(), point, provider.resolution_s)

    def _fallback(self, reason: str) -> None:
        """After a failed poll: keep the last good value while valid, else the static one."""
        now = self._clock()
        good = self._last_good
        resolution_s = self._provider.resolution_s if self._provider else 0.0
        # Valid for one resolution past its window, or past its arrival for a lagging provider.
        if good is not None and now < max(good.end_s, self._last_good_at_s) + resolution_s:
            if self._failures == 1:
                self._warn_once(f"{self._name}: {reason}; keeping the last value while valid")
            return
        if self._current is not self._static:
            self._record(self._static, reason=f"{self._name}: {reason}")
        elif self._failures == 1:
            self._warn_once(f"{self._name}: {reason}; static value in force")

    def _warn_once(self, message: str) -> None:
        """A provider that flaps between answers and failures for days would otherwise add a
        warning per flap to the log and the final report: each one is said once per run."""
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)

    async def _fetch_history(self, session: Any) -> None:
        """Measured values for the run so far; each window recorded once (again if revised)."""
        if self._provider is None:
            return
        try:
            points = await self._provider.history(session, self._run_start_s, self._clock())
        except Exception as exc:
            self._warn_once(f"{self._name} history: {provider_failure(exc).reason}")
            return
        for point in points:
            if point.kind != MEASURED or point.end_s <= self._run_start_s:
                continue
            window = (point.start_s, point.end_s)
            if self._measured.get(window) == point.intensity_g_per_kwh:
                continue
            self._measured[window] = point.intensity_g_per_kwh
            self._emit_point(point, reason=None)

    async def _fetch_forecast(self, session: Any) -> None:
        """The provider's forecast, for predictions; a failure is said once (predictions then
        price the remaining energy at the value in force)."""
        if self._provider is None:
            return
        try:
            self._forecast = list(await self._provider.forecast(session))
        except Exception as exc:
            if not self._forecast_warned:
                self._forecast_warned = True
                self._warn(
                    f"{self._name} forecast: {provider_failure(exc).reason}; predictions price "
                    "the remaining energy at the intensity in force"
                )

    async def _final(self, budget_s: float) -> None:
        """Last chance for measured history, then end the polling task (closing the session)."""
        if self._session is not None and not self._session.closed:
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(self._fetch_history(self._session), budget_s)
        if self._main is not None:
            self._main.cancel()

    def _record(self, point: IntensityPoint, reason: str | None) -> None:
        """A new value in force from now on."""
        self._current = point
        self._emit_point(point, reason)

    def _emit_point(self, point: IntensityPoint, reason: str | None) -> None:
        windowed = math.isfinite(point.start_s) and math.isfinite(point.end_s) and point.start_s > 0
        self._emit(
            records.intensity(
                time_s=self._clock(),
                elapsed_s=time.monotonic() - self._mono_start_s,
                intensity_g_per_kwh=point.intensity_g_per_kwh,
                region=self._region,
                source=point.source,
                signal=point.signal,
                kind=point.kind,
                valid_from_s=point.start_s if windowed else None,
                valid_to_s=point.end_s if windowed else None,
                reason=reason,
            )
        )


def _can_hold_a_loop() -> None:
    """Open and close the descriptors an event loop holds (its epoll and its self-pipe's two
    sockets), raising OSError where they cannot be had: a loop that fails half-made in its
    constructor prints a traceback when it is collected ("Exception ignored in __del__")."""
    import select
    import socket

    poll = select.epoll()
    try:
        first, second = socket.socketpair()
        first.close()
        second.close()
    finally:
        poll.close()
