"""--budget in pieces: parsing amounts, the confidence rule, the watch fed records in-process,
and the stopper with real processes (SIGTERM, the grace period, SIGKILL)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from carbonwrap.measure.sampler import Totals
from carbonwrap.quantities import Budget, parse_budget
from carbonwrap.run.budget import PIN_AT_ONCE, BudgetWatch, Stopper, confident
from carbonwrap.settings.catalog import BY_KEY


@pytest.mark.parametrize(
    ("text", "quantity", "limit", "normal"),
    [
        ("500g", "co2e", 500.0, "500 g"),
        (" 500 g ", "co2e", 500.0, "500 g"),
        ("2kg", "co2e", 2000.0, "2 kg"),
        ("2 KG", "co2e", 2000.0, "2 kg"),
        ("1.5t", "co2e", 1.5e6, "1.5 t"),
        ("500 gCO2e", "co2e", 500.0, "500 g"),
        ("0.25 kg CO2e", "co2e", 250.0, "0.25 kg"),
        (".5kg", "co2e", 500.0, "0.5 kg"),
        ("1e3 g", "co2e", 1000.0, "1000 g"),
        ("1234567 g", "co2e", 1234567.0, "1234567 g"),
        ("5kWh", "energy", 1.8e7, "5 kWh"),
        ("5 kwh", "energy", 1.8e7, "5 kWh"),
        ("800Wh", "energy", 2.88e6, "800 Wh"),
        ("1 MWh", "energy", 3.6e9, "1 MWh"),
        ("3.6MJ", "energy", 3.6e6, "3.6 MJ"),
        ("2 kJ", "energy", 2000.0, "2 kJ"),
        ("1J", "energy", 1.0, "1 J"),
    ],
)
def test_amounts_with_units(text: str, quantity: str, limit: float, normal: str) -> None:
    budget = parse_budget(text)
    assert budget == Budget(quantity, pytest.approx(limit), normal)
    assert parse_budget(budget.text) == budget  # the normal form reads back the same


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "is not an amount with a unit"),
        ("lots", "is not an amount with a unit"),
        ("-5 g", "is not an amount with a unit"),
        ("500", "needs a unit (CO2e: g, kg, t; energy: J, kJ, MJ, Wh, kWh, MWh)"),
        ("500 CO2e", "needs a unit"),
        ("5kW", "has an unknown unit 'kW'"),
        ("5 mwh", "has an unknown unit 'mwh'"),  # milli or mega? write MWh
        ("3 lb", "has an unknown unit 'lb'"),
        ("5 kWh CO2e", "mixes energy (kWh) with CO2e"),
        ("0 g", "must be more than 0"),
        ("1e999 kg", "is too large"),
        (500, 'must be an amount with a unit, e.g. "500 g" or "5 kWh"'),
        ("5 g\x1b[2J", "has an unknown unit 'g\\x1b[2J'"),
    ],
)
def test_bad_amounts_say_why(value: Any, why: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_budget(value)
    assert str(raised.value).startswith(why)


def test_the_setting_normalises() -> None:
    assert BY_KEY["budget"].parse("2KG") == "2 kg"
    assert BY_KEY["on_exceed"].parse("stop") == "stop"
    assert BY_KEY["budget_grace"].default == 10.0
    with pytest.raises(ValueError, match="must be one of warn, stop"):
        BY_KEY["on_exceed"].parse("kill")


def prediction(**values: Any) -> dict[str, Any]:
    base = {
        "intervals": 3,
        "fraction": 0.1,
        "co2e_g": 900.0,
        "co2e_margin_g": 100.0,
        "energy_j": 9e6,
        "energy_margin_j": 1e6,
    }
    return {**base, **values}


def test_a_prediction_is_acted_on_only_when_it_rests_on_enough() -> None:
    assert confident(prediction(), "co2e") and confident(prediction(), "energy")
    assert not confident(prediction(intervals=2), "co2e")
    assert not confident(prediction(fraction=0.09), "co2e")
    assert not confident(prediction(co2e_margin_g=None), "co2e")
    assert not confident(prediction(intervals=True), "co2e")


class Watched:
    """A BudgetWatch with its records, its lines and a stopper over fake signals; the CO2e at
    any energy is `co2e_g` (the energies it was asked about in `priced`)."""

    def __init__(self, text: str, on_exceed: str = "warn", co2e_g: float = 0.0) -> None:
        self.records: list[dict[str, Any]] = []
        self.said: list[str] = []
        self.signals: list[int] = []
        self.co2e_g = co2e_g
        self.priced: list[float] = []
        self.watch = BudgetWatch(
            parse_budget(text),
            on_exceed,
            self.records.append,
            self._co2e_at_g,
            self.said.append,
            lambda: 12.0,
            (4242, self._send, lambda: []),
            grace_s=3600.0,
        )

    def _co2e_at_g(self, energy_j: float) -> float:
        self.priced.append(energy_j)
        return self.co2e_g

    def _send(self, signum: int) -> bool:
        self.signals.append(signum)
        return True

    def sample(self, energy_j: float, elapsed_s: float = 3723.0) -> None:
        """One reading of the sampler (logged or not: the watch sees each one)."""
        self.watch.on_reading(
            Totals(elapsed_s, 1.0, {"cpu": energy_j / 2, "gpu": energy_j / 2}, {})
        )


def test_warn_once_per_basis_and_go_on() -> None:
    w = Watched("1 kWh")
    assert w.watch.set_record()["limit_energy_j"] == 3.6e6
    w.sample(3.5e6)
    assert w.records == [] and w.said == []
    w.watch.on_prediction(prediction(energy_j=3.9e6, energy_margin_j=0.4e6))  # low end 3.5 MJ
    assert w.records == []
    w.watch.on_prediction(prediction(energy_j=5e6, fraction=0.25))
    w.watch.on_prediction(prediction(energy_j=6e6, fraction=0.3))
    w.sample(3.7e6)
    w.sample(3.8e6)
    assert [r["basis"] for r in w.records] == ["predicted", "actual"]
    assert w.records[0]["message"] == "budget 1 kWh exceeded (predicted 1.39 kWh at 25 %)"
    assert w.records[1]["message"] == "budget 1 kWh exceeded (actual 1.03 kWh at 1 h 02 min)"
    assert w.records[1]["energy_j"] == 3.7e6 and w.records[1]["action"] == "warn"
    assert w.said[1] == (
        "budget 1 kWh exceeded (actual 1.03 kWh at 1 h 02 min); the command goes on "
        "(--on-exceed warn)"
    )
    assert w.watch.stopped is None and w.signals == []


def test_stop_once_on_the_actual_co2e() -> None:
    w = Watched("500 g", "stop", co2e_g=499.0)
    w.sample(1.0)
    assert w.records == []
    w.co2e_g = 503.0
    w.sample(2.0)
    w.sample(3.0)
    assert w.priced == [1.0, 2.0]  # the reading's energy priced; not again once exceeded
    w.watch.on_prediction(prediction(co2e_g=5000.0))
    assert w.watch.stopped == "budget 500 g CO2e exceeded (actual 503 g at 1 h 02 min)"
    assert len(w.records) == 1 and w.records[0]["co2e_g"] == 503.0
    assert w.signals == [signal.SIGTERM]
    assert w.said == [
        "budget 500 g CO2e exceeded (actual 503 g at 1 h 02 min): stopping the command "
        "(SIGTERM; SIGKILL after 1 h 00 min)"
    ]
    w.watch.stopper._timer.cancel()  # type: ignore[union-attr]


def test_stop_on_a_confident_prediction() -> None:
    w = Watched("500 g", "stop")
    w.watch.on_prediction(prediction(co2e_g=1200.0, co2e_margin_g=100.0, fraction=0.25))
    assert w.watch.stopped == "budget 500 g CO2e exceeded (predicted 1.20 kg at 25 %)"
    assert w.records[0]["fraction"] == 0.25
    w.watch.stopper._timer.cancel()  # type: ignore[union-attr]


PYTHON = sys.executable


def start(code: str) -> subprocess.Popen[bytes]:
    """A child that says "ready" once its signal dispositions are set."""
    child = subprocess.Popen([PYTHON, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    return child


IGNORES_TERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def stopper_for(
    child: subprocess.Popen[bytes], grace_s: float, tree: list[int] | None = None
) -> tuple[Stopper, list[list[int]]]:
    killed: list[list[int]] = []

    def send(signum: int) -> bool:
        if child.poll() is not None:
            return False
        os.kill(child.pid, signum)
        return True

    return Stopper(child.pid, send, lambda: list(tree or []), grace_s, killed.append), killed


def test_sigterm_ends_a_child_that_does_not_ignore_it() -> None:
    child = start("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    stopper, killed = stopper_for(child, grace_s=30)
    stopper.stop()
    assert child.wait(timeout=20) == -signal.SIGTERM
    stopper.settle()  # no tree left: returns at once, no SIGKILL
    assert killed == []


def test_sigkill_after_the_grace_period() -> None:
    child = start(IGNORES_TERM)
    stopper, killed = stopper_for(child, grace_s=0.3)
    began = time.monotonic()
    stopper.stop()
    assert child.wait(timeout=20) == -signal.SIGKILL
    assert time.monotonic() - began >= 0.3
    stopper.settle()
    assert killed == [[child.pid]]


def test_the_rest_of_the_tree_gets_the_grace_period_then_sigkill(tmp_path: Path) -> None:
    """The child ends on SIGTERM; a grandchild that ignores it is killed when the grace ends."""
    child = start("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    grandchild = start(IGNORES_TERM)
    stopper, killed = stopper_for(child, grace_s=0.5, tree=[child.pid, grandchild.pid])
    stopper.stop()
    assert child.wait(timeout=20) == -signal.SIGTERM
    time.sleep(0.1)
    assert grandchild.poll() is None  # SIGTERM ignored
    stopper.settle()  # reaps what exits (carbonwrap is a subreaper): Popen may find it gone
    assert grandchild.wait(timeout=20) in (-signal.SIGKILL, 0)
    assert killed == [[grandchild.pid]]
    with pytest.raises(ProcessLookupError):
        os.kill(grandchild.pid, 0)


def test_settle_without_a_stop_does_nothing() -> None:
    child = start(IGNORES_TERM)
    try:
        stopper, killed = stopper_for(child, grace_s=0.1, tree=[child.pid])
        stopper.settle()
        time.sleep(0.2)
        assert child.poll() is None and killed == []
    finally:
        child.kill()
        child.wait()


def test_a_pid_that_left_the_tree_after_it_was_listed_is_not_signalled() -> None:
    """The tree's PIDs are pinned with pidfds and listed again before any signal goes out: a
    PID no longer listed then (its process ended and another took the PID, as in
    tests/unit/measure/test_tree_edges.py) is left alone. Before the fix: SIGTERM to it."""
    child = start("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    other = start("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    listings = [[child.pid, other.pid]]  # the first listing; then the child while it runs

    def tree() -> list[int]:
        return listings.pop() if listings else [child.pid] if child.poll() is None else []

    try:
        killed: list[list[int]] = []
        stopper = Stopper(
            child.pid, lambda s: os.kill(child.pid, s) is None, tree, 30, killed.append
        )
        stopper.stop()
        assert child.wait(timeout=20) == -signal.SIGTERM
        stopper.settle()
        assert other.poll() is None  # not signalled
        assert killed == []
    finally:
        other.kill()
        other.wait()


def test_every_process_of_a_large_tree_gets_sigterm() -> None:
    """More processes than are pinned at once (PIN_AT_ONCE), each listed twice."""
    child = start("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    many = [subprocess.Popen(["sleep", "60"]) for _ in range(PIN_AT_ONCE + 5)]

    def tree() -> list[int]:
        running = [p.pid for p in (child, *many) if p.poll() is None]
        return running + running

    try:
        stopper = Stopper(child.pid, lambda s: os.kill(child.pid, s) is None, tree, 30, print)
        stopper.stop()
        assert child.wait(timeout=20) == -signal.SIGTERM
        assert [p.wait(timeout=20) for p in many] == [-signal.SIGTERM] * len(many)
        stopper.settle()
    finally:
        for p in many:
            p.kill()
            p.wait()


def test_the_sampler_hands_the_watch_every_reading_not_only_the_logged_samples() -> None:
    """One busy CPU at 10 W, a reading every second, a logged sample every 10 s, a budget of
    25 J: the watch hears every reading and stops at 30 J (the first reading over the limit),
    long before the first logged sample (100 J). Before: at the logged samples only."""
    from carbonwrap.measure.attribution import EnergyModel, Reading
    from carbonwrap.measure.sampler import Sampler

    w = Watched("25 J", "stop")
    clock = [0.0]

    def read() -> Reading:
        return Reading(clock[0], clock[0], clock[0])  # the tree busy on one CPU throughout

    model = EnergyModel(cpu_method="estimate", dram_method="estimate", cpu_w_per_cpu=10.0)
    logged: list[Totals] = []
    sampler = Sampler(
        read, model, 1.0, 10.0, logged.append, print, lambda: clock[0], w.watch.on_reading
    )
    while w.watch.stopped is None and clock[0] < 20:
        clock[0] += 1.0
        sampler.step()
    assert w.watch.stopped == "budget 25 J exceeded (actual 30.0 J at 3.0 s)"
    assert logged == [] and w.records[0]["energy_j"] == pytest.approx(30.0)
    assert w.signals == [signal.SIGTERM]
    w.watch.stopper._timer.cancel()  # type: ignore[union-attr]
