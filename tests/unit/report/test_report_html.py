"""`carbonwrap report --html FILE` in process, over logs written by the real log writer: only
the most recent runs charted, long runs thinned, every point priced as a fold of every record,
a killed run drawn to its last sample."""

from __future__ import annotations

import io
import math
from pathlib import Path

from conftest import records
from html_page import Page
from training_log import T0, write_log

from carbonwrap.commands.report import ReportOptions, report
from carbonwrap.report.read import summarize_log
from carbonwrap.report.series import MAX_CHARTS, MAX_POINTS, read_series
from carbonwrap.runlog.summary import Fold


def test_only_the_most_recent_runs_are_charted(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for i in range(MAX_CHARTS + 3):
        write_log(logs, f"run{i:08d}", t0=T0 + 60 * i, samples=3, measured=False,
                  argv=["python", "step.py", str(i)])  # fmt: skip
    target = tmp_path / "r.html"
    assert report(ReportOptions(paths=[logs], html=str(target)), {}, io.StringIO(),
                  io.StringIO()) == 0  # fmt: skip
    text = target.read_text()
    page = Page(text)
    assert len(page.all("tr")) == 1 + MAX_CHARTS + 3 + 1  # the table has every run
    sections = page.all("section")
    assert len(sections) == MAX_CHARTS
    assert f"The {MAX_CHARTS} most recent runs" in text and "3 earlier runs left out" in text
    assert "step.py 3</code>" in text and "step.py 2</code>" not in text  # the oldest left out
    assert len(text) < 600_000


def test_a_long_run_is_thinned_and_still_ends_at_its_co2e(tmp_path: Path) -> None:
    log = write_log(tmp_path, "long00000001", samples=5000, step_s=10)  # 14 h, measured history
    series = read_series(log)
    assert series is not None and series.samples == 5000
    assert len(series.elapsed_s) <= MAX_POINTS + 2
    assert series.elapsed_s[-1] == 50_000
    assert math.isclose(series.co2e_g[-1], summarize_log(log).co2e_g, rel_tol=1e-9)
    # Mean power over the thinned intervals still adds up to the energy.
    for name, power in series.power_w.items():
        spans = [b - a for a, b in zip(series.elapsed_s, series.elapsed_s[1:], strict=False)]
        energy = sum(p * s for p, s in zip(power, spans, strict=True))
        assert math.isclose(energy, summarize_log(log).components[name].energy_j or 0, rel_tol=1e-9)


def test_skipping_samples_prices_every_point_as_a_fold_of_every_record(tmp_path: Path) -> None:
    """The series parses only the samples the fold needs; a fold of every record (measured
    history first, as the series does) gives the same CO2e at each point drawn."""
    log = write_log(tmp_path, "every0000001", samples=2000, step_s=9)  # buckets split points
    series = read_series(log)
    assert series is not None
    everything = records(log)
    fold = Fold()
    for r in [everything[0], *(r for r in everything if r.get("kind") == "measured")]:
        fold.add(r)
    at_samples = []
    for r in everything[1:]:
        if r.get("kind") != "measured":
            fold.add(r)
        if r["type"] in ("sample", "end"):
            at_samples.append((fold.s.duration_s, fold.summary().co2e_g))
    every = math.ceil(len(at_samples) / MAX_POINTS)
    drawn = [at_samples[i] for i in range(len(at_samples))
             if i % every == every - 1 or i == len(at_samples) - 1]  # fmt: skip
    assert [t for t, _ in drawn] == series.elapsed_s[1:]
    for (_, expected), got in zip(drawn, series.co2e_g[1:], strict=True):
        assert math.isclose(got, expected, rel_tol=1e-9)


def test_a_killed_run_is_drawn_to_its_last_sample(tmp_path: Path) -> None:
    log = write_log(tmp_path, "killed000001", samples=30, end=False, measured=False)
    series = read_series(log)
    assert series is not None and series.elapsed_s[-1] == 300
    target = tmp_path / "r.html"
    report(ReportOptions(paths=[tmp_path], html=str(target)), {}, io.StringIO(), io.StringIO())
    assert "No end record (killed, or still running)" in target.read_text()
