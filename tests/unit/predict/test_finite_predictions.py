"""Progress reports the protocol allows never give a prediction that is not a finite number
the log and the fold keep: a prediction of Infinity or NaN is no JSON (the log refuses the
line), and the prediction would be lost without a word."""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from carbonwrap.predict.estimate import Point, estimate, mean_intensity
from carbonwrap.predict.messages import parse_message
from carbonwrap.predict.predictor import Predictor
from carbonwrap.runlog import records
from carbonwrap.runlog.recorder import Recorder
from carbonwrap.runlog.summary import _LARGEST, Fold
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0
# Plain decimals at the edges of what a float holds: the protocol takes any of them.
EDGES = [
    "0", "1", "10", ".5", "5e-324", "1e-300", "2.2250738585072014e-308", "1e30", "1e200",
    "1e308", "1.7976931348623157e308", "123456789012345678901234567890",
]  # fmt: skip
_decimal = st.one_of(
    st.sampled_from(EDGES),
    st.floats(min_value=0, max_value=1e308, allow_nan=False).map(repr),
    st.integers(0, 10**30).map(str),
)


@st.composite
def _report_line(draw: st.DrawFn) -> str:
    """A channel line the protocol allows (messages.py's docstring), any shape."""
    a, b = draw(_decimal), draw(_decimal)
    if float(a) > float(b):
        a, b = b, a
    shape = draw(st.sampled_from(["unit", "count", "json", "fraction", "percent"]))
    if shape == "unit":
        return f"{draw(st.sampled_from(['epoch', 'step', 'x' * 32]))} {a}/{b}"
    if shape == "count":
        return f"{a}/{b}"
    if shape == "json":
        return json.dumps({"done": float(a), "total": float(b), "unit": "step"})
    fraction = min(1.0, float(a) / float(b)) if float(b) > 0 else 0.0
    return f"{100 * fraction!r}%" if shape == "percent" else repr(fraction)


_step_s = st.one_of(  # time between reports: none, tiny, usual, absurd
    st.just(0.0),
    st.sampled_from([5e-324, 1e-300, 1e-9, 1e-3, 1e6, 1e30, 1e300]),
    st.floats(0, 1e4),
)
_step_j = st.one_of(st.just(0.0), st.sampled_from([5e-324, 1e-300, 1e30, 1e300]), st.floats(0, 1e6))
_reports = st.lists(st.tuples(_report_line(), _step_s, _step_j), min_size=2, max_size=12)
# A run's clock: elapsed seconds a log can date (utc_iso), reports at the same moment or close.
_run_step_s = st.one_of(st.just(0.0), st.sampled_from([5e-324, 1e-300, 1e-9]), st.floats(0, 1e5))
_run_reports = st.lists(st.tuples(_report_line(), _run_step_s, _step_j), min_size=2, max_size=12)


def _points(reports: list[tuple[str, float, float]]) -> list[Point]:
    points = []
    elapsed_s = energy_j = 0.0
    for line, step_s, step_j in reports:
        report = parse_message(line)
        assume(report is not None)
        assert report is not None
        elapsed_s, energy_j = elapsed_s + step_s, energy_j + step_j
        assume(math.isfinite(elapsed_s) and math.isfinite(energy_j))
        points.append(Point(elapsed_s, report.done, report.total, energy_j))
    return points


OUTPUTS = {"duration_s", "energy_j", "remaining_s", "remaining_j", "duration_margin_s",
           "energy_margin_j", "elapsed_s", "energy_now_j"}  # fmt: skip


def _sane(value: Any) -> bool:
    return value is None or (math.isfinite(value) and abs(value) <= _LARGEST)


# Found by these tests before the fix: a total of 1e308 (the remaining time overflows: inf), a
# step of 5e-324 (s per unit overflows: inf), spreads whose squares overflow (OverflowError:
# predictions stopped for the rest of the run; NaN margins), steps of 1e-300 (2e300 s: finite,
# but beyond what the fold keeps).
FOUND = [
    [("step 0/1e308", 1.0, 0.0), ("step 1/1e308", 10.0, 10.0)],
    [("0/1", 1.0, 0.0), ("5e-324/1", 1.0, 1.0)],
    [("0/1e308", 0, 0), ("1e-300/1e308", 1, 0), ("2e-300/1e308", 2e200, 0),
     ("3e-300/1e308", 1, 0), ("4e-300/1e308", 2e200, 0)],
    [("0/1", 0, 0), ("1e-300/1", 1, 0), ("2e-300/1", 1, 0), ("3e-300/1", 5, 0),
     ("4e-300/1", 1, 0)],
]  # fmt: skip


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(reports=_reports)
@example(reports=FOUND[0])
@example(reports=FOUND[1])
@example(reports=FOUND[2])
@example(reports=FOUND[3])
def test_an_estimate_from_protocol_reports_is_finite_or_none(
    reports: list[tuple[str, float, float]],
) -> None:
    points = _points(reports)
    e = estimate(points)
    if e is None:
        return
    for name, value in e._asdict().items():  # the reports' own numbers are finite, any size
        assert _sane(value) if name in OUTPUTS else math.isfinite(value), (name, value)
    start_s = T0 + e.elapsed_s
    windows = [(T0, T0 + 3600, 250.0)]
    intensity, covered = mean_intensity(windows, start_s, start_s + e.remaining_s, 200.0)
    assert _sane(intensity) and 0.0 <= covered <= 1.0


