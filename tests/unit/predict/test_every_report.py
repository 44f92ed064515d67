"""The predictor sees every progress report, not the log's rate-limited subset: the warm-up is
the real first unit, the live line follows the estimate (at most once a second) with its
margin and an ETA, the log keeps at most one prediction per log interval; a run's report at
all of the work (M of M; `Epoch M/M` and a clean exit) makes its predictions comparable, and a
zero margin is never claimed where the actual contradicts it."""

from __future__ import annotations

import io
import itertools
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from carbonwrap.predict.channel import Observer, ProgressChannel, RateLimiter
from carbonwrap.predict.messages import Report
from carbonwrap.predict.predictor import Predictor
from carbonwrap.render.prediction import live_text, prediction_document, report_facts
from carbonwrap.run.context import RunContext
from carbonwrap.run.options import RunOptions
from carbonwrap.runlog import records as events
from carbonwrap.runlog.recorder import Recorder
from carbonwrap.runlog.summary import Fold, RunSummary
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def start_record() -> dict[str, Any]:
    return events.start(
        run_id="r",
        time_s=T0,
        argv=["train"],
        cwd="/",
        host="h",
        pid=1,
        versions={},
        cpu_accounting="cgroup2",
        components={"cpu": {"method": "rapl"}},
        region={"code": "DK"},
        pue=1.0,
        interval_s=1,
        log_interval_s=10,
        job={},
        tags={},
    )


def recorder(tmp_path: Path) -> Recorder:
    record = Recorder(EventLog(str(tmp_path), "run.jsonl"))
    record(start_record())
    record(
        events.intensity(time_s=T0, elapsed_s=0, intensity_g_per_kwh=200.0, region="DK", source="t")
    )
    return record


def logged(record: Recorder, kind: str) -> list[dict[str, Any]]:
    import json

    record.log.close()
    lines = Path(record.log.path).read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["type"] == kind]


# --- the channel's limiter: every report to its observers, the log rate-limited ---------------


def test_every_report_reaches_the_watchers_and_the_log_stays_rate_limited() -> None:
    logged_reports: list[float] = []
    seen: list[tuple[Any, ...]] = []
    limiter = RateLimiter(10.0, lambda report, at_s: logged_reports.append(report.done))
    limiter.watch(Observer(lambda *args: seen.append(args), "channel"))
    for step in range(1, 101):
        limiter.offer(Report(step, 100, "step"), 0.1 * step)
    limiter.finish()
    assert [args[0] for args in seen] == list(range(1, 101))
    assert seen[0][3:] == ("channel", 0.1)
    assert logged_reports == [1, 100]  # the first at once, the last at the end


def test_the_same_observer_is_added_once() -> None:
    seen: list[float] = []

    def on_report(*args: Any) -> None:
        seen.append(args[0])

    limiter = RateLimiter(10.0, lambda report, at_s: None, Observer(on_report, "output"))
    limiter.watch(Observer(on_report, "output"))  # already given: not a second time
    limiter.watch(Observer(on_report, "channel"))  # another source: another observer
    limiter.offer(Report(1, 10, "epoch"), 0.0)
    assert seen == [1, 1]


# --- the predictor, fed every report ------------------------------------------------------------


class Run:
    """A predictor over a real log, fed reports directly (every one), a fake clock and a tree
    that uses 100 W; its predictions shown as the run shows them (`Fold.see_prediction`)."""

    def __init__(self, tmp_path: Path, log_interval_s: float = 10.0) -> None:
        self.clock = Clock()
        self.record = recorder(tmp_path)
        self.predictor = Predictor(
            self.record,
            lambda: (self.clock.now, 100.0 * self.clock.now),
            lambda: self.record.locked(Fold.so_far),
            1.0,
            T0,
            log_interval_s,
            self.clock,
            clock=self.clock,
            wall=lambda: T0 + self.clock.now,
        )
        self.heard: list[dict[str, Any]] = []
        self.predictor.listeners.append(self.heard.append)
        self.predictor.listeners.append(
            lambda p: self.record.locked(lambda fold: fold.see_prediction(p))
        )

    def report(self, t: float, done: float, total: float, unit: str = "epoch") -> None:
        self.clock.now = t
        self.predictor.report(done, total, unit, "channel", t)


