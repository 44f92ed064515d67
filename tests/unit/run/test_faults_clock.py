"""The wall clock jumps forwards and backwards during a run (NTP stepping, a VM resumed, an
admin's `date -s`): durations come from the monotonic clock, timestamps from the wall clock,
and the CO2e stays the energy times the intensity.

The run is carbonwrap's own `run.run` in this process with a real command, cgroup and sensors;
only `time.time` is replaced by a clock that jumps +2 days, then -3 days, while the command
runs. (libfaketime, the way to do this to a whole program, cannot fake only the wall clock for
Python: with FAKETIME_DONT_FAKE_MONOTONIC=1 every time.sleep fails with EINVAL in 0.9.10.)"""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import logs_in, records
from log_records import assert_same, fold_all

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.measure.accounting import open_accounting
from carbonwrap.report.read import summarize_log
from carbonwrap.run.options import RunOptions
from carbonwrap.run.phases import run
from carbonwrap.runlog.records import parse_utc

DAY_S = 86_400.0
REAL_TIME = time.time


class JumpingClock:
    """time.time as the wall clock shows it: +2 days after `first_s` of monotonic time, then
    -3 days (one day before the truth) after `second_s`."""

    def __init__(self, first_s: float, second_s: float) -> None:
        self.t0 = time.monotonic()
        self.first_s, self.second_s = first_s, second_s

    def offset_s(self) -> float:
        since = time.monotonic() - self.t0
        return 0.0 if since < self.first_s else 2 * DAY_S if since < self.second_s else -DAY_S

    def __call__(self) -> float:
        return REAL_TIME() + self.offset_s()


@pytest.fixture
def restore_signals() -> Iterator[None]:
    handled = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1)
    saved = {s: signal.getsignal(s) for s in (*handled, signal.SIGUSR2)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_durations_are_monotonic_and_co2e_whole_across_wall_clock_jumps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_signals: None
) -> None:
    clock = JumpingClock(0.4, 0.8)
    monkeypatch.setattr(time, "time", clock)
    burn = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"
    options = RunOptions(
        command=("sh", "-c", f"sleep 1.2; {burn}"),
        interval_s=0.05,
        log_interval_s=0.1,
        log_dir=str(tmp_path / "logs"),
        intensity_g_per_kwh=200.0,
        pue=1.5,
        json_path=str(tmp_path / "r.json"),
        quiet=True,
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CARBONWRAP_")}
    environ["XDG_CONFIG_HOME"] = "/nonexistent"
    mono_start = time.monotonic()
    code = run(options, environ, io.StringIO(), open_accounting("auto", "clock"))
    real_elapsed = time.monotonic() - mono_start
    monkeypatch.undo()
    assert code == 0
    (log,) = logs_in(tmp_path / "logs")
    recs = records(log)
    end = recs[-1]
    assert end["type"] == "end"
    # Durations: the monotonic clock's, not the wall clock's 2-day and 1-day jumps.
    assert 1.2 <= end["elapsed_s"] <= real_elapsed
    elapsed = [r["elapsed_s"] for r in recs if "elapsed_s" in r and r["type"] == "sample"]
    assert elapsed == sorted(elapsed) and len(elapsed) >= 5
    # Timestamps: the wall clock's, jumps and all.
    times = [t for r in recs if r["type"] == "sample" and (t := parse_utc(r["time"]))]
    assert max(times) - min(times) > 2.5 * DAY_S
    # CO2e: every joule priced once, at the intensity in force (static here), PUE included.
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["duration_s"] == pytest.approx(end["elapsed_s"])
    expected_kg = document["energy_kwh"]["total"] * 1.5 * 200.0 / 1000
    assert document["co2e_kg"] == pytest.approx(expected_kg, rel=1e-9)
    # The report reads the log as the run folded it: the fast path and a full fold agree.
    summary = summarize_log(log)
    assert_same(summary, fold_all(log))
    assert summary is not None and summary.duration_s == end["elapsed_s"]
    out = io.StringIO()
    assert report(ReportOptions(paths=[log], output_format="json"), {}, out, io.StringIO()) == 0
    totals = json.loads(out.getvalue())["totals"]
    assert totals["co2e_kg"] == pytest.approx(expected_kg, rel=1e-9)
