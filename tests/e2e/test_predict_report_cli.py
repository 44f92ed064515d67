"""Prediction and budget records in `carbonwrap report`: the JSON report carries them."""

import json
from pathlib import Path

import pytest
from conftest import run_cw
from prediction_log import T0, budget, prediction, start, write

from carbonwrap.runlog import records as events


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
    # JSON numbers carry 6 significant digits (what was measured)
    used = run["budget"]["used_energy_kwh"]
    assert run["budget"]["exceeded"] and used == pytest.approx(1001.0 / 3.6e6, rel=1e-5)
    assert run["budget"]["events"][0]["energy_kwh"] == pytest.approx(1001.0 / 3.6e6, rel=1e-5)
    assert "stopped" not in run