def test_the_warm_up_is_the_first_unit_of_every_report(tmp_path: Path) -> None:
    """Epochs of 2 s after a first one of 10 s (compilation): 0 at 0 s, 1 at 10 s, then one
    every 2 s. Every report counts, so the warm-up is the first epoch and the rate is exact."""
    run = Run(tmp_path, log_interval_s=30.0)
    run.report(0.0, 0, 20)
    for epoch in range(1, 11):
        run.report(8.0 + 2.0 * epoch, epoch, 20)
    run.predictor.flush()
    last = logged(run.record, "prediction")[-1]
    assert last["basis"] == "from 9 epochs after a 1-epoch warm-up"
    assert last["duration_s"] == pytest.approx(28.0 + 10 * 2.0)
    assert last["energy_j"] == pytest.approx(100.0 * 48.0)


def test_listeners_follow_every_second_the_log_every_interval(tmp_path: Path) -> None:
    """Steps every 0.25 s for 60 s, a log interval of 20 s: an estimate at most once a second
    for the budget and the live line, a prediction record at most once per 20 s (and at the
    first, 25/50/75 % and the last)."""
    run = Run(tmp_path, log_interval_s=20.0)
    shown: list[float] = []
    for step in range(0, 241):
        run.report(0.25 * step, step, 480, "step")
        latest = run.record.locked(lambda fold: fold.latest_prediction)
        if latest is not None and (not shown or latest["done"] != shown[-1]):
            shown.append(latest["done"])
    run.predictor.flush()
    heard_at = [p["elapsed_s"] for p in run.heard]
    # Once a second; the flush's, at the end, may come sooner.
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(heard_at[:-1]))
    assert len(run.heard) >= 55  # about one a second
    assert len(shown) >= 55  # the live line follows them
    found = logged(run.record, "prediction")
    assert len(found) <= 2 + 60 / 20 + 2  # first, every 20 s, 25 % (at 30 s), last
    assert found[0]["done"] == 1  # the first estimate: two reports


def test_the_live_line_has_the_margin_and_an_eta(tmp_path: Path) -> None:
    run = Run(tmp_path, log_interval_s=1e9)
    for step in range(0, 41):  # uneven steps: a margin
        run.report(step * 1.0 + (0.3 if step % 2 else 0.0), step, 100, "step")
    fold_latest = run.record.locked(lambda fold: fold.latest_prediction)
    assert fold_latest is not None
    assert fold_latest["done"] >= 39  # not the first logged prediction: the newest one
    text = live_text(fold_latest, None, 40.5)
    assert text is not None
    margin = 100 * fold_latest["co2e_margin_g"] / fold_latest["co2e_g"]
    assert round(margin) >= 1
    assert f" ±{margin:.0f} % at {100 * fold_latest['fraction']:.0f} %" in text, text
    left = fold_latest["duration_s"] - 40.5
    assert text.endswith(f", ETA {left:.0f} s"), text


def test_the_live_line_claims_no_zero_margin_and_no_eta_once_done() -> None:
    p = {
        "energy_j": 3.6e6,
        "co2e_g": 400.0,
        "fraction": 0.5,
        "duration_s": 100.0,
        "co2e_margin_g": 0.0,
        "energy_margin_j": 0.0,
    }
    assert live_text(p, None, 60.0) == "→ predicted 1.00 kWh, 400 g at 50 %, ETA 40 s"
    assert live_text({**p, "co2e_margin_g": None}, None, 60.0) == (
        "→ predicted 1.00 kWh, 400 g at 50 %, ETA 40 s"
    )
    assert live_text({**p, "co2e_margin_g": 48.0}, None, 60.0) == (
        "→ predicted 1.00 kWh, 400 g ±12 % at 50 %, ETA 40 s"
    )
    # Its intensity 0: the energy's margin.
    assert live_text({**p, "co2e_g": 0.0, "energy_margin_j": 3.6e5}, None, 100.0) == (
        "→ predicted 1.00 kWh, 0 g ±10 % at 50 %"
    )


