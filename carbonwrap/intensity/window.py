"""The greenest start: when, within a horizon, a run of a given length meets the lowest mean
forecast intensity. Pure: points and times in, a `Window` out (the carbon-aware start, #7).

How a forecast is read, as the run's own log is priced (a value is in force until the next):
- each point holds until the next one starts, so a gap between points keeps the value before
  it; where points overlap, the earlier start wins;
- before the first point (a forecast that begins at the next hour) the first value holds from
  `now_s`: callers that have the current value put it in front (`schedule.py` does);
- nothing is assumed after the last point: a window must end by the forecast's end, so a
  forecast shorter than the horizon cuts the latest start considered (`Window.cut`), and one
  that does not reach `now_s + duration_s` gives no window at all (None).
"""

import bisect
import math
from collections.abc import Sequence
from typing import NamedTuple

from carbonwrap.intensity.points import IntensityPoint

# Two windows whose means differ by less than this are equal: the earlier start wins.
TIE_G_PER_KWH = 1e-6


class Window(NamedTuple):
    """The chosen start and what the forecast says of it. Units: epoch s (UTC), gCO2e/kWh."""

    start_s: float
    mean_g_per_kwh: float  # time-weighted mean over [start_s, start_s + duration_s)
    now_g_per_kwh: float  # the same for a start at now_s
    latest_start_s: float  # the latest start considered
    cut: bool  # the forecast ends before now_s + within_s + duration_s: later starts unknown
    forecast_end_s: float  # end of the last forecast point

    @property
    def saving_pct(self) -> float | None:
        """How much lower the chosen window's mean is than a start now, in %; None if now is 0."""
        if self.now_g_per_kwh <= 0:
            return None
        return 100.0 * (self.now_g_per_kwh - self.mean_g_per_kwh) / self.now_g_per_kwh


class Steps(NamedTuple):
    """A step function: value `values[i]` on [bounds[i], bounds[i+1]); `area[i]` is its integral
    from bounds[0] to bounds[i] (g/kWh·s), for the mean of any interval in O(log n)."""

    bounds: list[float]
    values: list[float]
    area: list[float]

    def integral(self, t_s: float) -> float:
        """∫ from bounds[0] to t_s; t_s must lie within [bounds[0], bounds[-1]]."""
        i = min(bisect.bisect_right(self.bounds, t_s) - 1, len(self.values) - 1)
        return self.area[i] + (t_s - self.bounds[i]) * self.values[i]

    def mean(self, start_s: float, end_s: float) -> float:
        return (self.integral(end_s) - self.integral(start_s)) / (end_s - start_s)


def steps(points: Sequence[IntensityPoint], now_s: float) -> Steps | None:
    """The forecast as a step function from min(now_s, first start) to the last end, as the
    module docstring says; None without a usable point."""
    usable = sorted(
        (p for p in points if math.isfinite(p.start_s) and math.isfinite(p.end_s)),
        key=lambda p: (p.start_s, p.end_s),
    )
    usable = [p for p in usable if p.end_s > p.start_s and math.isfinite(p.intensity_g_per_kwh)]
    if not usable:
        return None
    bounds: list[float] = [min(now_s, usable[0].start_s)]
    values: list[float] = []
    for point in usable:
        if point.end_s <= bounds[-1]:
            continue  # wholly inside an earlier point: the earlier start wins
        if values and point.start_s > bounds[-1]:
            bounds.append(point.start_s)  # a gap: the value before it holds across
            values.append(values[-1])
        values.append(point.intensity_g_per_kwh)
        bounds.append(point.end_s)
    area = [0.0]
    for i, value in enumerate(values):
        area.append(area[-1] + (bounds[i + 1] - bounds[i]) * value)
    return Steps(bounds, values, area)


def best_window(
    points: Sequence[IntensityPoint], now_s: float, within_s: float, duration_s: float
) -> Window | None:
    """The start t in [now_s, now_s + within_s] whose window [t, t + duration_s) has the lowest
    time-weighted mean intensity; the earliest of equal ones. None when the forecast does not
    cover one whole window from now (or has no points).

    The mean is piecewise linear in t, bending only where t or t + duration_s crosses a step, so
    its minimum is at one of: now, the latest start, a step boundary, or a boundary minus the
    duration. Only those are evaluated: exact, and O(n log n) for n points.
    """
    if duration_s <= 0 or within_s < 0:
        raise ValueError("duration must be positive and the horizon not negative")
    fn = steps(points, now_s)
    if fn is None:
        return None
    forecast_end_s = fn.bounds[-1]
    latest_s = min(now_s + within_s, forecast_end_s - duration_s)
    if latest_s < now_s:
        return None
    candidates = {now_s, latest_s}
    for bound in fn.bounds:
        for t in (bound, bound - duration_s):
            if now_s < t < latest_s:
                candidates.add(t)
    now_mean = fn.mean(now_s, now_s + duration_s)
    best_s, best_mean = now_s, now_mean
    for t in sorted(candidates):
        mean = fn.mean(t, t + duration_s)
        if mean < best_mean - TIE_G_PER_KWH:
            best_s, best_mean = t, mean
    return Window(
        start_s=best_s,
        mean_g_per_kwh=best_mean,
        now_g_per_kwh=now_mean,
        latest_start_s=latest_s,
        cut=latest_s < now_s + within_s,
        forecast_end_s=forecast_end_s,
    )
