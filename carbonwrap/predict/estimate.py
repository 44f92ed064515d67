"""Predict a run's totals from its progress reports: pure arithmetic on plain numbers.

The estimator (README "Progress and prediction"):

- Only the reports since `done` last went down are used (a restart from a checkpoint, or a new
  phase counting from 0); of a run of reports with the same `done`, the first (when it was
  reached). The time before the first report used (the command's start-up) never counts.
- Warm-up: when the first report used says nothing is done yet (`done` 0: a "starting" report),
  the interval to the next report holds the first unit of work, usually slower (compilation,
  caches, autotuning); it is left out once at least two more intervals follow it.
- The rate is the mean over the rest, from the first report used (w) to the last (k):
  s/unit = (t_k − t_w) / (d_k − d_w), J/unit = (E_k − E_w) / (d_k − d_w), with E the
  attributed energy (before PUE) counted by the time of each report.
- With the latest `total` T: remaining = max(0, T − d_k) units; predicted duration
  t_k + remaining × s/unit, energy E_k + remaining × J/unit. No total (or a total ≤ 0): no
  prediction. A fraction is the same with T = 1.
- Margin (about 95 %, from 3 intervals on): per-unit times and energies are taken as
  independent with a common spread σ, estimated from the intervals as
  σ² = Σ (Δx_i − m·Δd_i)² / Δd_i / (n − 1) with m the rate; the remaining R units then
  differ from R·m by t·σ·√(R·(1 + R/U)), U the units measured (noise of the units still to
  come, and of the rate itself), t Student's 95 % quantile for n − 1 degrees of freedom (4.3
  for 3 intervals, 2.0 for 30). It says nothing about trends (a run that slows down).
- CO2e: the CO2e so far + remaining energy × PUE × the mean intensity over the predicted
  remaining window: the provider's forecast where it covers the window, the current value for
  the rest (`mean_intensity`).
- Every number of a prediction is finite and at most LARGEST, or there is no prediction:
  reports the protocol allows can still be beyond any float's arithmetic (a total of 1e308
  steps, 1e-300 of a step done), and a prediction of Infinity is no JSON (the log refuses
  it) and no prediction anyone can use.
"""

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

MIN_MARGIN_INTERVALS = 3  # fewer intervals give no spread worth stating
# The largest number a prediction holds (s, J): beyond any run, and the fold
# (runlog/summary.py) takes larger values in a log for damage.
LARGEST = 1e30


class Point(NamedTuple):
    """One progress report and the energy counted by then. Units: s since the start, J."""

    elapsed_s: float
    done: float
    total: float | None
    energy_j: float  # cumulative attributed energy (before PUE) at elapsed_s


class Estimate(NamedTuple):
    """A prediction of the whole run's totals. Units: seconds, joules (before PUE)."""

    duration_s: float  # predicted elapsed time at completion
    energy_j: float  # predicted total attributed energy
    elapsed_s: float  # of the last report used
    energy_now_j: float  # counted by the last report
    remaining_s: float
    remaining_j: float
    done: float
    total: float
    units: float  # the work the rate was measured over
    intervals: int  # how many report intervals that was
    warmup_units: float  # left out as warm-up (0: none)
    duration_margin_s: float | None  # ± about 95 %; None below MIN_MARGIN_INTERVALS
    energy_margin_j: float | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


def _finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def sane(*values: float | None) -> bool:
    """Each value None, or a finite number of at most LARGEST either way."""
    return all(v is None or (_finite(v) and -LARGEST <= v <= LARGEST) for v in values)


def usable(points: Iterable[Point]) -> list[Point]:
    """The reports the rate is measured from: those since `done` last went down, the first of
    each run of equal `done`, with sane numbers, in time order (see the module's text)."""
    kept: list[Point] = []
    for p in points:
        if not _finite(p.elapsed_s, p.done, p.energy_j) or p.done < 0:
            continue
        if kept and p.elapsed_s < kept[-1].elapsed_s:
            continue  # time went back: not a report of this run's clock
        if kept and p.done < kept[-1].done:
            kept = []  # restarted, or a new phase: measure it afresh
        if kept and p.done == kept[-1].done:
            continue  # reached earlier
        kept.append(p)
    return kept


def estimate(points: Sequence[Point]) -> Estimate | None:
    """The prediction after `points` (in report order); None without a total or without two
    usable reports with work done between them."""
    if not points:
        return None
    total = points[-1].total
    if total is None or not _finite(total) or total <= 0:
        return None
    used = usable(points)
    warmup_units = 0.0
    if len(used) >= 4 and used[0].done == 0:
        warmup_units = used[1].done - used[0].done
        used = used[1:]
    if len(used) < 2:
        return None
    first, last = used[0], used[-1]
    units = last.done - first.done
    if units <= 0:
        return None
    s_per_unit = (last.elapsed_s - first.elapsed_s) / units
    j_per_unit = max(0.0, last.energy_j - first.energy_j) / units
    remaining = max(0.0, total - last.done)
    remaining_s = remaining * s_per_unit
    remaining_j = remaining * j_per_unit
    time_margin = energy_margin = None
    if len(used) - 1 >= MIN_MARGIN_INTERVALS:
        time_margin = _margin(used, remaining, units, s_per_unit, lambda p: p.elapsed_s)
        energy_margin = _margin(used, remaining, units, j_per_unit, lambda p: p.energy_j)
    e = Estimate(
        duration_s=last.elapsed_s + remaining_s,
        energy_j=last.energy_j + remaining_j,
        elapsed_s=last.elapsed_s,
        energy_now_j=last.energy_j,
        remaining_s=remaining_s,
        remaining_j=remaining_j,
        done=last.done,
        total=total,
        units=units,
        intervals=len(used) - 1,
        warmup_units=warmup_units,
        duration_margin_s=time_margin,
        energy_margin_j=energy_margin,
    )
    # Inputs of any size (the reports' numbers, the energy counted) give sane outputs or none:
    # an overflow (Infinity, or Infinity − Infinity = NaN) anywhere shows here.
    outputs = (e.duration_s, e.energy_j, e.elapsed_s, e.energy_now_j, e.remaining_s)
    if not sane(*outputs, e.remaining_j, e.duration_margin_s, e.energy_margin_j):
        return None
    return e


