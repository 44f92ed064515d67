"""One thread that reads the sensors every interval and keeps the run's energy totals: every
reading to `on_reading` (the budget), a logged sample less often (`emit`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from carbonwrap.measure.attribution import EnergyModel, Reading, gpu_interval, interval_energy

# Long runs log less often: at most one sample per (time run so far) / this, so a log grows
# with the logarithm of the run's length. With the default 10 s: every 10 s for the first day,
# every 70 s after a week (a week with one GPU: ~9 MB instead of 20; bench/load.py). Samples
# hold totals since the start, so nothing is lost between them; a SIGKILL loses at most that
# last 1/8640 of the run.
SAMPLES_PER_RUN_LENGTH = 8640.0


@dataclass
class GpuTotals:
    """One GPU since the start: joules, and how many intervals each attribution method served."""

    energy_j: float = 0.0
    device_energy_j: float = 0.0
    methods: dict[str, int] = field(default_factory=dict)

    def copy(self) -> GpuTotals:
        return GpuTotals(self.energy_j, self.device_energy_j, dict(self.methods))


@dataclass
class Totals:
    """Cumulative energy since the start, per component (and per GPU). Units: joules, seconds."""

    elapsed_s: float = 0.0
    cpu_s: float = 0.0
    energy_j: dict[str, float] = field(default_factory=dict)
    device_energy_j: dict[str, float] = field(default_factory=dict)
    gpus: dict[int, GpuTotals] = field(default_factory=dict)
    # When the latest reading was taken (time.monotonic(); 0: unknown): the live view's clock
    # ticks on from it between readings.
    mono_s: float = 0.0

    def copy(self) -> Totals:
        return Totals(
            self.elapsed_s,
            self.cpu_s,
            dict(self.energy_j),
            dict(self.device_energy_j),
            {index: gpu.copy() for index, gpu in self.gpus.items()},
            self.mono_s,
        )

    def add(self, component: str, energy_j: float, device_energy_j: float) -> None:
        self.energy_j[component] = self.energy_j.get(component, 0.0) + energy_j
        self.device_energy_j[component] = self.device_energy_j.get(component, 0.0) + device_energy_j


class Sampler:
    """Reads every `interval_s`, hands a copy of the totals to `on_reading` after every reading
    and to `emit` every `log_interval_s` (the logged sample).

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
        on_reading: Callable[[Totals], None] | None = None,
    ) -> None:
        """`on_reading` runs on the sampler's thread after each reading (the budget's check of
        the actual total): it must be quick and must not raise."""
        self._read = read
        self._model = model
        self._interval_s = interval_s
        self._log_interval_s = log_interval_s
        self._emit = emit
        self._on_reading = on_reading
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self._first = read()
        self._last = self._first
        self._last_emit_s = self._first.mono_s
        self.totals = Totals(mono_s=self._first.mono_s)

    def tick(self) -> bool:
        """Take one reading and add the interval since the previous one; False if it failed."""
        try:
            cur = self._read()
        except Exception as exc:
            message = f"sensor read failed, interval merged into the next: {exc}"
            if message not in self._warned:
                self._warned.add(message)
                self._warn(message)
            return False
        with self._lock:
            t = self.totals
            for component, share in interval_energy(self._last, cur, self._model).items():
                t.add(component, share.energy_j, share.device_energy_j)
            if self._model.gpu:
                t.add("gpu", 0.0, 0.0)
                for index, gpu in gpu_interval(self._last, cur, self._model).items():
                    t.add("gpu", gpu.energy_j, gpu.device_energy_j)
                    g = t.gpus.setdefault(index, GpuTotals())
                    g.energy_j += gpu.energy_j
                    g.device_energy_j += gpu.device_energy_j
                    g.methods[gpu.method] = g.methods.get(gpu.method, 0) + 1
            self.totals.elapsed_s = cur.mono_s - self._first.mono_s
            self.totals.cpu_s = cur.tree_cpu_s - self._first.tree_cpu_s
            self.totals.mono_s = cur.mono_s
            self._last = cur
        return True

    def snapshot(self) -> Totals:
        with self._lock:
            return self.totals.copy()

    def energy_now(self) -> tuple[float, float]:
        """The latest reading's time (time.monotonic()) and attributed energy so far (J), without
        copying the totals (the predictor asks at every progress report)."""
        with self._lock:
            return self.totals.mono_s, sum(self.totals.energy_j.values())

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.step()

    def step(self) -> None:
        """One interval of the thread: a reading, its totals to `on_reading`, and to `emit` when
        a logged sample is due (the week-long simulation in bench/load.py drives this with a
        fake clock)."""
        read = self.tick()
        totals = None
        if read and self._on_reading is not None:
            totals = self.snapshot()
            self._on_reading(totals)
        now = self._clock()
        every_s = max(self._log_interval_s, self.totals.elapsed_s / SAMPLES_PER_RUN_LENGTH)
        if now - self._last_emit_s >= every_s - 1e-6:
            self._last_emit_s = now
            self._emit(totals if totals is not None else self.snapshot())

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
