"""The ledger's totals kept current as buckets change: the same figures as a walk over every
bucket, and no bucket visited when the summary, the live feed or the budget asks (issue 19)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_records import T0, intensity_record, sample_record, start_record

from carbonwrap.live.feed import LiveFeed
from carbonwrap.measure.sampler import Totals
from carbonwrap.runlog.ledger import BUCKET_S, CarbonLedger, CarbonTotals, _shares
from carbonwrap.runlog.records import utc_iso
from carbonwrap.runlog.summary import Fold

KWH = 3.6e6
B0 = 1_764_000_000.0 - 1_764_000_000.0 % BUCKET_S  # a bucket boundary


def walked(ledger: CarbonLedger, pue: float) -> CarbonTotals:
    """`totals` as it was before it was kept current: a walk over every bucket (the reference)."""
    energy_j = weighted = measured_j = 0.0
    low, high = math.inf, -math.inf
    sources = dict(ledger._sources)
    signals = dict(ledger._signals)
    measured_sources: set[str] = set()
    measured_signals: set[str] = set()
    for key, bucket in ledger._buckets.items():
        energy_j += bucket.energy_j
        weighted += bucket.price
        measured_j += bucket.measured_j
        if bucket.measured_j > 0:
            for share, (_, _, value, source, signal) in _shares(
                ledger._windows[key], bucket.first_s, bucket.last_s
            ):
                if share > 0:
                    low, high = min(low, value), max(high, value)
                    measured_sources.add(source)
                    measured_signals.add(signal)
        if bucket.measured_j < bucket.energy_j:
            low, high = min(low, bucket.low), max(high, bucket.high)
    for source in sorted(measured_sources):  # measured ones in name order, after the live ones
        sources.setdefault(source, None)
    for signal in sorted(measured_signals):
        signals.setdefault(signal, None)
    if energy_j <= 0 or (weighted == 0 and low == math.inf):
        current = ledger.current[0] if ledger.current else None
        if ledger.current is not None:
            sources.setdefault(ledger.current[1], None)
            signals.setdefault(ledger.current[2], None)
        return CarbonTotals(0.0, current, current, current, 0.0, list(sources), list(signals))
    return CarbonTotals(
        weighted / 3.6e6 * pue,
        weighted / energy_j,
        low,
        high,
        min(1.0, measured_j / energy_j),
        list(sources),
        list(signals),
    )


def assert_close(kept: CarbonTotals, walk: CarbonTotals) -> None:
    for a, b in zip(kept, walk, strict=True):
        if isinstance(a, float) and isinstance(b, float):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (kept, walk)
        else:
            assert a == b, (kept, walk)


# One step of a run: energy (J) up to a time, an intensity change, or a measured window.
_step = st.one_of(
    st.tuples(st.just("energy"), st.floats(1, 400), st.floats(0, 5e5)),
    st.tuples(st.just("intensity"), st.floats(0, 600), st.sampled_from(["live", "static"])),
    st.tuples(
        st.just("measured"),
        st.floats(-900, 3000),
        st.floats(1, 1200),
        st.floats(0, 600),
        st.sampled_from(["hist A", "hist B"]),
    ),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_step, max_size=40))
def test_totals_kept_current_equal_a_walk_over_every_bucket(steps: list[tuple[Any, ...]]) -> None:
    ledger = CarbonLedger()
    ledger.start(B0)
    now_s = B0
    for step in steps:
        if step[0] == "energy":
            now_s += step[1]
            ledger.add_energy(now_s, step[2], now_s - B0)
        elif step[0] == "intensity":
            ledger.set_intensity(step[1], step[2], "average", now_s - B0)
        else:
            _, start, length, value, source = step
            ledger.add_measured(B0 + start, B0 + start + length, value, source, "average")
        assert_close(ledger.totals(1.2), walked(ledger, 1.2))


class CountingBuckets(dict[int, Any]):
    """The ledger's buckets, counting every walk over them."""

    walks = 0

    def items(self) -> Any:
        CountingBuckets.walks += 1
        return super().items()

    def values(self) -> Any:
        CountingBuckets.walks += 1
        return super().values()

    def keys(self) -> Any:
        CountingBuckets.walks += 1
        return super().keys()

    def __iter__(self) -> Any:
        CountingBuckets.walks += 1
        return super().__iter__()


def long_fold(hours: int) -> Fold:
    """A run of `hours` with a sample every 10 s, live intensity every 30 minutes and its
    measured history (six 5-minute windows) after each: 12 buckets an hour."""
    fold = Fold()
    fold.add(start_record())
    fold.add(intensity_record(0, 150.0))
    fold._carbon._buckets = CountingBuckets()
    for i in range(1, hours * 360 + 1):
        fold.add(sample_record(10 * i, 300.0 * i, 30.0 * i))
        if i % 180 == 0:
            fold.add(intensity_record(10 * i, 100.0 + i % 97, "latest"))
            for w in range(6):
                start = T0 + 10 * i - 1800 + 300 * w
                fold.add(
                    {
                        "type": "intensity",
                        "time": utc_iso(T0 + 10 * i),
                        "elapsed_s": 10 * i,
                        "intensity_g_per_kwh": 90.0 + w,
                        "source": "measured history",
                        "kind": "measured",
                        "valid_from": utc_iso(start),
                        "valid_to": utc_iso(start + 300),
                    }
                )
    return fold


def test_the_summary_visits_no_bucket_however_long_the_run() -> None:
    fold = long_fold(hours=24)  # 288 buckets
    assert len(fold._carbon._buckets) >= 288
    CountingBuckets.walks = 0
    for _ in range(100):
        s = fold.summary()
        fold.so_far()
    assert CountingBuckets.walks == 0
    assert s.intensity_measured_share > 0.9 and s.intensity_sources[-1] == "measured history"
    assert_close(fold._carbon.totals(s.pue), walked(fold._carbon, s.pue))


def test_the_live_feed_and_the_budgets_pricing_visit_no_bucket() -> None:
    fold = long_fold(hours=6)
    CountingBuckets.walks = 0
    totals = Totals(elapsed_s=21_600.0, energy_j={"cpu": 7e6, "dram": 7e5})
    feed = LiveFeed(lambda: totals, lambda read: read(fold), {"cpu": {"method": "rapl"}})
    for _ in range(50):
        state = feed()
        co2e_g = fold.so_far().co2e_at_g(7.7e6)  # what BudgetWatch.on_reading is handed
    assert CountingBuckets.walks == 0
    assert state.co2e_g == pytest.approx(co2e_g)


def test_a_measured_window_reprices_only_the_buckets_it_covers() -> None:
    ledger = CarbonLedger()
    ledger.start(B0)
    ledger.set_intensity(200.0, "live", "average")
    for i in range(1, 1001):  # 1,000 buckets
        ledger.add_energy(B0 + BUCKET_S * i - 1, KWH, BUCKET_S * i - 1)
    repriced: list[int] = []
    original = ledger._reprice

    def counted(key: int, bucket: Any) -> None:
        repriced.append(key)
        original(key, bucket)

    ledger._reprice = counted  # type: ignore[method-assign]
    ledger.add_measured(B0 + 10 * BUCKET_S, B0 + 13 * BUCKET_S, 50.0, "hist", "average")
    first = int(B0 // BUCKET_S)
    assert repriced == [first + 10, first + 11, first + 12]
    totals = ledger.totals(1.0)
    assert totals.min_g_per_kwh == 50.0 and totals.sources == ["live", "hist"]
    assert totals.co2e_g == pytest.approx(997 * 200 + 3 * 50)
