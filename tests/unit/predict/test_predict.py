"""The estimator on synthetic progress series with known answers (plain numbers, no run)."""

import math
import random

import pytest

from carbonwrap.predict.estimate import (
    Point,
    basis,
    energy_at,
    estimate,
    mean_intensity,
    usable,
)
from carbonwrap.runlog.ledger import co2e_g


def series(
    per_unit_s: list[float], per_unit_j: list[float], total: float | None, *, start: bool = False
) -> list[Point]:
    """Reports at the end of each unit (and at 0 done first, if `start`), after 7 s of start-up
    that used 70 J."""
    t, e = 7.0, 70.0
    points = [Point(t, 0, total, e)] if start else []
    for done, (dt, de) in enumerate(zip(per_unit_s, per_unit_j, strict=True), start=1):
        t += dt
        e += de
        points.append(Point(t, done, total, e))
    return points


def test_constant_rate_is_exact_and_certain() -> None:
    e = estimate(series([10.0] * 4, [100.0] * 4, 10))
    assert e is not None
    # Start-up (7 s, 70 J) and the first epoch happened before the first report: left out.
    assert e.duration_s == pytest.approx(47 + 6 * 10)
    assert e.energy_j == pytest.approx(470 + 6 * 100)
    assert (e.done, e.total, e.units, e.intervals, e.warmup_units) == (4, 10, 3, 3, 0)
    assert e.fraction == pytest.approx(0.4)
    assert e.duration_margin_s == pytest.approx(0.0)
    assert e.energy_margin_j == pytest.approx(0.0)
    assert basis(e, "epoch") == "from 3 epochs"


def test_a_slower_first_epoch_after_a_starting_report_is_left_out_as_warm_up() -> None:
    points = series([60.0, 40.0, 40.0, 40.0], [600.0, 400.0, 400.0, 400.0], 10, start=True)
    e = estimate(points)
    assert e is not None
    assert e.warmup_units == 1 and e.units == 3 and e.intervals == 3
    assert e.duration_s == pytest.approx(points[-1].elapsed_s + 6 * 40)
    assert e.energy_j == pytest.approx(points[-1].energy_j + 6 * 400)
    assert basis(e, "epoch") == "from 3 epochs after a 1-epoch warm-up"


def test_too_few_intervals_keep_the_warm_up() -> None:
    """Two intervals after a starting report: dropping one would leave a single epoch."""
    points = series([60.0, 40.0], [600.0, 400.0], 10, start=True)
    e = estimate(points)
    assert e is not None and e.warmup_units == 0 and e.units == 2
    assert e.duration_s == pytest.approx(points[-1].elapsed_s + 8 * 50)
    assert e.duration_margin_s is None and e.energy_margin_j is None


