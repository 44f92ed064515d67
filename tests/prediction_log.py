"""A run's log with prediction and budget records, written by the real writer."""

from pathlib import Path
from typing import Any

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
