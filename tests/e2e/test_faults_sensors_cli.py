"""Sensors that misbehave in the middle of a run: the run goes on, every other number is still
counted, and the log says what happened.

Through the CLI: a real run whose cgroup leaf is removed from outside and whose /proc/stat stops
reading. (In process: tests/unit/measure/test_faults_sensors.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, records

from carbonwrap.measure.leafjoin import own_cgroup_dir
from carbonwrap.runlog.reader import RecordReader

# ── through the CLI ──────────────────────────────────────────────────────────────────────────

WAIT_THEN_BURN = """
import os, sys, time
open("ready", "w").write(os.environ["CARBONWRAP_RUN_ID"])
while not os.path.exists("go"):
    time.sleep(0.01)
end = time.process_time() + float(sys.argv[1])
while time.process_time() < end:
    pass
sys.exit(3)
"""


def _start(workdir: Path, seconds: float, env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--interval", "0.1", "--log-interval", "0.1", "--json", "r.json",
                "--", sys.executable, "-c", WAIT_THEN_BURN, str(seconds)),
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (workdir / "ready").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    return proc


def _finish(proc: subprocess.Popen[str], workdir: Path) -> tuple[list[dict[str, object]], str]:
    (workdir / "go").write_text("")
    _, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    assert proc.returncode == 3, stderr  # the child's own status
    (log,) = logs_in(workdir)
    reader = RecordReader(log)
    assert list(reader) and reader.bad_lines == 0
    recs = records(log)
    assert recs[-1]["type"] == "end" and recs[-1]["exit_code"] == 3
    return recs, stderr


def test_the_runs_cgroup_removed_from_outside(workdir: Path) -> None:
    """Before the fix carbonwrap died with a traceback (exit 1) reading the removed leaf at the
    end, and wrote no end record."""
    proc = _start(workdir, 0.3, cw_env())
    run_id = (workdir / "ready").read_text()
    leaf = None
    for version in (2, 1):
        with contextlib.suppress(Exception):
            candidate = Path(own_cgroup_dir(version)) / f"carbonwrap-{run_id}"
            if candidate.is_dir():
                leaf = candidate
                break
    if leaf is None:
        proc.kill()
        proc.communicate()
        pytest.skip("no cgroup leaf here (process-tree accounting)")
    for pid in (leaf / "cgroup.procs").read_text().split():  # as an admin or systemd would
        (leaf.parent / "cgroup.procs").write_text(pid)
    deadline = time.monotonic() + 5
    while leaf.exists():
        with contextlib.suppress(OSError):
            leaf.rmdir()
        assert time.monotonic() < deadline
    time.sleep(0.3)  # a few samples with the leaf gone
    recs, _ = _finish(proc, workdir)
    warnings = [str(r["message"]) for r in recs if r["type"] == "warning"]
    assert any(w.startswith("tree CPU time could not be read") for w in warnings), warnings
    assert json.loads((workdir / "r.json").read_text())["exit_code"] == 3


def test_proc_stat_that_stops_reading(workdir: Path) -> None:
    """$CARBONWRAP_PROC_ROOT points at a copy of /proc/stat the test then empties (reads fail
    to parse, as a broken lxcfs's would fail): the tree's CPU time is still counted in full."""
    proc_root = workdir / "proc"
    proc_root.mkdir()
    (proc_root / "meminfo").symlink_to("/proc/meminfo")
    stat = proc_root / "stat"
    stat.write_text(Path("/proc/stat").read_text())
    proc = _start(workdir, 0.8, cw_env(CARBONWRAP_PROC_ROOT=str(proc_root)))
    time.sleep(0.3)
    stat.write_text("")
    recs, _ = _finish(proc, workdir)
    warnings = [str(r["message"]) for r in recs if r["type"] == "warning"]
    assert any(w.startswith("/proc/stat could not be read") for w in warnings), warnings
    assert float(recs[-1]["cpu_s"]) >= 0.75  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_stray_children() -> Iterator[None]:
    yield
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
