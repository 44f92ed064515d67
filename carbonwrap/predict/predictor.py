"""The run's predictions: at every progress report (`report`: each one the command sends, not
only those the log keeps), the estimate (`estimate.py`) priced with the intensity forecast,
made at most once a second and handed to listeners (the budget, the live line), logged as a
`prediction` record at most once per log interval (but always the first, those crossing
25/50/75 % of the work and the last). Created at the first report. It follows the unit of the
first report with a total (epochs, say): reports in other units (an evaluation's batches, steps
without a total) are not mixed in."""

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from carbonwrap.predict.estimate import (
    Point,
    basis,
    energy_at,
    estimate,
    mean_intensity,
    sane,
    usable,
)
from carbonwrap.runlog import records
from carbonwrap.runlog.ledger import SoFar, co2e_g

MAX_POINTS = 4096  # more reports than this: thinned (every other one, the first two kept)
COMPUTE_EVERY_S = 1.0  # reports come as fast as a training loop likes: estimate at most this often
MILESTONES = (0.25, 0.5, 0.75)
READINGS_KEPT = 16  # (elapsed, energy) readings around the latest reports

Record = dict[str, Any]
Listener = Callable[[Record], None]


class Predictor:
    """Thread-safe: reports arrive from the progress channel's and the relay's threads. Never
    raises into them: a failure is warned about once and predictions stop."""

    def __init__(
        self,
        record: Callable[[Record], None],
        reading: Callable[[], tuple[float, float]],
        so_far: Callable[[], SoFar],
        pue: float,
        started_wall_s: float,
        log_interval_s: float,
        elapsed_s: Callable[[], float],
        forecast: Callable[[], Sequence[tuple[float, float, float]]] | None = None,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`reading`: the sampler's latest (elapsed s, attributed energy J), on the reports'
        clock (`elapsed_s`); `so_far`: the fold's energy, CO2e and intensity in force
        (`Fold.so_far`, read under its lock); `forecast`: the provider's forecast windows
        (start s, end s, g/kWh), epoch seconds."""
        self._record = record
        self._reading = reading
        self._so_far = so_far
        self._pue = pue
        self._started_wall_s = started_wall_s
        self._log_interval_s = log_interval_s
        self._elapsed_s = elapsed_s
        self._forecast = forecast
        self._warn = warn
        self._clock = clock
        self._wall = wall
        self.listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._points: list[Point] = []
        self._unit: str | None = None  # the unit followed: the first reported with a total
        self._last: tuple[float, float | None, str, str] | None = None  # followed: its source
        self._readings: list[tuple[float, float]] = []
        self._computed_at: float | None = None
        self._dirty = False  # reports since the last estimate
        self._pending: Record | None = None  # computed, not logged yet
        self._logged_at: float | None = None
        self._logged_fraction = 0.0
        self._failed = False

    def report(
        self, done: float, total: float | None, unit: str, source: str, elapsed_s: float
    ) -> None:
        """A progress report as it comes (every one, logged or not); `elapsed_s`: when it came,
        on the run's clock; `source`: "channel" or "output"."""
        if self._failed:
            return
        try:
            if self._add(_number(done), _number(total), unit, source, _number(elapsed_s)):
                self._publish(*self._step(force=False))
        except Exception as exc:  # a bug here must not end the channel's or the relay's thread
            self._fail(exc)

    def observe(self, record: Record) -> None:
        """A log's records, in order (a replay, the tests): samples give readings, progress
        records reports. A run hands its reports to `report` instead."""
        kind = record.get("type")
        if kind not in ("sample", "progress") or self._failed:
            return
        try:
            if kind == "sample":
                self._sample(record)
            elif self._progress(record):
                self._publish(*self._step(force=False))
        except Exception as exc:  # a bug here must not end the sampler's or the channel's thread
            self._fail(exc)

    def exit_report(self) -> tuple[float, float, str] | None:
        """The report a clean exit of the command completes, or None. An `Epoch M/M` line in
        the command's output reads as M-1 of M epochs done (epoch M starting: outputscan.py);
        when the command then exits cleanly, epoch M has ended too: (M, M, "epoch")."""
        with self._lock:
            last = self._last
        if last is None:
            return None
        done, total, unit, source = last
        if source == "output" and unit == "epoch" and total is not None and done == total - 1:
            whole = int(total) if total.is_integer() else total  # as the scanner reports it
            return whole, whole, unit
        return None

    def flush(self) -> None:
        """Before the end record: estimate from every report so far, their energies from the
        readings around them (the last one taken after the command ended), log it if not yet
        logged."""
        if self._failed:
            return
        try:
            reading = self._reading()
            with self._lock:
                if self._points:
                    self._add_reading(*reading)
            self._publish(*self._step(force=True))
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._failed = True
        if self._warn is not None:
            self._warn(f"predictions stopped: {exc!r}")

    def _sample(self, r: Record) -> None:
        energy, elapsed = r.get("energy_j"), r.get("elapsed_s")
        if isinstance(energy, dict) and isinstance(elapsed, (int, float)):
            with self._lock:
                self._add_reading(float(elapsed), float(sum(energy.values())))

    def _add_reading(self, elapsed_s: float, energy_j: float) -> None:
        """A new reading of the sampler (under the lock). The reports since the one before it
        were counted ahead of it (`energy_at`: the power before carried on); now they lie
        between two readings and take their energy from them, so that reports many times an
        interval do not show the readings' steps as noise."""
        if self._readings and elapsed_s <= self._readings[-1][0]:
            return
        self._readings.append((elapsed_s, energy_j))
        del self._readings[:-READINGS_KEPT]
        if len(self._readings) < 2:
            return
        since_s = self._readings[-2][0]
        points = self._points
        i = len(points) - 1
        while i >= 0 and points[i].elapsed_s > since_s:
            point = points[i]
            points[i] = point._replace(energy_j=energy_at(self._readings, point.elapsed_s))
            self._dirty = True
            i -= 1

    def _progress(self, r: Record) -> bool:
        """Add a progress record's report; True when it is a usable one."""
        unit = r.get("unit")
        source = r.get("source")
        return self._add(
            _number(r.get("done")),
            _number(r.get("total")),
            unit if isinstance(unit, str) else "",
            source if isinstance(source, str) else "",
            _number(r.get("elapsed_s")),
        )

    def _add(
        self,
        done: float | None,
        total: float | None,
        unit: str,
        source: str,
        elapsed: float | None,
    ) -> bool:
        """Add the report; True when it is a usable one."""
        if done is None or elapsed is None:
            return False
        if total is None and unit == "fraction":
            total = 1.0
        reading = self._reading()
        with self._lock:
            if self._unit is None and total is not None:
                self._unit = unit
            if unit != self._unit:
                return False  # another stream (an evaluation's batches): not mixed in
            self._last = (done, total, unit, source)
            self._add_reading(*reading)
            point = Point(elapsed, done, total, energy_at(self._readings, elapsed))
            self._points.append(point)
            if len(self._points) > MAX_POINTS:
                self._points = _thinned(self._points)
            self._dirty = True
        return True

    def _step(self, force: bool) -> tuple[Record | None, bool]:
        """Estimate if due (or `force`d); the record to publish and whether to log it."""
        with self._lock:
            now = self._clock()
            due = self._computed_at is None or now - self._computed_at >= COMPUTE_EVERY_S
            # Before the sampler's first interval is read, no report's energy is known.
            if self._dirty and (due or force) and len(self._readings) >= 2:
                self._dirty = False
                self._pending = self._predict(list(self._points), self._unit or "")
                # Too few reports yet: try again at the next one, not a second later.
                self._computed_at = now if self._pending is not None else None
                computed = True
            else:
                computed = False
            pending = self._pending
            if pending is None:
                return None, False
            fraction = pending.get("fraction") or 0.0
            log = (
                force
                or self._logged_at is None
                or now - self._logged_at >= self._log_interval_s
                or any(self._logged_fraction < m <= fraction for m in MILESTONES)
            )
            if log:
                self._pending = None
                self._logged_at = now
                self._logged_fraction = fraction
            return (pending if computed or log else None), log

    def _publish(self, prediction: Record | None, log: bool) -> None:
        if prediction is None:
            return
        if log:
            self._record(prediction)
        for listener in self.listeners:
            listener(prediction)

    def _predict(self, points: list[Point], unit: str) -> Record | None:
        e = estimate(points)
        if e is None:
            return None
        so_far = self._so_far()
        current_g = so_far.intensity[0] if so_far.intensity is not None else 0.0
        co2e_now_g = so_far.co2e_at_g(e.energy_now_j)
        start_s = self._started_wall_s + e.elapsed_s
        windows = self._forecast() if self._forecast is not None else ()
        intensity, covered = mean_intensity(windows, start_s, start_s + e.remaining_s, current_g)
        if covered >= 0.999:
            intensity_basis = "forecast"
        else:
            intensity_basis = "forecast+current" if covered > 0 else "current"
        margin = e.energy_margin_j
        prediction = records.prediction(
            time_s=self._wall(),
            elapsed_s=self._elapsed_s(),
            done=e.done,
            total=e.total,
            unit=unit,
            duration_s=e.duration_s,
            energy_j=e.energy_j,
            co2e_g=co2e_now_g + co2e_g(e.remaining_j, self._pue, intensity),
            duration_margin_s=e.duration_margin_s,
            energy_margin_j=margin,
            co2e_margin_g=None if margin is None else co2e_g(margin, self._pue, intensity),
            intensity_g_per_kwh=intensity,
            intensity_basis=intensity_basis,
            basis=basis(e, unit),
            report_elapsed_s=e.elapsed_s,
            intervals=e.intervals,
        )
        # The estimate is sane; an intensity no float can price it at (a provider's damage)
        # would still make Infinity, which the log refuses: no prediction then.
        if not all(sane(v) for v in prediction.values() if isinstance(v, float)):
            return None
        return prediction


def _number(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (bool included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond any float
        return None
    return number if math.isfinite(number) else None


def _thinned(points: list[Point]) -> list[Point]:
    """Half the reports the estimate uses (the first two kept: the warm-up rule reads them),
    and the latest report (its total is the one in force)."""
    kept = usable(points)
    if len(kept) > 4:
        kept = [*kept[:2], *kept[2:-1:2], kept[-1]]
    if kept[-1:] != points[-1:]:
        kept.append(points[-1])
    return kept