def test_a_clean_exit_after_epoch_m_of_m_completes_the_work(tmp_path: Path) -> None:
    run = Run(tmp_path)
    assert run.predictor.exit_report() is None
    run.predictor.report(0, 5, "epoch", "output", 0.0)
    run.predictor.report(4, 5, "epoch", "output", 4.0)  # "Epoch 5/5": epoch 5 starting
    assert run.predictor.exit_report() == (5, 5, "epoch")
    run.predictor.report(4, 5, "epoch", "channel", 4.5)  # the command's own report: as said
    assert run.predictor.exit_report() is None
    run.predictor.report(5, 5, "epoch", "output", 5.0)  # a bar at its total, read as 5 of 5
    assert run.predictor.exit_report() is None


# --- the run's wiring: every report of the channel reaches the predictor ------------------------


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """A short directory: a socket's path must fit in 107 bytes."""
    path = tempfile.mkdtemp(prefix="cwe-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class FakeSampler:
    """The tree uses 50 W from `t0` on."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def energy_now(self) -> tuple[float, float]:
        now = time.monotonic()
        return now, 50.0 * (now - self.t0)


def test_the_channel_of_a_run_feeds_every_report_to_the_predictor(
    tmp_path: Path, short_tmp: str
) -> None:
    """A RunContext's channel, as `phases.open_progress` makes it: 0 to 30 epochs within one
    log interval reach the predictor (warm-up: the first epoch), while the log holds the
    first report and the last. Before: the predictor saw those two only ("from 30 epochs")."""
    options = RunOptions(command=("train",), log_interval_s=60.0)
    acct: Any = SimpleNamespace(finish=lambda: [])
    run = RunContext(options, {}, io.StringIO(), "r", acct, [])
    run.record = recorder(tmp_path)
    run.t0 = time.monotonic()
    run.sampler = FakeSampler(run.t0)  # type: ignore[assignment]
    run.record.observers.append(run.predictions)
    run.channel = ProgressChannel(short_tmp, "r", run.on_progress, options.log_interval_s)
    channel = run.channel
    channel.start()
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for epoch in range(0, 31):
            sender.sendto(f"epoch {epoch}/30".encode(), channel.path)  # blocking: none lost
            time.sleep(0.04 if epoch == 0 else 0.01)  # the first epoch the slowest
        deadline = time.monotonic() + 20
        while channel.limiter.reports < 31:
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        sender.close()
        channel.close(run.warn)
    run.predictions.flush()  # no clean exit known: nothing added
    progress = logged(run.record, "progress")
    assert [p["done"] for p in progress] == [0, 30]
    last = logged(run.record, "prediction")[-1]
    assert last["basis"] == "from 29 epochs after a 1-epoch warm-up", last
    assert last["fraction"] == 1.0


# --- the report: all of the work, and margins the actual bears out -------------------------------


def summary(
    done: float, total: float, co2e_g: float, margin_g: float | None, actual_g: float
) -> RunSummary:
    s = RunSummary(complete=True, exit_code=0, duration_s=100.0, co2e_g=actual_g)
    entry = {
        "elapsed_s": 99.0,
        "report_elapsed_s": 98.0,
        "done": done,
        "total": total,
        "unit": "step",
        "fraction": min(1.0, done / total),
        "duration_s": 100.0,
        "energy_j": 3.6e6,
        "co2e_g": co2e_g,
        "duration_margin_s": None,
        "energy_margin_j": None,
        "co2e_margin_g": margin_g,
        "intensity_g_per_kwh": 100.0,
        "intensity_basis": "current",
        "basis": "from 9 steps",
        "intervals": 9,
    }
    s.predictions = {"first": entry, "last": entry}
    return s


def test_all_of_the_work_is_done_equal_to_total() -> None:
    document = prediction_document(summary(10_000, 10_000, 400.0, 0.0, 400.0))
    assert document is not None and document["comparable"]
    document = prediction_document(summary(9_995, 10_000, 400.0, 2.0, 400.0))
    assert document is not None and not document["comparable"]
    assert document["not_comparable_because"] == "the last report was at 99 % of the work"


def test_a_zero_margin_is_claimed_only_where_the_actual_bears_it_out() -> None:
    def margin_shown(s: RunSummary) -> str:
        return next(text for _, text in report_facts(s) if text.startswith("at "))

    assert "(± 0 %); CO2e −0 % vs actual" in margin_shown(summary(10, 10, 400.0, 0.0, 400.5))
    contradicted = margin_shown(summary(10, 10, 400.0, 0.0, 412.0))
    assert "±" not in contradicted and contradicted.endswith("; CO2e −3 % vs actual")
    assert "(± 5 %); CO2e −3 % vs actual" in margin_shown(summary(10, 10, 400.0, 20.0, 412.0))
    unfinished = summary(8, 10, 400.0, 0.1, 412.0)
    assert "±" not in margin_shown(unfinished)  # 0 % of what is still to come: not said


def test_reports_between_readings_take_their_energy_from_the_readings_around_them(
    tmp_path: Path,
) -> None:
    """Reports every 0.1 s, readings every 2 s (the sampler's --interval), 100 W throughout:
    a report's energy is first carried ahead from the readings before it, then, once the next
    reading has come, put between the two. Every report counting, the energy per step is even
    and the margin small (before: the steps of the readings showed as noise, ±100 % and
    more)."""
    run = Run(tmp_path, log_interval_s=1e9)
    interval_s = 2.0

    def reading() -> tuple[float, float]:
        read_at = interval_s * (run.clock.now // interval_s)
        return read_at, 100.0 * read_at

    run.predictor._reading = reading
    for step in range(0, 201):
        run.report(0.1 * step + 0.05, step, 400, "step")
    run.predictor.flush()
    last = run.heard[-1]
    assert last["energy_j"] == pytest.approx(100.0 * 40.05, rel=0.01)
    assert last["energy_margin_j"] < 0.02 * last["energy_j"], last
    assert last["duration_s"] == pytest.approx(40.05)


def test_no_prediction_before_the_first_interval_is_read(tmp_path: Path) -> None:
    """Every report counting, the second may come before the sampler's first reading after
    its start: no report's energy is known yet, so no prediction (not one of 0 J, which the
    log would keep as the first); the flush's reading, after the end, gives them theirs."""
    run = Run(tmp_path)
    latest = [(0.0, 0.0)]  # the sampler's reading at its start; the next at the end
    run.predictor._reading = lambda: latest[-1]
    for step in range(0, 11):
        run.report(0.05 * step + 0.01, step, 10, "step")
    assert run.heard == []
    latest.append((0.6, 60.0))  # 100 W
    run.predictor.flush()
    (only,) = logged(run.record, "prediction")
    assert only["energy_j"] == pytest.approx(100.0 * 0.51)
    assert only["fraction"] == 1.0


def test_the_last_report_after_the_last_estimate_is_in_the_flush(tmp_path: Path) -> None:
    """The report of all the work comes 0.2 s after an estimate (the next is a second away):
    the flush's prediction rests on it, and the run's predictions are comparable."""
    run = Run(tmp_path)
    for epoch in range(0, 10):
        run.report(1.0 * epoch, epoch, 10)
    assert run.heard[-1]["done"] == 9
    run.report(9.2, 10, 10)
    assert run.heard[-1]["done"] == 9  # not estimated yet: less than a second since
    run.predictor.flush()
    run.record(
        events.end(
            time_s=T0 + 9.3,
            elapsed_s=9.3,
            exit_code=0,
            signal=None,
            cpu_s=9.3,
            energy_j={"cpu": 930.0},
            device_energy_j={"cpu": 930.0},
            leftover_pids=[],
            signals_received=[],
        )
    )
    s = run.record.fold.summary()
    assert s.predictions["last"]["done"] == 10
    document = prediction_document(s)
    assert document is not None and document["comparable"], document
