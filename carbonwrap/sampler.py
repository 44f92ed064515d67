"""One thread that reads the sensors every interval and keeps the run's energy totals."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from carbonwrap.attribution import EnergyModel, Reading, interval_energy


@dataclass
class Totals:
    """Cumulative energy since the start, per component. Units: joules, seconds."""

    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    energy_j: dict[str, float] = field(default_factory=dict)
    device_energy_j: dict[str, float] = field(default_factory=dict)

    def copy(self) -> Totals:
        return Totals(self.elapsed_s, self.cpu_s, dict(self.energy_j), dict(self.device_energy_j))


class Sampler:
    """Reads every `interval_s`; hands a copy of the totals to `emit` every `log_interval_s`.

    A failed read is reported once per distinct message through `warn` and the interval is
    merged into the next one: counters are cumulative, so nothing is lost.
    """

    def __init__(
        self,
        read: Callable[[], Reading],
        model: EnergyModel,
        interval_s: float,
        log_interval_s: float,
        emit: Callable[[Totals], None],
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._model = model
        self._interval_s = interval_s
        self._log_interval_s = log_interval_s
        self._emit = emit
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._first = read()
        self._last = self._first
        self._last_emit_s = self._first.mono_s
        self.totals = Totals()

    def tick(self) -> None:
        """Take one reading and add the interval since the previous one."""
        try:
            cur = self._read()
        except (OSError, ValueError) as exc:
            message = f"sensor read failed, interval merged into the next: {exc}"
            if message not in self._warned:
                self._warned.add(message)
                self._warn(message)
            return
        with self._lock:
            for component, share in interval_energy(self._last, cur, self._model).items():
                t = self.totals
                t.energy_j[component] = t.energy_j.get(component, 0.0) + share.energy_j
                t.device_energy_j[component] = (
                    t.device_energy_j.get(component, 0.0) + share.device_energy_j
                )
            self.totals.elapsed_s = cur.mono_s - self._first.mono_s
            self.totals.cpu_s = cur.tree_cpu_s - self._first.tree_cpu_s
            self._last = cur

    def snapshot(self) -> Totals:
        with self._lock:
            return self.totals.copy()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.tick()
            now = self._clock()
            if now - self._last_emit_s >= self._log_interval_s - 1e-6:
                self._last_emit_s = now
                self._emit(self.snapshot())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="carbonwrap-sampler", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Stop the thread; no reading is in progress once this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def final_totals(self) -> Totals:
        """After `halt` (and after the accounting froze its count): the last reading."""
        self.tick()
        return self.snapshot()
