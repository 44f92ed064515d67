"""Carbon priced per interval of time, not per logged record: a sample spanning an intensity
change is split at the change; measured windows shorter than a bucket each count."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.runlog.ledger import BUCKET_S, CarbonLedger
from carbonwrap.runlog.records import utc_iso
from carbonwrap.runlog.summary import Fold

KWH = 3.6e6
T0 = 1_764_000_000.0 - 1_764_000_000.0 % BUCKET_S  # a bucket boundary


def start() -> dict[str, object]:
    return {"type": "start", "time": utc_iso(T0), "pue": 1.0, "components": {}}


def sample(elapsed: float, cpu_j: float) -> dict[str, object]:
    return {
        "type": "sample",
        "time": utc_iso(T0 + elapsed),
        "elapsed_s": elapsed,
        "energy_j": {"cpu": cpu_j},
        "device_energy_j": {"cpu": cpu_j},
    }


def intensity(elapsed: float | None, value: float, source: str = "live") -> dict[str, object]:
    record: dict[str, object] = {
        "type": "intensity",
        "intensity_g_per_kwh": value,
        "source": source,
        "kind": "latest",
    }
    if elapsed is not None:
        record["time"] = utc_iso(T0 + elapsed)
        record["elapsed_s"] = elapsed
    return record


def measured(start_s: float, end_s: float, value: float) -> dict[str, object]:
    return {
        "type": "intensity",
        "intensity_g_per_kwh": value,
        "source": "history",
        "kind": "measured",
        "valid_from": utc_iso(T0 + start_s),
        "valid_to": utc_iso(T0 + end_s),
    }


def co2e(records: list[dict[str, object]]) -> float:
    fold = Fold()
    for record in records:
        fold.add(record)
    assert fold.co2e_g() == pytest.approx(fold.summary().co2e_g)
    return fold.summary().co2e_g


def test_a_sample_spanning_a_change_is_split_at_the_change() -> None:
    """1 kWh logged over 0–10 s, the intensity 100 until 4 s, then 300: 0.4 kWh at 100 and
    0.6 kWh at 300 (before: all of it at 300, 300 g)."""
    records = [start(), intensity(0, 100.0, "static"), intensity(4, 300.0), sample(10, KWH)]
    assert co2e(records) == pytest.approx(0.4 * 100 + 0.6 * 300)


def test_several_changes_inside_one_interval() -> None:
    records = [start(), intensity(0, 100.0, "static")]
    records += [intensity(2.5, 200.0), intensity(5, 400.0), intensity(7.5, 0.0), sample(10, KWH)]
    assert co2e(records) == pytest.approx(0.25 * (100 + 200 + 400 + 0))


def test_a_change_after_the_next_sample_splits_the_interval_it_falls_in() -> None:
    """A record logged before a sample but timed after it (two threads): the sample is priced
    at the old value, the next interval is split."""
    records = [start(), intensity(0, 100.0, "static"), intensity(12, 300.0)]
    records += [sample(10, KWH), sample(20, 2 * KWH)]
    assert co2e(records) == pytest.approx(100 + 0.2 * 100 + 0.8 * 300)


def test_a_change_logged_late_prices_from_the_next_interval_on() -> None:
    """Timed before the last sample: the past is not re-priced (the fold cannot split a sample
    it has already priced), as before."""
    records = [start(), intensity(0, 100.0, "static"), sample(10, KWH)]
    records += [intensity(5, 300.0), sample(20, 2 * KWH)]
    assert co2e(records) == pytest.approx(100 + 300)


def test_a_change_without_a_time_prices_the_whole_next_interval() -> None:
    records = [start(), intensity(None, 100.0, "static"), intensity(None, 300.0), sample(10, KWH)]
    assert co2e(records) == pytest.approx(300)


def test_the_intensity_in_force_changes_when_the_record_comes() -> None:
    """Observers (the live view, the budget) see the new value at once."""
    fold = Fold()
    for record in [start(), intensity(0, 100.0, "static"), sample(10, KWH), intensity(14, 300.0)]:
        fold.add(record)
    assert fold.current_intensity() == (300.0, "live", "average")


def test_energy_before_the_first_intensity_stays_unpriced() -> None:
    records = [start(), intensity(6, 100.0, "static"), sample(10, KWH)]
    assert co2e(records) == pytest.approx(0.4 * 100)


# A sample's energy goes into the bucket of its time; one at a bucket's very end (300 s)
# would belong to the next bucket: these runs end a second before.
END_S = 299.0


def test_two_measured_windows_inside_one_bucket_both_count() -> None:
    """Energy even over a bucket; history in 150-second windows: the bucket at their
    time-weighted mean, not at whichever came last (before: 300 for all of it)."""
    records = [start(), intensity(0, 500.0, "static")]
    records += [sample(min(30 * i, END_S), KWH * i / 10) for i in range(1, 11)]  # 1 kWh
    records += [measured(0, 150, 100.0), measured(150, 300, 300.0)]
    fold = Fold()
    for record in records:
        fold.add(record)
    s = fold.summary()
    assert s.co2e_g == pytest.approx((150 * 100 + 149 * 300) / END_S)
    assert s.intensity_measured_share == pytest.approx(1.0)
    assert (s.intensity_min_g_per_kwh, s.intensity_max_g_per_kwh) == (100.0, 300.0)


def test_windows_not_aligned_to_buckets_weigh_by_overlap() -> None:
    """Five-minute windows starting at 2 minutes past: every bucket holds two of them."""
    ledger = CarbonLedger()
    ledger.start(T0)
    ledger.set_intensity(500.0, "forecast", "average", 0.0)
    for i in range(60):  # samples at 5, 15, ... 595 s: 1 kWh in each bucket
        ledger.add_energy(T0 + 10 * i + 5, KWH / 30, 10.0 * i + 5)
    ledger.add_measured(T0 - 180, T0 + 120, 100.0, "history", "average")
    ledger.add_measured(T0 + 120, T0 + 420, 200.0, "history", "average")
    ledger.add_measured(T0 + 420, T0 + 720, 400.0, "history", "average")
    totals = ledger.totals(pue=1.0)
    # Bucket 0's energy was used over 0–295 s: 120 s at 100, 175 s at 200; bucket 1's over
    # 300–595 s: 120 s at 200, 175 s at 400.
    expected = (120 * 100 + 175 * 200) / 295 + (120 * 200 + 175 * 400) / 295
    assert totals.co2e_g == pytest.approx(expected)
    assert totals.measured_share == pytest.approx(1.0)
    assert ledger.co2e_g(1.0) == pytest.approx(totals.co2e_g)


def test_a_window_over_part_of_a_bucket_reprices_only_that_part() -> None:
    ledger = CarbonLedger()
    ledger.start(T0)
    ledger.set_intensity(500.0, "forecast", "average", 0.0)
    ledger.add_energy(T0 + END_S, KWH, END_S)
    ledger.add_measured(T0, T0 + 60, 100.0, "history", "average")
    totals = ledger.totals(pue=1.0)
    assert totals.co2e_g == pytest.approx((60 * 100 + (END_S - 60) * 500) / END_S)
    assert totals.measured_share == pytest.approx(60 / END_S)
    assert (totals.min_g_per_kwh, totals.max_g_per_kwh) == (100.0, 500.0)


def test_a_later_window_replaces_an_earlier_one_where_they_overlap() -> None:
    ledger = CarbonLedger()
    ledger.start(T0)
    ledger.set_intensity(500.0, "forecast", "average", 0.0)
    ledger.add_energy(T0 + END_S, KWH, END_S)
    ledger.add_measured(T0, T0 + 300, 100.0, "history", "average")
    ledger.add_measured(T0 + 150, T0 + 300, 300.0, "revised", "average")
    totals = ledger.totals(pue=1.0)
    assert totals.co2e_g == pytest.approx((150 * 100 + 149 * 300) / END_S)
    assert totals.sources == ["forecast", "history", "revised"]


def test_a_bucket_holds_at_most_300_windows() -> None:
    """Windows are taken to the whole second: a flood of tiny ones cannot grow memory."""
    ledger = CarbonLedger()
    for i in range(3000):
        ledger.add_measured(T0 + i / 10, T0 + i / 10 + 1, float(i), "m", "average")
    assert max(len(windows) for windows in ledger._windows.values()) <= 300


@settings(max_examples=200, deadline=None)
@given(
    samples=st.lists(st.floats(0.5, 60), min_size=1, max_size=30),
    changes=st.lists(st.tuples(st.floats(0, 900), st.floats(0, 900)), max_size=10),
    power_w=st.floats(1, 1000),
)
def test_at_constant_power_the_log_prices_as_truly_time_resolved_pricing(
    samples: list[float], changes: list[tuple[float, float]], power_w: float
) -> None:
    """Whatever the log interval and wherever the changes fall, the CO2e is the integral of
    power × intensity over time (the record order: each change logged before the first sample
    after it)."""
    times = list(itertools.accumulate(samples))
    changes = sorted((min(at, times[-1]), value) for at, value in changes)
    records: list[dict[str, object]] = [start(), intensity(0, 200.0, "static")]
    pending = list(changes)
    for t in times:
        while pending and pending[0][0] < t:
            records.append(intensity(*pending.pop(0)))
        records.append(sample(t, power_w * t))
    # The integral: the value in force over each stretch between changes.
    edges = [(0.0, 200.0), *changes]
    expected_ws = 0.0
    for (a, value), (b, _) in itertools.pairwise([*edges, (times[-1], 0.0)]):
        expected_ws += power_w * max(0.0, b - a) * value
    assert co2e(records) == pytest.approx(expected_ws / KWH, rel=1e-9, abs=1e-12)


_op = st.one_of(
    st.tuples(st.just("set"), st.floats(0, 900), st.floats(-20, 40)),  # value, time offset
    st.tuples(st.just("energy"), st.floats(0, 5 * KWH), st.floats(0, 4 * BUCKET_S)),
    st.tuples(st.just("measured"), st.floats(0, 900), st.floats(0, 10 * BUCKET_S)),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=80), pue=st.floats(1.0, 3.0))
def test_the_running_co2e_equals_the_totals_with_splits_and_windows(
    ops: list[tuple[str, float, float]], pue: float
) -> None:
    ledger = CarbonLedger()
    ledger.start(T0)
    t = 0.0
    energy_j = 0.0
    for op, value, extra in ops:
        if op == "set":
            ledger.set_intensity(value, "s", "average", max(0.0, t + extra))
        elif op == "energy":
            t += extra
            energy_j += value
            ledger.add_energy(T0 + t, value, t)
        else:  # a measured window ending now, reaching back `extra` seconds
            ledger.add_measured(T0 + t - extra, T0 + t, value, "m", "average")
        totals = ledger.totals(pue)
        assert ledger.co2e_g(pue) == pytest.approx(totals.co2e_g, rel=1e-9, abs=1e-6)
        assert 0.0 <= totals.measured_share <= 1.0
    assert sum(b.energy_j for b in ledger._buckets.values()) == pytest.approx(energy_j)
