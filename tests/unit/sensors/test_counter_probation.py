"""counter_probation: a GPU energy counter judged against power readings, with plain numbers."""

from __future__ import annotations

from carbonwrap.sensors.counter_probation import (
    CounterProbation,
    EnergyPoint,
    jump_reason,
    stuck_reason,
)


def points(*rows: tuple[float, float, float | None]) -> list[EnergyPoint]:
    return [EnergyPoint(*row) for row in rows]


def test_stuck_needs_five_seconds_above_twenty_watts() -> None:
    assert stuck_reason(points((0, 100, 310), (4.9, 100, 310))) is None
    assert stuck_reason(points((0, 100, 310), (5, 100, 310))) == (
        "unchanged for 5 s while drawing 310 W"
    )
    assert stuck_reason(points((0, 100, 20), (60, 100, 20))) is None  # idle: may not move
    assert stuck_reason(points((0, 100, None), (60, 100, None))) is None  # nothing to judge by
    # the mean of the readings that have power
    assert stuck_reason(points((0, 1, 300), (6, 1, None), (12, 1, 320))) == (
        "unchanged for 12 s while drawing 310 W"
    )
    assert stuck_reason(points((0, 1, 300))) is None


def test_jump_needs_three_times_the_power_and_fifty_joules() -> None:
    before = EnergyPoint(10.0, 1000.0, 300.0)
    assert jump_reason(before, EnergyPoint(11.0, 1900.0, 300.0)) is None  # 900 J = 3 x 300 W
    assert jump_reason(before, EnergyPoint(11.0, 1901.0, 300.0)) == (
        "rose 901 J in 1.0 s while drawing 300 W (more than 3 times the power readings)"
    )
    idle = EnergyPoint(10.0, 1000.0, 2.0)
    assert jump_reason(idle, EnergyPoint(11.0, 1050.0, 2.0)) is None  # 50 J: too little to tell
    assert jump_reason(idle, EnergyPoint(11.0, 1051.0, 2.0)) is not None
    assert jump_reason(before, EnergyPoint(11.0, 9e9, None)) is None  # no power to judge by
    assert jump_reason(before, EnergyPoint(11.0, 500.0, 300.0)) is None  # backwards: not a jump


def test_probation_reports_a_reading_only_once_it_can_be_judged() -> None:
    counter = CounterProbation()
    assert counter.observe(EnergyPoint(0.0, 1000.0, 300.0)) is None  # the first: nothing before
    assert counter.observe(EnergyPoint(1.0, 1300.0, 300.0)) == 1300.0
    assert counter.observe(EnergyPoint(2.0, 1300.0, 300.0)) is None  # held back: drawing 300 W
    assert counter.observe(EnergyPoint(3.0, 1900.0, 300.0)) == 1900.0  # it moves again
    assert counter.rejected is None


def test_an_idle_counter_that_does_not_move_is_still_believed() -> None:
    counter = CounterProbation()
    values = [counter.observe(EnergyPoint(t, 50.0, 8.0)) for t in range(0, 30, 3)]
    assert values == [None] + [50.0] * 9
    assert counter.rejected is None


def test_a_stuck_counter_is_rejected_for_the_rest_of_the_run() -> None:
    counter = CounterProbation()
    values = [counter.observe(EnergyPoint(t, 7.0, 310.0)) for t in range(8)]
    assert values == [None] * 8
    assert counter.rejected == "unchanged for 5 s while drawing 310 W"
    assert counter.observe(EnergyPoint(9.0, 5000.0, 310.0)) is None  # moving again changes nothing


def test_an_absurd_jump_is_rejected_at_once() -> None:
    counter = CounterProbation()
    counter.observe(EnergyPoint(0.0, 100.0, 250.0))
    assert counter.observe(EnergyPoint(1.0, 350.0, 250.0)) == 350.0
    assert counter.observe(EnergyPoint(2.0, 10_350.0, 250.0)) is None
    assert counter.rejected is not None and counter.rejected.startswith("rose 10000 J in 1.0 s")
    assert counter.observe(EnergyPoint(3.0, 10_600.0, 250.0)) is None


def test_a_counter_going_backwards_is_reported_for_the_attribution_to_refuse() -> None:
    counter = CounterProbation()
    counter.observe(EnergyPoint(0.0, 1000.0, 300.0))
    assert counter.observe(EnergyPoint(1.0, 400.0, 300.0)) == 400.0
    assert counter.rejected is None
