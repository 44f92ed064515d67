"""The JSON-lines log of real runs: records, flushed lines, a SIGKILLed wrapper's valid prefix,
RAPL runs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw
from sysfs_tree import make_sysfs, zone_file

from carbonwrap.measure.leafjoin import own_cgroup_dir
from carbonwrap.runlog.reader import RecordReader
from carbonwrap.runlog.summary import Fold


def test_log_records_and_json_report_agree(workdir: Path) -> None:
    result = run_cw(
        "run", "-q", "--region", "dk", "--pue", "1.2", "--tag", "exp=a1", "--tag", "seed=3",
        "--json", "-", "--", sys.executable, "-c", "sum(range(3_000_000))",
        cwd=workdir, env=cw_env(SLURM_JOB_ID="991", RANK="0"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (log,) = logs_in(workdir / "logs")
    assert log.name.startswith("carbonwrap-") and report["run_id"] in log.name
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    recs = records(log)
    assert [r["type"] for r in recs][:2] == ["start", "intensity"]
    assert recs[-1]["type"] == "end"
    start = recs[0]
    assert start["schema"] == "carbonwrap.log/1"
    assert start["argv"] == [sys.executable, "-c", "sum(range(3_000_000))"]
    assert start["region"]["code"] == "DK" and start["region"]["source"] == "flag"
    assert start["region"]["detail"].startswith("--region dk")
    assert start["job"] == {"SLURM_JOB_ID": "991", "RANK": "0"}
    assert start["tags"] == {"exp": "a1", "seed": "3"}
    assert set(start["components"]) == {"cpu", "dram", "gpu"}
    # The JSON document has every key the issue asks for, and folds from the same records.
    for key in (
        "schema", "run_id", "command", "exit_code", "signal", "started_at", "ended_at",
        "duration_s", "host", "cpu_seconds", "cpu_accounting", "energy_kwh",
        "device_energy_kwh", "methods", "pue", "intensity", "co2e_kg", "log_path",
    ):  # fmt: skip
        assert key in report, key
    assert report["schema"] == "carbonwrap.run/2"
    assert report["status"] == "ok" and report["log_complete"] is True
    assert set(report["energy_kwh"]) == {"cpu", "dram", "gpu", "total"}
    assert report["pue"] == 1.2
    assert report["intensity"]["region"] == "DK"
    fold = Fold()
    for r in recs:
        fold.add(r)
    summary = fold.summary()
    # The document's numbers are rounded to 6 significant digits (5 for intensities).
    assert report["co2e_kg"] == pytest.approx(summary.co2e_g / 1000, rel=1e-5)
    expected_g = report["energy_kwh"]["total"] * 1.2 * report["intensity"]["mean_g_per_kwh"]
    assert report["co2e_kg"] * 1000 == pytest.approx(expected_g, rel=1e-4)


def test_sigkilled_wrapper_leaves_a_valid_prefix(workdir: Path) -> None:
    script = (
        "import os, time\nopen('ready', 'w').write(str(os.getpid()))\n"
        "end = time.time() + 30\nwhile time.time() < end: pass"
    )
    proc = subprocess.Popen(
        cw_argv(
            "run",
            "-q",
            "--interval",
            "0.1",
            "--log-interval",
            "0.2",
            "--",
            sys.executable,
            "-c",
            script,
        ),
        cwd=workdir,
        env=cw_env(),
    )
    deadline = time.time() + 20
    while not (workdir / "ready").exists():
        assert time.time() < deadline
        time.sleep(0.02)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (log,) = logs_in(workdir)
    reader = RecordReader(log)
    recs = list(reader)
    assert reader.bad_lines == 0  # every line complete: a prefix, never half a record
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "start" and "end" not in kinds and kinds.count("sample") >= 2
    fold = Fold()
    for r in recs:
        fold.add(r)
    summary = fold.summary()
    assert summary.status == "incomplete" and summary.cpu_s > 0.3
    # The orphaned child still runs in the run's leaf: end it and remove the leaf it leaves.
    os.kill(int((workdir / "ready").read_text()), signal.SIGKILL)
    leaf = Path(f"carbonwrap-{summary.run_id}")
    for version in (2, 1):
        with contextlib.suppress(Exception):
            directory = Path(own_cgroup_dir(version)) / leaf
            deadline = time.time() + 5
            while directory.exists() and time.time() < deadline:
                with contextlib.suppress(OSError):
                    directory.rmdir()
                time.sleep(0.02)


def test_rapl_from_a_fake_sysfs_root(workdir: Path) -> None:
    """With $CARBONWRAP_SYSFS_ROOT on a fake powercap tree whose counters advance, CPU and DRAM
    come from RAPL, the device energy is what the counters say and the tree gets a share."""
    sysfs = make_sysfs(workdir / "sys")
    stop = threading.Event()

    def advance() -> None:
        package = zone_file(sysfs, "intel-rapl:0", "energy_uj")
        dram = zone_file(sysfs, "intel-rapl:0:2", "energy_uj")
        uj = 1_000_000

        def put(path: Path, value: int) -> None:
            # In place, fixed width: a reader never sees the empty file that truncation shows.
            fd = os.open(path, os.O_WRONLY)
            os.pwrite(fd, f"{value:020d}\n".encode(), 0)
            os.close(fd)

        while not stop.is_set():
            uj += 10_000  # 10 mJ per 5 ms = 2 W
            put(package, uj)
            put(dram, uj // 4)
            time.sleep(0.005)

    writer = threading.Thread(target=advance)
    writer.start()
    try:
        result = run_cw(
            "run", "--interval", "0.1", "--json", "-", "--",
            sys.executable, "-c", "import time; time.sleep(1)",
            cwd=workdir, env=cw_env(CARBONWRAP_SYSFS_ROOT=str(sysfs)),
        )  # fmt: skip
    finally:
        stop.set()
        writer.join()
    report = json.loads(result.stdout)
    assert report["methods"]["cpu"] == "rapl" and report["methods"]["dram"] == "rapl"
    device_cpu_j = report["device_energy_kwh"]["cpu"] * 3.6e6
    assert 0.5 < device_cpu_j < 10  # ~2 W for ~1 s, ignoring write jitter
    # The child sleeps: its share of the busy CPU time is small but never above the device.
    assert report["energy_kwh"]["cpu"] <= report["device_energy_kwh"]["cpu"]
    assert report["energy_kwh"]["dram"] <= report["device_energy_kwh"]["dram"]
    assert "rapl" in result.stderr


def test_unreadable_rapl_falls_back_to_the_estimate_with_a_note(workdir: Path) -> None:
    sysfs = make_sysfs(workdir / "sys")
    counter = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    counter.unlink()
    counter.mkdir()  # reading it fails with EISDIR, as honest a failure as EACCES
    result = run_cw(
        "run", "--json", "-", "--", "true",
        cwd=workdir, env=cw_env(CARBONWRAP_SYSFS_ROOT=str(sysfs)),
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["methods"]["cpu"] == "estimate"
    assert any(n.startswith("RAPL unavailable, CPU energy estimated") for n in report["notes"])
    assert "RAPL unavailable" in result.stderr


def test_report_goes_to_stderr_and_quiet_silences_it(workdir: Path) -> None:
    loud = run_cw("run", "--", "echo", "hello", cwd=workdir)
    assert loud.stdout == "hello\n"
    assert "CO2e" in loud.stderr and "Log" in loud.stderr
    quiet = run_cw("run", "-q", "--", "echo", "hello", cwd=workdir)
    assert quiet.stdout == "hello\n" and quiet.stderr == ""


def test_the_report_is_compact_and_verbose_has_the_rest(workdir: Path) -> None:
    """Issue 14: by default what ran, the energy with its method, the CO2e with its intensity
    and source, the log, and a line per real warning; -v (CARBONWRAP_VERBOSE) the rest."""
    compact = run_cw("run", "--region", "DK", "--", "sh", "-c", "exit 3", cwd=workdir)
    assert compact.returncode == 3
    lines = compact.stderr.splitlines()
    assert lines[0].startswith("carbonwrap: sh -c 'exit 3' · exit 3 · ")
    assert [line.split()[0] for line in lines[1:4]] == ["Energy", "CO2e", "Log"]
    assert re.search(r"^  Energy  \S+ .?J = CPU \S+ .?J \((rapl|estimate)\)", lines[1]), lines[1]
    assert re.search(r"^  CO2e    \S+ .?g at 143\.3 g/kWh, region DK; static table", lines[2])
    assert all(line.startswith("  note: ") for line in lines[4:]), lines  # real warnings only
    for detail in ("whole device", "basis", "CPU time", "PUE", "≈", "petrol"):
        assert detail not in compact.stderr, detail
    verbose = run_cw("run", "-v", "--region", "DK", "--", "true", cwd=workdir)
    by_variable = run_cw(
        "run", "--region", "DK", "--", "true", cwd=workdir, env=cw_env(CARBONWRAP_VERBOSE="1")
    )
    for full in (verbose.stderr, by_variable.stderr):
        for detail in ("whole device", "CPU basis", "CPU time", "PUE", "Intensity", "Log"):
            assert detail in full, (detail, full)
        assert "µl" not in full  # equivalents too small to picture are left out
