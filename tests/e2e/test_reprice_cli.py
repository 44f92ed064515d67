"""`carbonwrap reprice`, the real program, on a log directory against a real local server that
serves the GB Carbon Intensity API's recorded answer: a run logged offline two days ago gets
the measured half hours, the report then prices it with them, a second reprice adds
nothing, --dry-run asks and writes nothing, a failing API is said with exit status 1."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_env, run_cw
from intensity_server import FIXTURES, RecordedServer, probe_while_serving

from carbonwrap.runlog import records as events
from carbonwrap.runlog.writer import EventLog

RECORDED_AT = 1506859200.0  # 2017-10-01T12:00Z, a half hour of the recorded answer
# Two days ago on a half hour's boundary: the recorded answer is served with its times moved
# here, within the 14 days the catalog gives the API's history (the program runs on the real
# clock); the run starts 250 ms after it and lasts 3590 s, as a real run's times never sit
# on a boundary.
NOW_ALIGNED = time.time() // 1800 * 1800
SHIFT_S = NOW_ALIGNED - 2 * 86400 - RECORDED_AT
START = RECORDED_AT + SHIFT_S + 0.25


def utc(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def shifted_answer() -> dict[str, Any]:
    """The recorded /intensity/{from}/{to} answer, each slot moved by SHIFT_S."""
    doc: dict[str, Any] = json.loads((FIXTURES / "ukci_intensity_fw24h_fixture.json").read_text())
    for slot in doc["data"]:
        for key in ("from", "to"):
            moment = dt.datetime.fromisoformat(slot[key].replace("Z", "+00:00"))
            slot[key] = utc(moment.timestamp() + SHIFT_S)
    return doc


GB = ("--intensity-source", "ukgrid")


def write_run(directory: Path, run_id: str, *, seconds: int = 3590, end: bool = True) -> Path:
    """A run in Great Britain priced at the static table's value (no internet where it ran),
    10 W of CPU, a sample every 10 s: records from the real constructors, the real writer."""
    log = EventLog(directory, f"carbonwrap-{run_id}.jsonl")
    log.write(
        events.start(
            run_id=run_id, time_s=START, argv=["python", "train.py"], cwd="/home/u",
            host="node7", pid=1, versions={"carbonwrap": "0.1.0"}, cpu_accounting="cgroup2",
            components={"cpu": {"method": "rapl"}},
            region={"code": "GB", "kind": "country", "source": "flag", "detail": ""},
            pue=1.0, interval_s=1.0, log_interval_s=10.0, job={}, tags={},
        )
    )  # fmt: skip
    log.write(
        events.intensity(
            time_s=START, elapsed_s=0.0, intensity_g_per_kwh=250.0, region="GB",
            source="static table: United Kingdom 2024, Ember",
        )
    )  # fmt: skip
    for t in range(10, seconds + 1, 10):
        last = end and t == seconds
        extra: dict[str, Any] = {}
        if last:
            extra = {"exit_code": 0, "signal": None, "leftover_pids": [], "signals_received": []}
        log.write(
            (events.end if last else events.sample)(
                time_s=START + t, elapsed_s=float(t), cpu_s=t / 2,
                energy_j={"cpu": 10.0 * t}, device_energy_j={"cpu": 20.0 * t}, **extra,
            )
        )  # fmt: skip
    log.close()
    return Path(log.path)


def recorded(server: RecordedServer) -> None:
    server.route("/intensity/*", json_body=shifted_answer())


def failing(server: RecordedServer) -> None:
    server.route("/intensity/*", status=500, body=b'{"error": "down"}')


def reprice(
    cwd: Path, setup: Any, *args: str
) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    """carbonwrap reprice ARGS, for real, while a local server answers as `setup` says."""

    def probe(url: str) -> subprocess.CompletedProcess[str]:
        env = cw_env(CARBONWRAP_UKGRID_URL=url)
        return run_cw("reprice", *args, cwd=cwd, env=env)

    result, requests = probe_while_serving(setup, probe)
    return result, requests


def report(cwd: Path) -> dict[str, Any]:
    done = run_cw("report", "--json", "logs", cwd=cwd)
    assert done.returncode == 0, done.stderr
    run: dict[str, Any] = json.loads(done.stdout)["runs"][0]
    return run


def test_a_run_logged_offline_is_priced_with_the_measured_half_hours(tmp_path: Path) -> None:
    log = write_run(tmp_path / "logs", "gb1")
    before = report(tmp_path)
    assert before["intensity"]["measured_share"] == 0
    done, requests = reprice(tmp_path, recorded, "logs", *GB)
    assert done.returncode == 0, done.stderr
    first = START - 0.25
    assert [r.path for r in requests] == [f"/intensity/{utc(first)}/{utc(first + 3600)}"]
    added = [json.loads(line) for line in log.read_text().splitlines()][-2:]
    assert [(r["valid_from"], r["valid_to"], r["intensity_g_per_kwh"]) for r in added] == [
        (events.utc_iso(first), events.utc_iso(first + 1800), 140.0),
        (events.utc_iso(first + 1800), events.utc_iso(first + 3591), 140.0),  # the end's second
    ]
    assert all(r["kind"] == "measured" and r["source"] == "ukgrid:national" for r in added)
    assert "2 measured windows from ukgrid:national added; measured 0 % → 100 %" in done.stdout
    assert done.stderr == ""
    after = report(tmp_path)
    assert after["intensity"]["measured_share"] == 1
    assert "ukgrid:national" in after["intensity"]["source"]
    assert after["co2e_kg"] == pytest.approx(before["co2e_kg"] * 140 / 250, rel=1e-5)  # not 250

    content = log.read_bytes()
    again, requests = reprice(tmp_path, recorded, "logs", *GB)
    assert again.returncode == 0 and requests == [] and log.read_bytes() == content
    assert "all of its time is priced by measured values; measured 100 %" in again.stdout


def test_dry_run_asks_nothing_and_writes_nothing(tmp_path: Path) -> None:
    log = write_run(tmp_path / "logs", "gb1")
    content = log.read_bytes()
    done, requests = reprice(tmp_path, recorded, "--dry-run", "logs", *GB)
    assert done.returncode == 0, done.stderr
    assert requests == [] and log.read_bytes() == content
    said = done.stdout
    between = time.strftime("%Y-%m-%d %H:%M", time.gmtime(START))
    assert f"would fetch 59 min 51 s between {between} and " in said
    assert "1 of 1 run to reprice: would make 1 request (1 to ukgrid); nothing fetched" in said


def test_a_failing_api_is_one_line_per_run_and_exit_status_1(tmp_path: Path) -> None:
    log = write_run(tmp_path / "logs", "gb1")
    cut = write_run(tmp_path / "logs", "gb2", end=False)
    content = log.read_bytes(), cut.read_bytes()
    done, _ = reprice(tmp_path, failing, "logs", *GB)
    assert done.returncode == 1
    assert (log.read_bytes(), cut.read_bytes()) == content
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("carbonwrap: could not reprice ")
    assert "(run gb1): ukgrid:" in lines[0] and "HTTP 500" in lines[0]
    assert "(run gb2): no end record: the run is still going" in done.stdout


def test_json_for_scripts_and_usage_errors(tmp_path: Path) -> None:
    write_run(tmp_path / "logs", "gb1")
    done, _ = reprice(tmp_path, recorded, "--json", *GB)  # no PATH: the log_dir, ./logs
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "carbonwrap.reprice/1"
    assert doc["runs"][0]["status"] == "repriced" and doc["runs"][0]["measured_share"] == 1
    assert doc["totals"]["measured_share"] == 1
    missing = run_cw("reprice", "nope", cwd=tmp_path)
    assert missing.returncode == 125 and missing.stderr.startswith("carbonwrap: nope: no such")
    static = run_cw("reprice", "--intensity-source", "static", cwd=tmp_path)
    assert static.returncode == 125 and "needs a provider's history" in static.stderr
