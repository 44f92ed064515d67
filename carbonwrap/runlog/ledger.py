"""Time-resolved CO2e: the formula (energy × PUE × intensity), and energy per 5-minute bucket at
the intensity in force (a sample interval split where the intensity changed inside it), measured
values replacing provisional ones over the time their windows cover, where a provider publishes
them later."""

from __future__ import annotations

from carbonwrap.lite import INF, NamedTuple, isinf

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


class _Bucket:
    """The energy of one bucket and what it is priced at."""

    __slots__ = (
        "energy_j",
        "first_s",
        "high",
        "last_s",
        "low",
        "measured_j",
        "price",
        "share",
        "weighted",
    )

    def __init__(self, key: int) -> None:
        self.energy_j = 0.0
        self.weighted = 0.0  # Σ energy·intensity (J·g/kWh) at the provisional values
        self.low, self.high = INF, -INF  # provisional values the energy was priced at
        # The part of the bucket its energy was used in (wall clock, s): where measured
        # windows are weighed; the start of an interval before the bucket counts from its start.
        self.first_s, self.last_s = (key + 1) * BUCKET_S, key * BUCKET_S
        self.price = 0.0  # Σ energy·intensity as `totals` counts it: measured where there is
        self.measured_j = 0.0  # the energy of it priced at measured values
        self.share = _NO_SHARE  # what it adds to the run's extremes and measured sources


class _Share(NamedTuple):
    """What one bucket adds to `totals` beyond sums: the lowest and highest value its energy
    was priced at, and the measured windows' sources and signals that priced some of it."""

    low: float
    high: float
    sources: tuple[str, ...]
    signals: tuple[str, ...]


_NO_SHARE = _Share(INF, -INF, (), ())


class _Counted:
    """A multiset of values (each bucket's low, or high) whose least (`least`) is kept at hand:
    found again among the distinct values only after the least one left."""

    __slots__ = ("_count", "_least", "_sign", "_stale")

    def __init__(self, sign: float) -> None:
        self._count: dict[float, int] = {}
        self._sign = sign  # 1: the least; -1: the greatest
        self._least = INF
        self._stale = False

    def replace(self, old: float, new: float) -> None:
        if old == new:
            return
        if not isinf(new):
            self._count[new] = self._count.get(new, 0) + 1
            if self._sign * new < self._least:
                self._least = self._sign * new
        if not isinf(old):
            left = self._count[old] - 1
            if left:
                self._count[old] = left
            else:
                del self._count[old]
                self._stale = self._stale or self._sign * old == self._least

    def least(self) -> float:
        if self._stale:
            self._least = min((self._sign * v for v in self._count), default=INF)
            self._stale = False
        return self._sign * self._least


# A measured window: start, end (wall clock, whole seconds), value, source, signal.
_Window = tuple[float, float, float, str, str]


