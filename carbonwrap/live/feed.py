"""The live view's state, from the running measurement: power over the latest readings, energy
and CO2e so far (the fold's CO2e of logged samples, plus newer energy at the intensity in
force), the clock, and the newest prediction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from carbonwrap.measure.sampler import Totals
from carbonwrap.render.live import LiveState
from carbonwrap.runlog.summary import Fold

_LABELS = {"cpu": "CPU", "dram": "DRAM"}


class LiveFeed:
    """Callable: each call returns the state now. Runs on the live view's thread.

    The view refreshes once a second, the sampler reads every --interval: a refresh may find
    no new reading (the power then holds at its last value, never "0 W"), or several (the
    power is their mean). The clock ticks on between readings (`clock`, monotonic, from the
    latest reading's time)."""

    def __init__(
        self,
        snapshot: Callable[[], Totals],
        fold_locked: Callable[[Callable[[Fold], Any]], Any],
        components: Mapping[str, Mapping[str, Any]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._snapshot = snapshot
        self._fold_locked = fold_locked
        self._methods = {name: str(info.get("method", "")) for name, info in components.items()}
        self._clock = clock
        self._previous: Totals | None = None  # the reading the powers were last taken from
        self._power_w: dict[str, float | None] = {}  # by row label, over the latest readings
        self._elapsed_s = 0.0

    def __call__(self) -> LiveState:
        totals = self._snapshot()
        so_far = self._fold_locked(Fold.so_far)
        self._take_powers(totals)
        elapsed_s = self._elapsed(totals)
        rows: list[tuple[str, float | None, float | None, str]] = []
        for name in ("cpu", "dram"):
            if name in totals.energy_j:
                label = _LABELS[name]
                energy = totals.energy_j[name]
                rows.append((label, self._power_w.get(label), energy, self._methods.get(name, "")))
        for index, gpu in sorted(totals.gpus.items()):
            label = f"GPU {index}"
            method = max(gpu.methods, key=lambda m: gpu.methods[m]) if gpu.methods else ""
            rows.append((label, self._power_w.get(label), gpu.energy_j, method))
        if not totals.gpus and self._methods.get("gpu", "").startswith("unavailable"):
            rows.append(("GPU", None, None, self._methods["gpu"]))
        current = so_far.intensity
        value, source = (current[0], current[1]) if current else (None, "")
        co2e_now_g = so_far.co2e_at_g(sum(totals.energy_j.values()))
        prediction = self._fold_locked(lambda fold: _prediction(fold, elapsed_s))
        return LiveState(elapsed_s, totals.cpu_s, rows, value, source, co2e_now_g, prediction)

    def _take_powers(self, totals: Totals) -> None:
        """The mean power of each row since the reading of the last refresh that had a new
        one; the last value where no reading is new (`_previous` unchanged)."""
        previous = self._previous
        if previous is not None and totals.elapsed_s == previous.elapsed_s:
            return  # no reading since: the last power holds
        span_s = totals.elapsed_s - previous.elapsed_s if previous else totals.elapsed_s
        if span_s <= 0:
            return  # not one interval read yet: no power to show
        self._previous = totals

        def power_w(now_j: float, before_j: float) -> float:
            return max(0.0, now_j - before_j) / span_s

        for name in ("cpu", "dram"):
            if name in totals.energy_j:
                before = previous.energy_j.get(name, 0.0) if previous else 0.0
                self._power_w[_LABELS[name]] = power_w(totals.energy_j[name], before)
        for index, gpu in totals.gpus.items():
            before_gpu = previous.gpus.get(index) if previous else None
            before_j = before_gpu.energy_j if before_gpu else 0.0
            self._power_w[f"GPU {index}"] = power_w(gpu.energy_j, before_j)

    def _elapsed(self, totals: Totals) -> float:
        """Seconds since the first reading, on the monotonic clock (it ticks between
        readings); the reading's own where its time is unknown; never going back."""
        elapsed_s = totals.elapsed_s
        if totals.mono_s > 0:
            elapsed_s = max(elapsed_s, totals.elapsed_s + self._clock() - totals.mono_s)
        self._elapsed_s = max(self._elapsed_s, elapsed_s)
        return self._elapsed_s


def _prediction(fold: Fold, elapsed_s: float) -> str | None:
    """The newest prediction and the budget, in words; None while there is neither."""
    if fold.latest_prediction is None and fold.s.budget is None:
        return None
    from carbonwrap.render.prediction import live_text  # only once there is something to say

    return live_text(fold.latest_prediction, fold.s.budget, elapsed_s)
