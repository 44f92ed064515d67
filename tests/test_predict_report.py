"""Prediction and budget records in `carbonwrap report`: the fast reading (most samples never
parsed) folds them as a fold of every record does, and the JSON report carries them."""

import json
from pathlib import Path
from typing import Any

from conftest import run_cw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbonwrap.report.read import fold_every_record, summarize_log
from carbonwrap.runlog import records as events
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0


def start() -> dict[str, Any]:
    return events.start(
        run_id="pred01",
        time_s=T0,
        argv=["python", "train.py"],
        cwd="/home/u",
        host="node1",
        pid=1,
        versions={},
        cpu_accounting="cgroup2",
        components={"cpu": {"method": "rapl"}},
        region={"code": "DK"},
        pue=1.2,
        interval_s=1.0,
        log_interval_s=10.0,
        job={},
        tags={},
    )


def prediction(t: float, fraction: float, energy_j: float) -> dict[str, Any]:
    return events.prediction(
        time_s=T0 + t,
        elapsed_s=t,
        done=fraction * 10,
        total=10,
        unit="epoch",
        duration_s=t / max(fraction, 0.01),
        energy_j=energy_j,
        co2e_g=energy_j / 3.6e6 * 1.2 * 100,
        duration_margin_s=None if fraction < 0.3 else 5.0,
        energy_margin_j=None if fraction < 0.3 else 50.0,
        co2e_margin_g=None if fraction < 0.3 else 0.002,
        intensity_g_per_kwh=100.0,
        intensity_basis="current",
        basis="from 3 epochs",
        intervals=3,
    )


def budget(t: float, event: str) -> dict[str, Any]:
    if event == "set":
        fields: dict[str, Any] = {
            "limit": "1 kJ",
            "quantity": "energy",
            "limit_energy_j": 1000.0,
            "on_exceed": "warn",
            "grace_s": 10.0,
        }
    else:
        fields = {
            "basis": "actual",
            "energy_j": 1001.0,
            "fraction": None,
            "action": "warn",
            "message": "budget 1 kJ exceeded (actual 1001 J at 1 min 40 s)",
        }
    return events.budget(time_s=T0 + t, elapsed_s=t, event=event, **fields)


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    log = EventLog(str(path.parent), path.name)
    for record in lines:
        log.write(record)
    log.close()
    return path


_step = st.one_of(
    st.tuples(st.just("sample"), st.floats(0, 500), st.floats(1, 100)),
    st.tuples(st.just("intensity"), st.floats(0, 900), st.just(0.0)),
    st.tuples(st.just("prediction"), st.floats(0, 1), st.floats(0, 1e5)),
    st.tuples(st.just("budget"), st.just(0.0), st.just(0.0)),
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_step, max_size=40), ended=st.booleans())
def test_the_fast_reading_folds_predictions_and_budgets_as_a_full_fold(
    tmp_path: Path, steps: list[tuple[str, float, float]], ended: bool
) -> None:
    lines = [start(), budget(0, "set")]
    t = energy = 0.0
    for kind, a, b in steps:
        if kind == "sample":
            t += b
            energy += a
            lines.append(
                events.sample(
                    time_s=T0 + t,
                    elapsed_s=t,
                    cpu_s=t,
                    energy_j={"cpu": energy},
                    device_energy_j={"cpu": energy},
                )
            )
        elif kind == "intensity":
            lines.append(
                events.intensity(
                    time_s=T0 + t,
                    elapsed_s=t,
                    intensity_g_per_kwh=round(a, 3),
                    region="DK",
                    source="latest",
                    kind="latest",
                )
            )
        elif kind == "prediction":
            lines.append(prediction(t, a, b))
        else:
            lines.append(budget(t, "exceeded"))
    if ended:
        end = events.end(
            time_s=T0 + t + 1,
            elapsed_s=t + 1,
            exit_code=0,
            signal=None,
            cpu_s=t,
            energy_j={"cpu": energy + 1},
            device_energy_j={"cpu": energy + 1},
            leftover_pids=[],
            signals_received=[],
            stopped="budget 1 kJ exceeded (actual 1001 J at 1 min 40 s)",
        )
        lines.append(end)
    path = tmp_path / "log.jsonl"
    path.unlink(missing_ok=True)
    write(path, lines)
    fast, full = summarize_log(path), fold_every_record(path)
    assert fast is not None and full is not None
    assert fast.predictions == full.predictions
    assert fast.budget == full.budget and fast.stopped == full.stopped
    assert fast.energy_j == full.energy_j


def test_report_json_carries_the_prediction_and_the_budget(workdir: Path) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    lines = [start(), budget(0, "set")]
    for k in range(1, 11):
        lines.append(
            events.sample(
                time_s=T0 + 10 * k,
                elapsed_s=10 * k,
                cpu_s=k,
                energy_j={"cpu": 100.0 * k},
                device_energy_j={"cpu": 100.0 * k},
            )
        )
        lines.append(prediction(10 * k, k / 10, 1000.0))
    lines.append(budget(100, "exceeded"))
    lines.append(
        events.end(
            time_s=T0 + 100,
            elapsed_s=100,
            exit_code=0,
            signal=None,
            cpu_s=10,
            energy_j={"cpu": 1001.0},
            device_energy_j={"cpu": 1001.0},
            leftover_pids=[],
            signals_received=[],
        )
    )
    write(logs / "carbonwrap-x.jsonl", lines)
    done = run_cw("report", "--format", "json", "logs", cwd=workdir)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    p = run["prediction"]
    assert [p[k]["fraction"] for k in ("first", "at_50", "last")] == [0.1, 0.5, 1.0]
    assert p["comparable"] and abs(p["last"]["error"]["energy"]) < 0.01
    assert run["budget"]["exceeded"] and run["budget"]["used_energy_kwh"] == 1001.0 / 3.6e6
    assert run["budget"]["events"][0]["energy_kwh"] == 1001.0 / 3.6e6
    assert "stopped" not in run
