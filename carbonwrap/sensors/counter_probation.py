"""Whether a GPU's energy counter can be believed, judged against the run's own power readings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

# Users of AMD GPUs report energy counters that never move while the GPU draws power
# (https://github.com/ROCm/amdsmi/issues/38, https://github.com/ROCm/rocm_smi_lib/issues/180:
# the same value for a whole process) and counters that jump far beyond what the power
# readings allow (zeus checks the counter against power for the same reason:
# https://github.com/ml-energy/zeus/issues/113). The power readings are the yardstick.
STUCK_SPAN_S = 5.0  # a counter unchanged this long ...
STUCK_POWER_W = 20.0  # ... while the power readings average more than this is stuck
JUMP_FACTOR = 3.0  # an increase implying this many times the mean power ...
JUMP_MIN_J = 50.0  # ... and more than this many joules is absurd


class EnergyPoint(NamedTuple):
    """One reading of a device: its counter (J) and its power (W, None where unreadable)."""

    mono_s: float
    energy_j: float
    power_w: float | None


def stuck_reason(unchanged: Sequence[EnergyPoint]) -> str | None:
    """Why a counter is stuck, or None: `unchanged` are consecutive readings, oldest first, all
    with the counter's current value; stuck when they span `STUCK_SPAN_S` or more while their
    power readings average more than `STUCK_POWER_W`."""
    if len(unchanged) < 2:
        return None
    span_s = unchanged[-1].mono_s - unchanged[0].mono_s
    powers_w = [p.power_w for p in unchanged if p.power_w is not None]
    if span_s < STUCK_SPAN_S or not powers_w:
        return None
    mean_w = sum(powers_w) / len(powers_w)
    if mean_w <= STUCK_POWER_W:
        return None
    return f"unchanged for {span_s:.0f} s while drawing {mean_w:.0f} W"


def jump_reason(previous: EnergyPoint, current: EnergyPoint) -> str | None:
    """Why an increase between two readings is absurd, or None: more than `JUMP_MIN_J` and more
    than `JUMP_FACTOR` times the energy the two power readings' mean gives over the interval.
    Without both power readings there is nothing to judge against."""
    if previous.power_w is None or current.power_w is None:
        return None
    increase_j = current.energy_j - previous.energy_j
    duration_s = max(0.0, current.mono_s - previous.mono_s)
    mean_w = (previous.power_w + current.power_w) / 2
    if increase_j <= JUMP_MIN_J or increase_j <= JUMP_FACTOR * mean_w * duration_s:
        return None
    return (
        f"rose {increase_j:.0f} J in {duration_s:.1f} s while drawing {mean_w:.0f} W "
        f"(more than {JUMP_FACTOR:.0f} times the power readings)"
    )


class CounterProbation:
    """One device's counter across a run: which of its readings may be reported.

    A reading is reported once there is an earlier one to judge it against: it moved by a
    plausible amount, or it did not move while the power readings say little is drawn. A reading
    that did not move while more than `STUCK_POWER_W` is drawn is held back (None: the caller's
    power trapezoid covers that interval, so a counter that updates slowly loses nothing). A
    stuck or absurd counter is rejected for the rest of the run: `rejected` says why.
    A decrease is reported: the attribution already refuses intervals that go backwards.
    """

    __slots__ = ("_last", "_unchanged", "rejected")

    def __init__(self) -> None:
        self._last: EnergyPoint | None = None
        self._unchanged: list[EnergyPoint] = []
        self.rejected: str | None = None

    def observe(self, point: EnergyPoint) -> float | None:
        """The counter value to report for this reading (J), or None."""
        if self.rejected is not None:
            return None
        last, self._last = self._last, point
        if last is None:
            self._unchanged = [point]
            return None
        if point.energy_j != last.energy_j:
            self.rejected = jump_reason(last, point)
            self._unchanged = [point]
            return None if self.rejected else point.energy_j
        self._unchanged.append(point)
        self.rejected = stuck_reason(self._unchanged)
        if self.rejected is not None:
            return None
        powers_w = [p.power_w for p in (last, point) if p.power_w is not None]
        if powers_w and sum(powers_w) / len(powers_w) > STUCK_POWER_W:
            return None  # drawing power yet not counting: not believed for this interval
        return point.energy_j
