"""One thread that reads the sensors every interval and keeps the run's energy totals: every
reading to `on_reading` (the budget), a logged sample less often (`emit`)."""

from __future__ import annotations

import time

from carbonwrap.lite import Lock, Thread, dataclass, field
from carbonwrap.measure.attribution import EnergyModel, Reading, interval_energy

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable

    from carbonwrap.measure.gpu_attribution import CounterRejected, GpuCarry, GpuStep, PowerCheck

# Long runs log less often: at most one sample per (time run so far) / this, so a log grows
# with the logarithm of the run's length. With the default 10 s: every 10 s for the first day,
# every 70 s after a week (a week with one GPU: ~9 MB instead of 20; bench/load.py). Samples
# hold totals since the start, so nothing is lost between them; a SIGKILL loses at most that
# last 1/8640 of the run.
SAMPLES_PER_RUN_LENGTH = 8640.0
# Readings kept before they are added into the totals, where nothing asks for the totals at
# every reading (no budget, no GPU): one batch, warm, instead of the arithmetic run cold after
# each wake (a sixth of the thread's CPU at --interval 0.1; bench/overhead.py). Anything that
# asks for the totals adds the waiting readings first, in order: the same sums, bit for bit.
PENDING_READINGS = 16


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
    merged into the next one: counters are cumulative, so nothing is lost. The same holds per
    GPU: a counter that fails to read leaves its intervals waiting (`attribution.GpuCarry`)
    until it reads again. What the GPU counters show is said once per device through `warn`:
    a difference not believed, and a counter that disagrees with the power it is checked
    against (`attribution.power_check_step`).
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
        self._lock = Lock()
        # Held until `halt`: the thread waits on it between readings. A bare lock's timed
        # acquire is one call into C; Event.wait builds a Condition and a waiter lock each time
        # (a sixth of the thread's CPU at --interval 0.1, bench/overhead.py).
        self._running = Lock()
        self._running.acquire()
        self._halted = False
        self._thread: Thread | None = None
        self._warned: set[str] = set()
        self._gpu_carries: dict[int, GpuCarry] = {}  # per GPU: counter intervals waiting
        self._power_checks: dict[int, PowerCheck] = {}  # per GPU: the cross-check's window
        self._gpu_said: set[tuple[int, str]] = set()  # (GPU, what) said once
        self._first = read()
        self._last = self._first
        self._last_emit_s = self._first.mono_s
        self.totals = Totals(mono_s=self._first.mono_s)
        self._pending: list[Reading] | None = None if model.gpu or on_reading else []
        self._newest = self._first  # the latest good reading, added into the totals or not

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
        self._newest = cur
        pending = self._pending
        if pending is not None:
            with self._lock:
                pending.append(cur)
                if len(pending) >= PENDING_READINGS:
                    self._add_pending()
            return True
        with self._lock:
            notes = self._add(cur)
        for note in notes:
            self._warn(note)
        return True

    def _add_pending(self) -> None:
        """The waiting readings into the totals, in order (under the lock; never with GPUs)."""
        if self._pending:
            for cur in self._pending:
                self._add(cur)
            self._pending.clear()

    def _add(self, cur: Reading) -> list[str]:
        """The interval from the previous reading to `cur` into the totals (under the lock);
        what is to be said of the GPUs."""
        notes: list[str] = []
        t = self.totals
        step, in_gpu = None, False
        if self._model.gpu:  # GPU attribution is loaded only where there are GPUs
            from carbonwrap.measure.gpu_attribution import cpu_in_gpu, gpu_step

            step = gpu_step(self._last, cur, self._model, self._gpu_carries)
            # A superchip GPU's figure may hold its CPU and memory: then not counted twice
            in_gpu = cpu_in_gpu(self._model, step.shares)
        for component, share in interval_energy(self._last, cur, self._model).items():
            if in_gpu:
                t.add(component, 0.0, 0.0)
            else:
                t.add(component, share.energy_j, share.device_energy_j)
        if step is not None:
            notes = self._add_gpus(cur, step)
        self.totals.elapsed_s = cur.mono_s - self._first.mono_s
        self.totals.cpu_s = cur.tree_cpu_s - self._first.tree_cpu_s
        self.totals.mono_s = cur.mono_s
        self._last = cur
        return notes

    def _add_gpus(self, cur: Reading, step: GpuStep) -> list[str]:
        """The GPUs' interval into the totals (under the lock); what is to be said of them."""
        t = self.totals
        self._gpu_carries = step.carries
        t.add("gpu", 0.0, 0.0)
        for index, gpu in step.shares.items():
            t.add("gpu", gpu.energy_j, gpu.device_energy_j)
            g = t.gpus.setdefault(index, GpuTotals())
            g.energy_j += gpu.energy_j
            g.device_energy_j += gpu.device_energy_j
            g.methods[gpu.method] = g.methods.get(gpu.method, 0) + 1
        notes = [self._rejected_note(r) for r in step.rejected]
        duration_s = max(0.0, cur.mono_s - self._last.mono_s)
        for index, now in cur.gpu.items():
            before = self._last.gpu.get(index)
            if before is None:
                continue
            from carbonwrap.measure.gpu_attribution import PowerCheck, power_check_step

            check, window = power_check_step(
                self._power_checks.get(index, PowerCheck()), before, now, duration_s
            )
            self._power_checks[index] = check
            if window is not None:
                notes.append(self._once(index, "cross-check", _disagree_note(index, window)))
        return [note for note in notes if note]

    def _rejected_note(self, rejected: CounterRejected) -> str:
        what = "back" if rejected.after_j < rejected.before_j else "jump"
        return self._once(rejected.gpu, what, _rejected_note(rejected))

    def _once(self, index: int, what: str, note: str) -> str:
        """`note` the first time `what` is said of GPU `index`, else ""."""
        if (index, what) in self._gpu_said:
            return ""
        self._gpu_said.add((index, what))
        return note

    def snapshot(self) -> Totals:
        with self._lock:
            self._add_pending()
            return self.totals.copy()

    def peek(self, read_cpu: Callable[[], Reading]) -> Totals:
        """The totals as of a reading of CPU and memory taken now, kept nowhere (a block's
        `summary()` between two of the thread's readings). `read_cpu` reads no GPU: a GPU
        backend's per-process figures are deltas since its last read, which belong to the
        thread's next reading; GPU figures stay as of the thread's latest reading."""
        try:
            cur = read_cpu()
        except Exception:
            return self.snapshot()
        with self._lock:
            self._add_pending()
            t = self.totals.copy()
            last = self._last
            if cur.mono_s <= last.mono_s or self._model.cpu_in_gpus:
                return t  # nothing newer; or a superchip's CPU is in its GPU's figure
            for component, share in interval_energy(last, cur, self._model).items():
                t.add(component, share.energy_j, share.device_energy_j)
            t.elapsed_s = cur.mono_s - self._first.mono_s
            t.cpu_s = cur.tree_cpu_s - self._first.tree_cpu_s
            t.mono_s = cur.mono_s
            return t

    def energy_now(self) -> tuple[float, float]:
        """The latest reading's time (time.monotonic()) and attributed energy so far (J), without
        copying the totals (the predictor asks at every progress report)."""
        with self._lock:
            self._add_pending()
            return self.totals.mono_s, sum(self.totals.energy_j.values())

    def _run(self) -> None:
        while not self._running.acquire(timeout=self._interval_s):
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
        elapsed_s = self._newest.mono_s - self._first.mono_s  # totals.elapsed_s, all added
        every_s = max(self._log_interval_s, elapsed_s / SAMPLES_PER_RUN_LENGTH)
        if now - self._last_emit_s >= every_s - 1e-6:
            self._last_emit_s = now
            self._emit(totals if totals is not None else self.snapshot())

    def start(self) -> None:
        self._thread = Thread(target=self._run, name="carbonwrap-sampler")
        self._thread.start()

    def halt(self) -> None:
        """Stop the thread; no reading is in progress once this returns."""
        if not self._halted:
            self._halted = True
            self._running.release()
        if self._thread is not None:
            self._thread.join()

    def final_totals(self) -> Totals:
        """After `halt` (and after the accounting froze its count): the last reading. GPU
        intervals still waiting for a counter that never read again get their power readings."""
        self.tick()
        notes = []
        with self._lock:
            self._add_pending()
            for index, carry in sorted(self._gpu_carries.items()):
                from carbonwrap.measure.gpu_attribution import gpu_carry_flush

                flushed = gpu_carry_flush(carry)
                if flushed is None:
                    continue
                self.totals.add("gpu", flushed.energy_j, flushed.device_energy_j)
                g = self.totals.gpus.setdefault(index, GpuTotals())
                g.energy_j += flushed.energy_j
                g.device_energy_j += flushed.device_energy_j
                notes.append(_unread_note(index, carry))
            self._gpu_carries = {}
        for note in notes:
            self._warn(note)
        return self.snapshot()


