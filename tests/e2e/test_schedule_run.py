"""Carbon-aware start end to end: the real carbonwrap against a local server whose GB forecast
is built around the current time in 2-second slots, so the best window starts seconds from now.
The child prints its own start time; the log, stderr, the report and --json are checked."""

from __future__ import annotations

import asyncio
import json
import math
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw
from intensity_server import RecordedServer, serve

from carbonwrap.runlog.records import parse_utc

SLOT_S = 2


def gb_forecast(base: int, values: list[float]) -> dict[str, Any]:
    """A national GB answer with one slot of SLOT_S seconds per value from `base` (epoch s)."""

    def stamp(t: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    return {
        "data": [
            {
                "from": stamp(base + i * SLOT_S),
                "to": stamp(base + (i + 1) * SLOT_S),
                "intensity": {"forecast": value, "actual": None, "index": "moderate"},
            }
            for i, value in enumerate(values)
        ]
    }


def dip_forecast(dip_in_s: int, dip_slots: int = 2, total_s: int = 240) -> tuple[int, dict]:
    """300 g/kWh, except 100 for `dip_slots` slots from about `dip_in_s` from now."""
    base = math.floor(time.time()) - SLOT_S
    dip_start = base + SLOT_S + dip_in_s
    values = [
        100.0 if dip_start <= base + i * SLOT_S < dip_start + dip_slots * SLOT_S else 300.0
        for i in range(total_s // SLOT_S)
    ]
    return dip_start, gb_forecast(base, values)


def on_gb_server(doc: dict[str, Any] | None, probe: Any, **route: Any) -> Any:
    """`probe(env)` on a thread, with the GB provider pointed at a local server answering the
    forecast (and the poller's /intensity) with `doc`."""
    result: list[Any] = []

    async def check(server: RecordedServer) -> None:
        if doc is not None:
            server.route("/intensity/*", json_body=doc, **route)
            server.route("/intensity", json_body=doc)
        env = cw_env(CARBONWRAP_UKGRID_URL=server.url)
        result.append(await asyncio.to_thread(probe, env))

    serve(check, timeout_s=120)
    return result[0]


CHILD = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time()))"


def test_waits_for_the_lowest_window_then_runs(tmp_path: Path) -> None:
    dip_start, doc = dip_forecast(dip_in_s=12)
    marker = tmp_path / "started"
    report = tmp_path / "report.json"

    def probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_cw(
            "run", "--region", "GB", "--start-within", "40s", "--expected-duration", "4s",
            "--json", str(report), "--", sys.executable, "-c", CHILD, str(marker),
            cwd=tmp_path, env=env, timeout=90,
        )  # fmt: skip

    out = on_gb_server(doc, probe)
    assert out.returncode == 0, out.stderr
    started = float(marker.read_text())
    assert started >= dip_start  # never early
    assert started < dip_start + 20  # and not much later (generous: a loaded machine)
    lines = out.stderr.splitlines()
    assert lines[0].startswith("carbonwrap: starting at ")
    assert "forecast 100 g/kWh over the 4s run vs 300 g/kWh if started now (−67 %)" in (lines[0])
    assert "GB Carbon Intensity API forecast (ukgrid:national)" in lines[0]
    assert lines[1].startswith("carbonwrap: waiting; Ctrl-C or SIGTERM cancels")
    [log] = logs_in(tmp_path)
    start = records(log)[0]
    schedule = start["schedule"]
    assert parse_utc(schedule["chosen_start"]) == dip_start
    assert schedule["forecast_mean_g_per_kwh"] == 100 and schedule["now_g_per_kwh"] == 300
    assert schedule["requested_within_s"] == 40 and schedule["expected_duration_s"] == 4
    assert schedule["source"] == "ukgrid:national" and schedule["reason"] is None
    assert 0 < schedule["waited_s"] < 40
    assert parse_utc(start["time"]) >= dip_start  # the run itself begins after the wait
    assert "  Start  " in out.stderr and "waited " in out.stderr
    document = json.loads(report.read_text())
    assert document["schedule"]["chosen_start"] == schedule["chosen_start"]


def test_best_window_now_starts_at_once(tmp_path: Path) -> None:
    base = math.floor(time.time()) - SLOT_S
    doc = gb_forecast(base, [100.0] * 20 + [300.0] * 100)
    marker = tmp_path / "started"

    def probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return run_cw(
            "run", "--region", "GB", "--start-within", "1m", "--expected-duration", "10s",
            "--json", "-", "--", sys.executable, "-c", CHILD, str(marker),
            cwd=tmp_path, env=env, timeout=60,
        )  # fmt: skip

    began = time.time()
    out = on_gb_server(doc, probe)
    assert out.returncode == 0, out.stderr
    assert float(marker.read_text()) - began < 15
    first = out.stderr.splitlines()[0]
    assert first.startswith("carbonwrap: starting now: no start within 1m has a lower forecast")
    assert json.loads(out.stdout)["schedule"]["saving_pct"] == 0