@pytest.mark.parametrize("seen", [5, 30])
def test_noisy_epochs_are_predicted_within_the_margin_about_95_percent_of_the_time(
    seen: int,
) -> None:
    covered_s = covered_j = 0
    errors = []
    trials = 300
    for seed in range(trials):
        rng = random.Random(seed)
        seconds = [max(1.0, rng.gauss(50, 8)) for _ in range(100)]
        joules = [s * rng.gauss(200, 15) for s in seconds]
        points = series(seconds[:seen], joules[:seen], 100)
        e = estimate(points)
        assert e is not None and e.duration_margin_s is not None and e.energy_margin_j is not None
        true_s, true_j = 7 + sum(seconds), 70 + sum(joules)
        covered_s += abs(e.duration_s - true_s) <= e.duration_margin_s
        covered_j += abs(e.energy_j - true_j) <= e.energy_margin_j
        errors.append(abs(e.duration_s - true_s) / true_s)
    assert 0.88 <= covered_s / trials <= 0.995
    assert 0.88 <= covered_j / trials <= 0.995
    # The median error: a few per cent (4 epochs measured: about 5 %; 29: about 2 %).
    assert sorted(errors)[trials // 2] < (0.08 if seen < 10 else 0.03)


def test_the_latest_total_counts() -> None:
    points = series([10.0] * 4, [100.0] * 4, 10)
    points += [Point(57.0, 5, 20, 570.0)]  # the command found more work: 20 epochs now
    e = estimate(points)
    assert e is not None and e.total == 20
    assert e.duration_s == pytest.approx(57 + 15 * 10)
    assert e.energy_j == pytest.approx(570 + 15 * 100)


def test_done_going_down_starts_the_measurement_afresh() -> None:
    """Resumed from a checkpoint (or a second phase): only the reports since count."""
    first = [Point(10.0 * d, d, 10, 100.0 * d) for d in (1, 2, 3)]
    second = [Point(30.0 + 20.0 * k, d, 10, 300.0 + 50.0 * k) for k, d in enumerate((1, 2, 3, 4))]
    e = estimate(first + second)
    assert e is not None
    assert [p.done for p in usable(first + second)] == [1, 2, 3, 4]
    assert e.duration_s == pytest.approx(90 + 6 * 20)
    assert e.energy_j == pytest.approx(450 + 6 * 50)


def test_a_fraction_only_series_is_the_same_with_total_one() -> None:
    points = [Point(5.0 + 10 * k, k / 10, 1.0, 30.0 * k) for k in range(1, 5)]
    e = estimate(points)
    assert e is not None
    assert e.duration_s == pytest.approx(5 + 100)
    assert e.energy_j == pytest.approx(300)
    assert e.fraction == pytest.approx(0.4)
    assert basis(e, "fraction") == "from 30 % of the work"
    start = [Point(0.0, 0.0, 1.0, 0.0), *points]
    e = estimate(start)
    assert e is not None
    assert basis(e, "fraction") == "from 30 % of the work after a warm-up of 10 %"


def test_no_prediction_without_a_total_or_without_two_reports() -> None:
    assert estimate([]) is None
    assert estimate(series([10.0] * 4, [1.0] * 4, None)) is None
    assert estimate(series([10.0] * 4, [1.0] * 4, 0)) is None
    assert estimate(series([10.0] * 4, [1.0] * 4, math.nan)) is None
    assert estimate(series([10.0], [1.0], 10)) is None
    assert estimate([Point(1.0, 3, 10, 1.0), Point(2.0, 3, 10, 2.0)]) is None  # no work done


def test_repeated_reports_keep_the_first_and_bad_points_are_skipped() -> None:
    points = [
        Point(10.0, 1, 10, 100.0),
        Point(20.0, 2, 10, 200.0),
        Point(25.0, 2, 10, 250.0),  # the same epoch again, later: it was reached at 20 s
        Point(math.nan, 3, 10, 300.0),
        Point(30.0, 3, 10, 300.0),
        Point(29.0, 4, 10, 400.0),  # time went back
        Point(40.0, -1, 10, 400.0),
    ]
    assert [p.elapsed_s for p in usable(points)] == [10.0, 20.0, 30.0]
    e = estimate(points)
    assert e is not None and e.duration_s == pytest.approx(100)


def test_done_beyond_the_total_predicts_what_has_been_used() -> None:
    e = estimate([Point(10.0, 1, 2, 100.0), Point(20.0, 3, 2, 250.0)])
    assert e is not None
    assert (e.duration_s, e.energy_j, e.remaining_s, e.remaining_j) == (20.0, 250.0, 0.0, 0.0)
    assert e.fraction == 1.0


def test_mean_intensity_over_the_remaining_window() -> None:
    forecast = [(100.0, 200.0, 300.0), (200.0, 300.0, 100.0)]
    assert mean_intensity(forecast, 100, 300, 999) == (200.0, 1.0)
    assert mean_intensity(forecast, 150, 250, 999) == (200.0, 1.0)
    # Half the window beyond the forecast: the current value there.
    assert mean_intensity(forecast, 200, 400, 500) == (300.0, 0.5)
    assert mean_intensity([], 0, 10, 250) == (250.0, 0.0)
    # A gap in the middle, unordered input, overlaps (the earlier window's value counts).
    gap = [(300.0, 400.0, 100.0), (0.0, 100.0, 100.0), (50.0, 150.0, 700.0)]
    assert mean_intensity(gap, 0, 400, 400) == pytest.approx(
        ((100 + 50 * 7 + 150 * 4 + 100) * 100 / 400, 0.625)
    )
    assert mean_intensity(forecast, 250, 250, 999) == (100.0, 1.0)  # nothing left: value now
    assert mean_intensity(forecast, 50, 50, 999) == (999.0, 0.0)
    bad = [(0.0, math.inf, 1.0), (10.0, 5.0, 1.0), (0.0, 10.0, math.nan), (0.0, 10.0, -1.0)]
    assert mean_intensity(bad, 0, 10, 42) == (42.0, 0.0)


def test_co2e_of_energy() -> None:
    assert co2e_g(3.6e6, 1.5, 200) == pytest.approx(300)


def test_energy_at_a_report_between_readings() -> None:
    readings = [(1.0, 10.0), (2.0, 30.0), (4.0, 70.0)]
    assert energy_at(readings, 0.5) == pytest.approx(5.0)  # from the start (0 s, 0 J)
    assert energy_at(readings, 1.5) == pytest.approx(20.0)
    assert energy_at(readings, 3.0) == pytest.approx(50.0)
    assert energy_at(readings, 2.0) == pytest.approx(30.0)
    # After the last reading: its power (20 W) carries on, for at most the 2 s between the two.
    assert energy_at(readings, 5.0) == pytest.approx(90.0)
    assert energy_at(readings, 9.0) == pytest.approx(110.0)
    assert energy_at([(1.0, 10.0)], 3.0) == 10.0
    assert energy_at([(1.0, 10.0), (2.0, 5.0)], 3.0) == 5.0  # a counter going down: no power
    assert energy_at([], 3.0) == 0.0
    assert energy_at([(1.0, 10.0), (1.0, 12.0), (2.0, 20.0)], 1.0) == pytest.approx(12.0)