def _margin(
    used: list[Point], remaining: float, units: float, rate: float, x: Callable[[Point], float]
) -> float:
    """About 95 % half-width of what the remaining units add (see the module's text)."""
    squares = 0.0
    for before, after in itertools.pairwise(used):
        dd = after.done - before.done
        off = x(after) - x(before) - rate * dd
        squares += off * off / dd  # not ** 2: that raises OverflowError where * gives inf
    df = len(used) - 2
    sigma = math.sqrt(squares / df)
    return _t95(df) * sigma * math.sqrt(remaining * (1.0 + remaining / units))


# Student's t, two-sided 95 %, by degrees of freedom: σ is estimated from few intervals.
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
_T95_STEPS = ((10, 2.23), (15, 2.13), (20, 2.09), (30, 2.04))


def _t95(df: int) -> float:
    if df in _T95:
        return _T95[df]
    factor = 1.96
    for at_least, value in _T95_STEPS:
        if df >= at_least:
            factor = value
    return factor


def mean_intensity(
    forecast: Iterable[tuple[float, float, float]],
    start_s: float,
    end_s: float,
    current_g_per_kwh: float,
) -> tuple[float, float]:
    """Time-weighted mean intensity over [start_s, end_s) (epoch s) and the fraction of the
    window the forecast covers. `forecast`: (start_s, end_s, g/kWh) windows, any order; where
    two overlap, the one starting first counts; the current value fills what none covers. An
    empty window (nothing left to do) takes the forecast for its start, else the current value."""
    windows = sorted((a, b, v) for a, b, v in forecast if _finite(a, b, v) and b > a and v >= 0)
    if end_s <= start_s:
        for a, b, v in windows:
            if a <= start_s < b:
                return v, 1.0
        return current_g_per_kwh, 0.0
    # Shares of the window, not seconds × g/kWh: a window of 1e30 s and a value of 1e300
    # (a provider's damage) must not overflow into inf / inf = NaN.
    mean = covered = 0.0
    cursor = start_s
    span = end_s - start_s
    for a, b, v in windows:
        lo, hi = max(a, cursor), min(b, end_s)
        if hi > lo:
            share = (hi - lo) / span
            mean += share * v
            covered += share
            cursor = hi
        if cursor >= end_s:
            break
    covered = min(1.0, covered)
    return mean + (1.0 - covered) * current_g_per_kwh, covered


def basis(e: Estimate, unit: str) -> str:
    """What the prediction rests on, in words: "from 4 epochs after a 1-epoch warm-up"."""
    if unit == "fraction":
        text = f"from {_pct(e.units)} of the work"
        if e.warmup_units:
            text += f" after a warm-up of {_pct(e.warmup_units)}"
        return text
    name = unit or "unit"
    text = f"from {_count(e.units, name)}"
    if e.warmup_units:
        text += f" after a {e.warmup_units:g}-{name} warm-up"
    return text


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.3g} %"


def _count(n: float, name: str) -> str:
    return f"{n:g} {name}" + ("" if n == 1 else "s")


def energy_at(series: Sequence[tuple[float, float]], elapsed_s: float) -> float:
    """Cumulative energy at `elapsed_s` from (elapsed_s, energy_j) readings in time order:
    linear between the readings around it, 0 at the start before the first. After the last
    reading (which may be up to one sampling interval old), the power between the last two
    carries on for at most the time between them; without two readings, the last value."""
    if not series:
        return 0.0
    if elapsed_s >= series[-1][0]:
        t1, e1 = series[-1]
        if len(series) < 2 or series[-2][0] >= t1:
            return e1
        t0, e0 = series[-2]
        ahead_s = min(elapsed_s - t1, t1 - t0)
        return e1 + max(0.0, e1 - e0) / (t1 - t0) * ahead_s
    lo, hi = 0, len(series)  # the first reading after elapsed_s
    while lo < hi:
        mid = (lo + hi) // 2
        if series[mid][0] <= elapsed_s:
            lo = mid + 1
        else:
            hi = mid
    t1, e1 = series[lo]
    t0, e0 = series[lo - 1] if lo > 0 else (0.0, 0.0)
    if t1 <= t0:
        return e1
    return e0 + (e1 - e0) * (max(elapsed_s, t0) - t0) / (t1 - t0)