def test_provider_down_starts_now_with_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    began = time.time()
    out = run_cw(
        "run", "--region", "GB", "--start-within", "8h", "--expected-duration", "2h",
        "--", sys.executable, "-c", CHILD, str(marker), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert float(marker.read_text()) - began < 30
    first = out.stderr.splitlines()[0]
    assert first.startswith("carbonwrap: no intensity forecast for region GB (ukgrid: 127.0.0.1:9")
    assert first.endswith("); starting now")
    [log] = logs_in(tmp_path)
    schedule = records(log)[0]["schedule"]
    assert schedule["reason"].startswith("ukgrid: ") and schedule["waited_s"] < 1
    assert "at once, asked to start within 8h: no intensity forecast" in out.stderr


def test_a_hanging_provider_costs_the_budget_only(tmp_path: Path) -> None:
    def probe(env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        began = time.monotonic()
        out = run_cw(
            "run", "-q", "--region", "GB", "--start-within", "1h", "--expected-duration", "1m",
            "--json", "-", "--", "true", cwd=tmp_path, env=env, timeout=60,
        )  # fmt: skip
        return time.monotonic() - began, out

    took_s, out = on_gb_server({"data": []}, probe, hang=True)
    assert out.returncode == 0 and out.stderr == ""  # -q: the reason is in the report only
    schedule = json.loads(out.stdout)["schedule"]
    assert schedule["reason"] == "ukgrid: no forecast within 10 s"
    assert took_s < 40


@pytest.mark.parametrize(
    ("args", "source"),
    [(["--region", "BR"], "no live intensity provider for BR"),
     (["--region", "GB", "--intensity", "50"], "the intensity is fixed by --intensity"),
     (["--region", "GB", "--intensity-source", "static"], "the intensity source is static")],
)  # fmt: skip
def test_no_forecast_provider_says_why(tmp_path: Path, args: list[str], source: str) -> None:
    out = run_cw(
        "run", *args, "--start-within", "2h", "--expected-duration", "1h", "--", "true",
        cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    first = out.stderr.splitlines()[0]
    assert first.startswith("carbonwrap: no intensity forecast for region ")
    assert source in first and first.endswith("; starting now")


def _wait_for_line(process: subprocess.Popen[bytes], prefix: str, timeout_s: float) -> str:
    """Read stderr (unbuffered: select and a buffered reader disagree) up to a line starting
    with `prefix`; everything read so far."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    deadline = time.monotonic() + timeout_s
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            seen += chunk
            text = seen.decode()
            if any(line.startswith(prefix) for line in text.splitlines(keepends=True)
                   if line.endswith("\n")):  # fmt: skip
                return text
            if not chunk:
                break
    raise AssertionError(f"no line starting {prefix!r} in {seen!r}")


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_wait_cancels_the_run(
    tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    _, doc = dip_forecast(dip_in_s=150)
    marker = tmp_path / "started"

    def probe(env: dict[str, str]) -> tuple[int | None, str, float]:
        process = subprocess.Popen(
            cw_argv(
                "run", "--region", "GB", "--start-within", "3m", "--expected-duration", "4s",
                "--", sys.executable, "-c", CHILD, str(marker),
            ),
            cwd=tmp_path, env=env, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _wait_for_line(process, "carbonwrap: waiting", 60)
            sent = time.monotonic()
            process.send_signal(sig)
            process.wait(timeout=30)
            assert process.stderr is not None
            return process.returncode, process.stderr.read().decode(), time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    status_got, rest, took_s = on_gb_server(doc, probe)
    assert status_got == status
    name = signal.Signals(sig).name
    assert rest == (
        f"carbonwrap: {name} while waiting for the scheduled start; the command did not run\n"
    )
    assert took_s < 10
    assert not marker.exists() and logs_in(tmp_path) == []


def test_an_ignored_sigint_stays_ignored_while_waiting(tmp_path: Path) -> None:
    """Started with SIGINT ignored (a background job, nohup): Ctrl-C's signal does not cancel;
    SIGTERM still does."""
    _, doc = dip_forecast(dip_in_s=150)

    def probe(env: dict[str, str]) -> tuple[int | None, str]:
        process = subprocess.Popen(
            cw_argv(
                "run", "--region", "GB", "--start-within", "3m", "--expected-duration", "4s",
                "--", "true",
            ),
            cwd=tmp_path, env=env, stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
        try:
            _wait_for_line(process, "carbonwrap: waiting", 60)
            process.send_signal(signal.SIGINT)
            time.sleep(1.0)
            alive = process.poll() is None
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            assert alive and process.stderr is not None
            return process.returncode, process.stderr.read().decode()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    status, rest = on_gb_server(doc, probe)
    assert status == 143 and "SIGTERM while waiting" in rest


def test_settings_file_and_environment_and_zero(tmp_path: Path) -> None:
    (tmp_path / "carbonwrap.toml").write_text(
        'start_within = "1h"\nexpected_duration = "10m"\nregion = "GB"\n'
    )
    out = run_cw("run", "--", "true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith("carbonwrap: no intensity forecast for region GB (ukgrid: ")
    out = run_cw("run", "--start-within", "0", "--", "true", cwd=tmp_path)
    assert out.returncode == 0 and "intensity forecast" not in out.stderr
    env = cw_env(CARBONWRAP_START_WITHIN="0")
    out = run_cw("run", "--", "true", cwd=tmp_path, env=env)
    assert out.returncode == 0 and "intensity forecast" not in out.stderr
    starts = [records(log)[0] for log in logs_in(tmp_path)]
    assert len(starts) == 3 and sum("schedule" in start for start in starts) == 1
    shown = json.loads(run_cw("config", "--json", cwd=tmp_path).stdout)["settings"]
    assert shown["start_within"]["value"] == 3600 and shown["start_within"]["source"] == "project"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [(["--start-within", "8h"], {},
      "carbonwrap: --start-within needs the run's expected duration to choose a window: give "
      "--expected-duration (e.g. 2h) or set expected_duration"),
     ([], {"CARBONWRAP_START_WITHIN": "2h"},
      "carbonwrap: CARBONWRAP_START_WITHIN needs the run's expected duration"),
     (["--start-within", "8"], {}, "'8' needs a unit (e.g. 8h, 90m, 1h30m, 3600s, 2d)"),
     (["--start-within", "soon"], {}, "'soon' is not a duration"),
     (["--start-within", "8d"], {}, "'8d' must be at most 7d"),
     (["--start-within", "1h", "--expected-duration", "0"], {}, "'0' must be at least 1s"),
     ([], {"CARBONWRAP_EXPECTED_DURATION": "2 hours"},
      "carbonwrap: CARBONWRAP_EXPECTED_DURATION=2 hours: is not a duration")],
)  # fmt: skip
def test_bad_durations_are_one_line_exit_125(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    marker = tmp_path / "ran"
    out = run_cw("run", *args, "--", "touch", str(marker), cwd=tmp_path, env=cw_env(**env))
    assert out.returncode == 125
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr
    assert not marker.exists() and logs_in(tmp_path) == []


def test_mistakes_are_found_before_waiting(tmp_path: Path) -> None:
    args = ["run", "--region", "GB", "--start-within", "8h", "--expected-duration", "2h"]
    out = run_cw(*args, "--", "no-such-command-here", cwd=tmp_path)
    assert out.returncode == 127 and "command not found" in out.stderr
    missing = str(tmp_path / "no-such-directory" / "x.json")
    out = run_cw(*args, "--json", missing, "--", "true", cwd=tmp_path)
    assert out.returncode == 125 and f"--json {missing}" in out.stderr
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a directory")
    out = run_cw(*args, "--log-dir", str(blocked / "logs"), "--", "true", cwd=tmp_path)
    if os.geteuid() != 0:
        assert out.returncode == 125 and "cannot write the log" in out.stderr
    assert "forecast" not in out.stderr  # nothing was fetched, nothing waited for


def test_a_signal_during_the_forecast_fetch_cancels_too(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    result: list[Any] = []

    async def check(server: RecordedServer) -> None:
        server.route("/intensity/*", hang=True)
        env = cw_env(CARBONWRAP_UKGRID_URL=server.url)

        def probe() -> tuple[int | None, str]:
            process = subprocess.Popen(
                cw_argv(
                    "run", "--region", "GB", "--start-within", "1h", "--expected-duration",
                    "1m", "--", "touch", str(marker),
                ),
                cwd=tmp_path, env=env, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while not server.requests and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert server.requests, "carbonwrap never asked for the forecast"
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
                assert process.stderr is not None
                return process.returncode, process.stderr.read().decode()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()

        result.append(await asyncio.to_thread(probe))

    serve(check, timeout_s=120)
    status, stderr = result[0]
    assert status == 143
    assert stderr.endswith(
        "SIGTERM while waiting for the scheduled start; the command did not run\n"
    )
    assert not marker.exists() and logs_in(tmp_path) == []
