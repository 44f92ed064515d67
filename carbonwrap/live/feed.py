"""The live view's state, from the running measurement: power since the last refresh, energy and
CO2e so far (the fold's CO2e of logged samples, plus newer energy at the intensity in force)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from carbonwrap.measure.sampler import Totals
from carbonwrap.render.live import LiveState
from carbonwrap.runlog.summary import Fold

_LABELS = {"cpu": "CPU", "dram": "DRAM"}


class LiveFeed:
    """Callable: each call returns the state now. Runs on the live view's thread."""

    def __init__(
        self,
        snapshot: Callable[[], Totals],
        fold_locked: Callable[[Callable[[Fold], Any]], Any],
        components: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self._snapshot = snapshot
        self._fold_locked = fold_locked
        self._methods = {name: str(info.get("method", "")) for name, info in components.items()}
        self._previous: Totals | None = None

    def __call__(self) -> LiveState:
        totals = self._snapshot()
        so_far = self._fold_locked(Fold.so_far)
        previous, self._previous = self._previous, totals
        span_s = totals.elapsed_s - previous.elapsed_s if previous else totals.elapsed_s

        def power_w(now_j: float, before_j: float) -> float:
            return max(0.0, now_j - before_j) / span_s if span_s > 0 else 0.0

        rows: list[tuple[str, float, float | None, str]] = []
        for name in ("cpu", "dram"):
            if name in totals.energy_j:
                before = previous.energy_j.get(name, 0.0) if previous else 0.0
                rows.append(
                    (
                        _LABELS[name],
                        power_w(totals.energy_j[name], before),
                        totals.energy_j[name],
                        self._methods.get(name, ""),
                    )
                )
        for index, gpu in sorted(totals.gpus.items()):
            before_gpu = previous.gpus.get(index) if previous else None
            rows.append(
                (
                    f"GPU {index}",
                    power_w(gpu.energy_j, before_gpu.energy_j if before_gpu else 0.0),
                    gpu.energy_j,
                    max(gpu.methods, key=lambda m: gpu.methods[m]) if gpu.methods else "",
                )
            )
        if not totals.gpus and self._methods.get("gpu", "").startswith("unavailable"):
            rows.append(("GPU", 0.0, None, self._methods["gpu"]))
        current = so_far.intensity
        value, source = (current[0], current[1]) if current else (None, "")
        co2e_now_g = so_far.co2e_at_g(sum(totals.energy_j.values()))
        prediction = self._fold_locked(_prediction)
        return LiveState(
            totals.elapsed_s, totals.cpu_s, rows, value, source, co2e_now_g, prediction
        )


def _prediction(fold: Fold) -> str | None:
    """The latest logged prediction and the budget, in words; None while there is neither."""
    if not fold.s.predictions and fold.s.budget is None:
        return None
    from carbonwrap.render.prediction import live_text  # only once there is something to say

    return live_text(fold.s.predictions.get("last"), fold.s.budget)
