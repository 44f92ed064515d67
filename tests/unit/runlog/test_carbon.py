"""Time-resolved CO2e with plain numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonwrap.runlog.ledger import BUCKET_S, CarbonLedger

KWH = 3.6e6
T0 = 1_764_000_000.0 - 1_764_000_000.0 % BUCKET_S  # a bucket boundary


def test_each_interval_priced_at_the_intensity_in_force() -> None:
    ledger = CarbonLedger()
    ledger.set_intensity(100.0, "static", "average")
    ledger.add_energy(T0 + 10, 1 * KWH)  # 100 g
    ledger.set_intensity(300.0, "ukgrid:national", "average")
    ledger.add_energy(T0 + 20, 2 * KWH)  # 600 g
    totals = ledger.totals(pue=1.5)
    assert totals.co2e_g == pytest.approx(700 * 1.5)
    assert totals.mean_g_per_kwh == pytest.approx(700 / 3)
    assert (totals.min_g_per_kwh, totals.max_g_per_kwh) == (100.0, 300.0)
    assert totals.sources == ["static", "ukgrid:national"]
    assert totals.measured_share == 0.0


def test_measured_values_replace_provisional_ones_in_their_window() -> None:
    ledger = CarbonLedger()
    ledger.set_intensity(200.0, "forecast", "average")
    ledger.add_energy(T0 + 100, 1 * KWH)  # bucket 0
    ledger.add_energy(T0 + BUCKET_S + 100, 1 * KWH)  # bucket 1
    ledger.add_energy(T0 + 2 * BUCKET_S + 100, 2 * KWH)  # bucket 2
    # A half-hour of measured history covering buckets 0 and 1 only.
    ledger.add_measured(T0, T0 + 2 * BUCKET_S, 50.0, "measured", "average")
    totals = ledger.totals(pue=1.0)
    assert totals.co2e_g == pytest.approx(50 + 50 + 400)
    assert totals.measured_share == pytest.approx(0.5)
    assert totals.min_g_per_kwh == 50.0 and totals.max_g_per_kwh == 200.0


def test_energy_before_any_intensity_is_kept_and_no_energy_gives_the_current_value() -> None:
    ledger = CarbonLedger()
    ledger.add_energy(T0, 1 * KWH)
    ledger.set_intensity(400.0, "static", "average")
    totals = ledger.totals(pue=1.0)
    assert totals.co2e_g == 0.0  # unpriced energy is not invented
    empty = CarbonLedger()
    empty.set_intensity(123.0, "static", "average")
    assert empty.totals(1.0).mean_g_per_kwh == 123.0


def test_memory_is_per_bucket_not_per_sample() -> None:
    ledger = CarbonLedger()
    ledger.set_intensity(100.0, "s", "average")
    week_s = 7 * 24 * 3600
    for i in range(0, week_s, 10):  # a sample every 10 s for a week
        ledger.add_energy(T0 + i, 1.0)
    assert len(ledger._buckets) == week_s / BUCKET_S
    assert ledger.totals(1.0).co2e_g == pytest.approx(week_s / 10 * 100 / KWH)


_op = st.one_of(
    st.tuples(st.just("set"), st.floats(0, 900), st.just(0.0)),
    st.tuples(st.just("energy"), st.floats(0, 5 * KWH), st.floats(0, 4 * BUCKET_S)),
    st.tuples(st.just("measured"), st.floats(0, 900), st.floats(0, 10 * BUCKET_S)),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(_op, max_size=80), pue=st.floats(1.0, 3.0))
def test_the_running_co2e_equals_the_totals(
    ops: list[tuple[str, float, float]], pue: float
) -> None:
    """co2e_g is kept current for charts; it must price every bucket as totals does."""
    ledger = CarbonLedger()
    t = T0
    for op, value, extra in ops:
        if op == "set":
            ledger.set_intensity(value, "s", "average")
        elif op == "energy":
            t += extra
            ledger.add_energy(t, value)
        else:  # a measured window ending now, reaching back `extra` seconds
            ledger.add_measured(t - extra, t, value, "m", "average")
        assert ledger.co2e_g(pue) == pytest.approx(ledger.totals(pue).co2e_g, rel=1e-9, abs=1e-6)


def test_so_far_prices_energy_beyond_the_log_at_the_intensity_in_force() -> None:
    """`SoFar.co2e_at_g`, what the live view and the predictor both add to the logged CO2e."""
    from carbonwrap.runlog.ledger import SoFar, co2e_g

    so_far = SoFar(energy_j=3.6e6, co2e_g=100.0, pue=1.5, intensity=(200.0, "table", "average"))
    assert so_far.co2e_at_g(3.6e6) == 100.0
    assert so_far.co2e_at_g(7.2e6) == pytest.approx(100.0 + co2e_g(3.6e6, 1.5, 200.0))
    assert so_far.co2e_at_g(7.2e6) == pytest.approx(400.0)  # 1 kWh × 1.5 × 200 g/kWh more
    assert so_far.co2e_at_g(0.0) == 0.0  # an earlier energy prices back, never below 0
    assert SoFar(1.0, 5.0, 1.0, None).co2e_at_g(1e9) == 5.0  # no intensity yet: nothing to add