class CarbonLedger:
    """Feed it the run's start, intensity changes, measured windows and energy, in log order;
    memory grows with the run's length in 5-minute buckets (2,016 a week), not with the number
    of samples.

    Energy comes as totals at sample times: the energy of an interval between two samples is
    split where the intensity changed inside it, in proportion to time (`add_energy`), so a
    change costs nothing in accuracy whatever the log interval. A measured window re-prices
    the part of each bucket it covers, so windows shorter than a bucket each count, weighted by
    their overlap with the time the bucket's energy was used in."""

    def __init__(self) -> None:
        self._current: tuple[float, str, str] | None = None  # value, source, signal
        # In force at the end of the energy folded so far, and the changes after it that the
        # next interval of energy is split at: (elapsed s, the value in force from then).
        self._base: tuple[float, str, str] | None = None
        self._changes: list[tuple[float, tuple[float, str, str]]] = []
        self._last_elapsed_s = 0.0  # where the energy folded so far ends (the run's clock)
        self._last_time_s: float | None = None  # the same point on the wall clock
        self._buckets: dict[int, _Bucket] = {}
        self._windows: dict[int, list[_Window]] = {}  # bucket -> measured windows, disjoint
        self._sources: dict[str, None] = {}
        self._signals: dict[str, None] = {}
        # Σ of the buckets' prices, energies and measured energies, their extremes and the
        # measured windows' sources (by the buckets they price), kept current as buckets change
        # so that `co2e_g` and `totals` are O(1) per sample (the live view, the .prom file and
        # the budget ask after every sample of a long run).
        self._weighted = 0.0
        self._energy_j = 0.0
        self._measured_j = 0.0
        self._lows, self._highs = _Counted(1.0), _Counted(-1.0)
        self._measured_sources: dict[str, int] = {}
        self._measured_signals: dict[str, int] = {}

    @property
    def current(self) -> tuple[float, str, str] | None:
        """The intensity in force now: value, source, signal."""
        return self._current

    def start(self, time_s: float) -> None:
        """The run starts at `time_s` (wall clock) and elapsed 0: where the first interval of
        energy begins."""
        if self._last_time_s is None:
            self._last_time_s = time_s

    def set_intensity(
        self, value_g_per_kwh: float, source: str, signal: str, at_s: float | None = None
    ) -> None:
        """The intensity in force from `at_s` (the run's elapsed seconds) on, until the next
        call. None, or a time before the end of the energy folded so far: from that end on."""
        value = (value_g_per_kwh, source, signal)
        self._current = value
        floor = self._changes[-1][0] if self._changes else self._last_elapsed_s
        at = floor if at_s is None else max(at_s, floor)
        if at <= self._last_elapsed_s:
            self._base = value
        elif self._changes and self._changes[-1][0] == at:
            self._changes[-1] = (at, value)
        else:
            self._changes.append((at, value))

    def add_measured(
        self, start_s: float, end_s: float, value_g_per_kwh: float, source: str, signal: str
    ) -> None:
        """A published value for a past window (wall clock): it re-prices the part of each
        bucket it covers; where windows overlap, the later one counts. Times are taken to the
        whole second (providers publish whole minutes), which bounds a bucket to 300 windows."""
        start_s, end_s = float(round(start_s)), float(round(end_s))
        if end_s <= start_s:
            return
        first = int(start_s // BUCKET_S)
        last = -int(-end_s // BUCKET_S) - 1  # the ceiling; end is exclusive
        if last - first > 10_000:  # a window of over a month is not a measurement: ignore
            return
        for key in range(first, last + 1):
            low, high = max(start_s, key * BUCKET_S), min(end_s, (key + 1) * BUCKET_S)
            kept = [
                piece
                for window in self._windows.get(key, ())
                for piece in _outside(window, low, high)
            ]
            kept.append((low, high, value_g_per_kwh, source, signal))
            self._windows[key] = kept
            bucket = self._buckets.get(key)
            if bucket is not None:
                self._reprice(key, bucket)

    def add_energy(self, time_s: float, energy_j: float, elapsed_s: float | None = None) -> None:
        """Energy used since the previous call (or the start) up to `time_s` (wall clock) and
        `elapsed_s` (the run's clock), split at the intensity changes in between in proportion
        to time. Without `elapsed_s` it is all priced at the intensity in force now."""
        since_s = self._last_time_s if self._last_time_s is not None else time_s
        self._last_time_s = time_s
        if elapsed_s is None:
            self._base, self._changes = self._current, []
            self._add(since_s, time_s, energy_j, self._current)
            return
        begin = self._last_elapsed_s
        span = elapsed_s - begin
        self._last_elapsed_s = max(begin, elapsed_s)
        in_force, done_j, at_time_s = self._base, 0.0, since_s
        used = 0
        for at, value in self._changes:
            if at > elapsed_s:
                break  # after this sample: the next interval is split there
            part_j = energy_j * (at - begin) / span - done_j  # span > 0: begin < at <= elapsed
            change_s = time_s - (elapsed_s - at)  # the change on the wall clock
            self._add(at_time_s, change_s, part_j, in_force)
            in_force, done_j, at_time_s = value, done_j + part_j, change_s
            used += 1
        del self._changes[:used]
        self._base = in_force
        self._add(at_time_s, time_s, energy_j - done_j, in_force)

    def _add(
        self, start_s: float, end_s: float, energy_j: float, price: tuple[float, str, str] | None
    ) -> None:
        """Energy used between two wall-clock times, all at one price (None: none known yet:
        kept, priced at 0), into the bucket of its end."""
        key = int(end_s // BUCKET_S)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(key)
        if start_s < bucket.first_s:
            bucket.first_s = max(min(start_s, end_s), key * BUCKET_S)
        if end_s > bucket.last_s:
            bucket.last_s = end_s
        if energy_j > 0:
            bucket.energy_j += energy_j
            self._energy_j += energy_j
            if price is not None:
                value, source, signal = price
                bucket.weighted += energy_j * value
                if value < bucket.low:
                    bucket.low = value
                if value > bucket.high:
                    bucket.high = value
                self._sources.setdefault(source, None)
                self._signals.setdefault(signal, None)
        if key in self._windows:
            self._reprice(key, bucket)
        else:  # the common case, priced provisionally: spare `_price`
            self._weighted += bucket.weighted - bucket.price
            bucket.price = bucket.weighted
            if bucket.energy_j > 0 and (bucket.low, bucket.high) != bucket.share[:2]:
                self._share(bucket, _Share(bucket.low, bucket.high, (), ()))

    def _reprice(self, key: int, bucket: _Bucket) -> None:
        price, measured_j = self._price(key, bucket)
        self._weighted += price - bucket.price
        self._measured_j += measured_j - bucket.measured_j
        bucket.price, bucket.measured_j = price, measured_j
        low, high = INF, -INF
        sources: dict[str, None] = {}
        signals: dict[str, None] = {}
        if measured_j > 0:
            for share, (_, _, value, source, signal) in _shares(
                self._windows[key], bucket.first_s, bucket.last_s
            ):
                if share > 0:
                    low, high = min(low, value), max(high, value)
                    sources.setdefault(source, None)
                    signals.setdefault(signal, None)
        if measured_j < bucket.energy_j:
            low, high = min(low, bucket.low), max(high, bucket.high)
        self._share(bucket, _Share(low, high, tuple(sources), tuple(signals)))

    def _share(self, bucket: _Bucket, new: _Share) -> None:
        """The bucket's part of the extremes and measured sources is now `new`."""
        old, bucket.share = bucket.share, new
        self._lows.replace(old.low, new.low)
        self._highs.replace(old.high, new.high)
        for counts, before, after in (
            (self._measured_sources, old.sources, new.sources),
            (self._measured_signals, old.signals, new.signals),
        ):
            if before == after:
                continue
            for name in after:
                counts[name] = counts.get(name, 0) + 1
            for name in before:
                counts[name] -= 1
                if not counts[name]:
                    del counts[name]

    def _price(self, key: int, bucket: _Bucket) -> tuple[float, float]:
        """What `totals` counts for a bucket (Σ energy·intensity) and the energy of it priced at
        measured values: each window over the share of the bucket's time it covers, the
        provisional prices over the rest (energy taken as even within the bucket)."""
        windows = self._windows.get(key)
        if not windows or bucket.energy_j <= 0:
            return bucket.weighted, 0.0
        shares = _shares(windows, bucket.first_s, bucket.last_s)
        covered = sum(share for share, _ in shares)
        measured = sum(share * window[2] for share, window in shares)
        return (
            bucket.energy_j * measured + (1.0 - covered) * bucket.weighted,
            bucket.energy_j * covered,
        )

    def co2e_g(self, pue: float) -> float:
        """The CO2e so far, as `totals(pue).co2e_g` gives it (to rounding), in O(1)."""
        return co2e_g(self._weighted, pue, 1.0)  # weighted: Σ energy × intensity

    def totals(self, pue: float) -> CarbonTotals:
        """The run's CO2e and intensity figures so far, from the sums kept current (O(1)
        but after a measured window took the lowest or highest value away: then O(distinct
        values))."""
        energy_j, weighted, measured_j = self._energy_j, self._weighted, self._measured_j
        low, high = self._lows.least(), self._highs.least()
        sources = dict(self._sources)
        signals = dict(self._signals)
        # measured windows' sources and signals in name order: a fixed order that needs no walk
        # over the buckets (which bucket first used each one is not kept)
        for source in sorted(self._measured_sources):
            sources.setdefault(source, None)
        for signal in sorted(self._measured_signals):
            signals.setdefault(signal, None)
        if energy_j <= 0 or (weighted == 0 and low == INF):
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
            measured_share=min(1.0, measured_j / energy_j),
            sources=list(sources),
            signals=list(signals),
        )


def _outside(window: _Window, low: float, high: float) -> list[_Window]:
    """The parts of `window` outside [low, high)."""
    start, end, value, source, signal = window
    parts: list[_Window] = []
    if start < low:
        parts.append((start, min(end, low), value, source, signal))
    if end > high:
        parts.append((max(start, high), end, value, source, signal))
    return [part for part in parts if part[1] > part[0]]


def _shares(windows: list[_Window], first_s: float, last_s: float) -> list[tuple[float, _Window]]:
    """Each window's share of [first_s, last_s]; of a single instant, 1 for the window that
    holds it."""
    span = last_s - first_s
    if span <= 0:
        return [(1.0 if w[0] <= last_s < w[1] else 0.0, w) for w in windows]
    return [(max(0.0, min(w[1], last_s) - max(w[0], first_s)) / span, w) for w in windows]