def _rejected_note(rejected: CounterRejected) -> str:
    """A GPU counter difference that was not believed, in words."""
    instead = "power used" if rejected.power_used else "no energy counted"
    before_j, after_j, duration_s = rejected.before_j, rejected.after_j, rejected.duration_s
    if after_j < before_j:
        return (
            f"GPU {rejected.gpu}: energy counter went back from {before_j:.3f} J to "
            f"{after_j:.3f} J: {instead} for that interval"
        )
    jump_j = after_j - before_j
    return (
        f"GPU {rejected.gpu}: energy counter jumped by {jump_j:.6g} J in {duration_s:.1f} s "
        f"({jump_j / max(duration_s, 1e-9):.6g} W): {instead} for that interval"
    )


def _disagree_note(index: int, window: PowerCheck) -> str:
    """The counter and integrated power over one window, when they disagree."""
    gap = 100 * (window.counter_j / window.power_j - 1)
    return (
        f"GPU {index}: energy counter gave {window.counter_j:.1f} J over {window.span_s:.0f} s "
        f"where integrated power gave {window.power_j:.1f} J ({gap:+.1f} %): the counter is "
        "used; power sampled every interval misses what happens between samples, a counter "
        "off by this much may be broken"
    )


def _unread_note(index: int, carry: GpuCarry) -> str:
    """The intervals at the end of a run whose counter never read again."""
    if carry.power_s >= carry.span_s:
        instead = "counted from the power readings"
    elif carry.power_s > 0:
        instead = f"counted from the power readings where there were any ({carry.power_s:.0f} s)"
    else:
        instead = "not counted (no power readings either)"
    return (
        f"GPU {index}: its energy counter did not read again after failing; the last "
        f"{carry.span_s:.0f} s are {instead}"
    )