def _predictions(reports: list[tuple[str, float, float]], directory: str) -> tuple[Any, ...]:
    """The reports through the run's own path: progress records into a Recorder over a real
    log, the Predictor observing; what it logged, warned and the fold kept."""
    recorder = Recorder(EventLog(directory, "run.jsonl"))
    now = [0.0, 0.0]  # elapsed s, energy J

    def start() -> dict[str, Any]:
        return records.start(
            run_id="r", time_s=T0, argv=["train"], cwd="/", host="h", pid=1, versions={},
            cpu_accounting="cgroup2", components={"cpu": {"method": "rapl"}},
            region={"code": "DK"}, pue=1.5, interval_s=1, log_interval_s=10, job={}, tags={},
        )  # fmt: skip

    recorder(start())
    recorder(
        records.intensity(time_s=T0, elapsed_s=0, intensity_g_per_kwh=200, region="DK", source="t")
    )
    warnings: list[str] = []
    predictor = Predictor(
        recorder,
        lambda: (now[0], now[1]),
        lambda: recorder.locked(Fold.so_far),
        1.5,
        T0,
        0.0,
        lambda: now[0],
        lambda: [(T0, T0 + 3600, 250.0)],
        warnings.append,
        clock=lambda: now[0],
        wall=lambda: T0 + now[0],
    )
    heard: list[dict[str, Any]] = []
    predictor.listeners.append(heard.append)
    recorder.observers.append(predictor.observe)
    for line, step_s, step_j in reports:
        report = parse_message(line)
        assert report is not None
        now[0] += step_s
        now[1] += step_j
        recorder(
            records.sample(
                time_s=T0 + now[0], elapsed_s=now[0], cpu_s=0, energy_j={"cpu": now[1]},
                device_energy_j={"cpu": now[1]},
            )
        )  # fmt: skip
        recorder(
            records.progress(
                time_s=T0 + now[0], elapsed_s=now[0], done=report.done, total=report.total,
                unit=report.unit, source="channel",
            )
        )  # fmt: skip
    predictor.flush()
    recorder.log.close()
    lines = Path(recorder.log.path).read_bytes().splitlines()
    logged = [r for r in map(json.loads, lines) if r["type"] == "prediction"]
    return logged, heard, warnings, recorder.log.failed, recorder.fold.summary().predictions


@settings(
    max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)  # fmt: skip
@given(reports=_run_reports)
@example(reports=FOUND[0])
@example(reports=FOUND[1])
@example(reports=FOUND[3])
def test_every_prediction_the_run_makes_is_logged_and_kept(
    reports: list[tuple[str, float, float]],
) -> None:
    _points(reports)  # protocol-valid, finite clocks
    with tempfile.TemporaryDirectory() as directory:
        logged, heard, warnings, failed, kept = _predictions(reports, directory)
    assert failed is None  # no record the log refused (NaN, Infinity)
    assert warnings == []  # predictions never stopped by an exception
    assert len(logged) <= len(heard)
    for prediction in heard:  # what the budget hears: finite too
        json.dumps(prediction, allow_nan=False)
        numbers = [v for v in prediction.values() if isinstance(v, float)]
        assert all(_sane(v) for v in numbers), prediction
    if logged:  # the fold keeps the last one logged (it drops numbers beyond _LARGEST)
        assert kept["last"]["duration_s"] == logged[-1]["duration_s"]
        assert kept["last"]["co2e_g"] == logged[-1]["co2e_g"]


@pytest.mark.parametrize(
    "line",
    ["step 2/1", "0/0", "step 1/0", "1e309/1e309", "step 1e400", "-1/2", "nan/1", "inf", "101%"],
)
def test_reports_the_protocol_refuses_are_no_reports(line: str) -> None:
    """done > total, a total of 0, numbers beyond a float, signs, words for numbers."""
    assert parse_message(line) is None


def test_identical_timestamps_predict_no_more_time() -> None:
    points = [Point(5.0, n, 10, 100.0 * n) for n in range(4)]
    e = estimate(points)
    assert e is not None and e.duration_s == 5.0 and e.remaining_s == 0.0
    assert e.energy_j == pytest.approx(1000.0)


def test_the_mean_intensity_of_an_absurd_window_is_finite() -> None:
    intensity, covered = mean_intensity([(T0, T0 + 1e30, 1e300)], T0, T0 + 1e30, 200.0)
    assert intensity == pytest.approx(1e300) and covered == pytest.approx(1.0)
    pairs = itertools.product([0.0, 5e-324, 1.0, 1e30], [0.0, 1e300])
    for span, value in pairs:
        intensity, covered = mean_intensity([(T0, T0 + 10, value)], T0, T0 + span, 200.0)
        assert math.isfinite(intensity) and 0.0 <= covered <= 1.0
