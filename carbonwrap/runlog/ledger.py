"""Time-resolved CO2e: the formula (energy × PUE × intensity), and energy per 5-minute bucket at
the intensity in force, measured values replacing provisional ones where a provider publishes
them later."""

import math
from typing import NamedTuple

J_PER_KWH = 3.6e6
BUCKET_S = 300.0  # the finest provider resolution (Energinet, WattTime: 5 minutes)


def co2e_g(energy_j: float, pue: float, intensity_g_per_kwh: float) -> float:
    """Grams CO2e of attributed energy drawn at the facility (× PUE) from a grid of the given
    intensity: the one formula every total, prediction and live figure uses. (A sum of
    energy × intensity products is priced as `co2e_g(weighted, pue, 1.0)`.)"""
    return energy_j / J_PER_KWH * pue * intensity_g_per_kwh


class SoFar(NamedTuple):
    """A run's footprint as far as its log goes: the attributed energy of the samples folded
    (J, before PUE), its CO2e (g), and the intensity in force (g/kWh, source, signal; None
    before the first). The live view, the predictor and the budget read it."""

    energy_j: float
    co2e_g: float
    pue: float
    intensity: tuple[float, str, str] | None

    def co2e_at_g(self, energy_j: float) -> float:
        """The CO2e once `energy_j` is attributed in all (the sampler's latest reading, or a
        progress report's): the logged CO2e plus the difference priced at the intensity in
        force (an energy from before the last logged sample prices back); never below 0."""
        value = self.intensity[0] if self.intensity is not None else 0.0
        return max(0.0, self.co2e_g + co2e_g(energy_j - self.energy_j, self.pue, value))


class CarbonTotals(NamedTuple):
    co2e_g: float
    mean_g_per_kwh: float | None  # energy-weighted
    min_g_per_kwh: float | None
    max_g_per_kwh: float | None
    measured_share: float  # fraction of the energy priced with measured (historical) values
    sources: list[str]  # in order of first use
    signals: list[str]  # "average", "marginal"


class CarbonLedger:
    """Feed it intensity changes, measured windows and energy, in log order; memory grows with
    the run's length in 5-minute buckets (2,016 a week), not with the number of samples."""

    def __init__(self) -> None:
        self._current: tuple[float, str, str] | None = None  # value, source, signal
        # bucket -> [energy J, Σ energy·intensity (J·g/kWh) at provisional values, low, high]
        self._buckets: dict[int, list[float]] = {}
        self._measured: dict[int, tuple[float, str, str]] = {}  # bucket -> value, source, signal
        self._sources: dict[str, None] = {}
        self._signals: dict[str, None] = {}
        # Σ energy·intensity (J·g/kWh) over all buckets as `totals` prices them, kept current
        # so that `co2e_g` is O(1) (a chart asks after every sample of a long run).
        self._weighted = 0.0

    @property
    def current(self) -> tuple[float, str, str] | None:
        """The intensity in force now: value, source, signal."""
        return self._current

    def set_intensity(self, value_g_per_kwh: float, source: str, signal: str) -> None:
        """The intensity in force from now on, until the next call."""
        self._current = (value_g_per_kwh, source, signal)

    def add_measured(
        self, start_s: float, end_s: float, value_g_per_kwh: float, source: str, signal: str
    ) -> None:
        """A published value for a past window: replaces provisional prices of its buckets."""
        first = int(start_s // BUCKET_S)
        last = math.ceil(end_s / BUCKET_S) - 1  # end is exclusive
        if last - first > 10_000:  # a window of over a month is not a measurement: ignore
            return
        for bucket in range(first, last + 1):
            energy = self._buckets.get(bucket)
            if energy is not None and energy[0] > 0:
                self._weighted += energy[0] * value_g_per_kwh - self._price(bucket, energy)
            self._measured[bucket] = (value_g_per_kwh, source, signal)

    def add_energy(self, time_s: float, energy_j: float) -> None:
        """Energy used up to `time_s` (since the previous call), priced provisionally now."""
        if energy_j <= 0:
            return
        measured = self._measured.get(int(time_s // BUCKET_S))
        if measured is not None:
            self._weighted += energy_j * measured[0]
        elif self._current is not None:
            self._weighted += energy_j * self._current[0]
        if self._current is None:  # no intensity known yet: keep the energy, priced at 0 for now
            self._bucket(time_s)[0] += energy_j
            return
        value, source, signal = self._current
        bucket = self._bucket(time_s)
        bucket[0] += energy_j
        bucket[1] += energy_j * value
        bucket[2] = min(bucket[2], value)
        bucket[3] = max(bucket[3], value)
        self._sources.setdefault(source, None)
        self._signals.setdefault(signal, None)

    def _bucket(self, time_s: float) -> list[float]:
        key = int(time_s // BUCKET_S)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [0.0, 0.0, float("inf"), float("-inf")]
        return bucket

    def co2e_g(self, pue: float) -> float:
        """The CO2e so far, as `totals(pue).co2e_g` gives it (to rounding), in O(1)."""
        return co2e_g(self._weighted, pue, 1.0)  # weighted: Σ energy × intensity

    def _price(self, key: int, bucket: list[float]) -> float:
        """What `totals` counts for a bucket now: measured value × energy, else provisional."""
        measured = self._measured.get(key)
        return bucket[0] * measured[0] if measured is not None else bucket[1]

    def totals(self, pue: float) -> CarbonTotals:
        energy_j = weighted = measured_j = 0.0
        low, high = float("inf"), float("-inf")
        sources = dict(self._sources)
        signals = dict(self._signals)
        for key, (e_j, provisional, b_low, b_high) in self._buckets.items():
            energy_j += e_j
            measured = self._measured.get(key)
            if measured is not None and e_j > 0:
                value, source, signal = measured
                weighted += e_j * value
                measured_j += e_j
                low, high = min(low, value), max(high, value)
                sources.setdefault(source, None)
                signals.setdefault(signal, None)
            else:
                weighted += provisional
                low, high = min(low, b_low), max(high, b_high)
        if energy_j <= 0 or (weighted == 0 and low == float("inf")):
            current = self._current[0] if self._current else None
            if self._current is not None:
                sources.setdefault(self._current[1], None)
                signals.setdefault(self._current[2], None)
            return CarbonTotals(0.0, current, current, current, 0.0, list(sources), list(signals))
        return CarbonTotals(
            co2e_g=co2e_g(weighted, pue, 1.0),
            mean_g_per_kwh=weighted / energy_j,
            min_g_per_kwh=low,
            max_g_per_kwh=high,
            measured_share=measured_j / energy_j,
            sources=list(sources),
            signals=list(signals),
        )
