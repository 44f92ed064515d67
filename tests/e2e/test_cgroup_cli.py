"""Exact CPU time of the whole tree with real cgroups, against what each process measured: real
runs of carbonwrap (cgroup v2, v1 and the process-tree fallback)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from cgroup_marks import needs_cgroup1, needs_cgroup2
from conftest import WORKLOADS, cw_env, logs_in, records, run_cw

from carbonwrap.measure.leafjoin import own_cgroup_dir


def _truth(path: Path) -> tuple[float, int]:
    lines = path.read_text().split("\n")[:-1]
    return sum(float(line.split()[1]) for line in lines), len(lines)


@pytest.mark.parametrize(
    "method",
    [pytest.param("cgroup2", marks=needs_cgroup2), pytest.param("cgroup1", marks=needs_cgroup1)],
)
def test_cgroup_counts_grandchildren_daemons_and_unwaited_children(
    workdir: Path, method: str
) -> None:
    truth_file = workdir / "truth.txt"
    result = run_cw(
        "run", "-q", "--cpu-accounting", method, "--json", "-", "--",
        sys.executable, str(WORKLOADS / "tree.py"), "1.5",
        cwd=workdir, env=cw_env(TRUTH_FILE=str(truth_file)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    truth_s, processes = _truth(truth_file)
    assert processes == 14
    assert report["cpu_accounting"] == method
    # Each process reports its CPU just before it exits; the kernel's exit work (unmapping a
    # Python process, a few ms each) is real CPU of the tree that the reports cannot include.
    assert truth_s <= report["cpu_seconds"] <= truth_s + 0.012 * processes + 0.05
    leaf_parent = Path(own_cgroup_dir(2 if method == "cgroup2" else 1))
    assert not (leaf_parent / f"carbonwrap-{report['run_id']}").exists()  # removed


@needs_cgroup2
def test_processes_left_in_the_leaf_are_reported_left_running_and_not_counted(
    workdir: Path,
) -> None:
    # A daemon that outlives the command and keeps burning CPU.
    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    end = time.time() + 3\n"
        "    while time.time() < end: pass\n"
        "    os._exit(0)\n"
        "time.sleep(0.3)\n"
    )
    result = run_cw("run", "-q", "--json", "-", "--", sys.executable, "-c", script, cwd=workdir)
    report = json.loads(result.stdout)
    (pid,) = report["leftover_pids"]
    try:
        os.kill(pid, 0)  # still running
        assert report["cpu_seconds"] < 1.0  # ~0.3 s of daemon time while the command ran
        assert any(f"left running and are not counted further: {pid}" in n for n in report["notes"])
        (log,) = logs_in(workdir)
        assert records(log)[-1]["leftover_pids"] == [pid]
        assert not (Path(own_cgroup_dir(2)) / f"carbonwrap-{report['run_id']}").exists()
    finally:
        os.kill(pid, 9)


def test_process_tree_fallback_is_labelled_approximate(workdir: Path) -> None:
    script = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    result = run_cw(
        "run", "--cpu-accounting", "process-tree", "--json", "-", "--",
        sys.executable, "-c", script, cwd=workdir,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["cpu_accounting"] == "process-tree"
    assert 0.5 <= report["cpu_seconds"] < 1.5  # the child was waited for: rusage has it all
    assert "process-tree (approximate)" in result.stderr


@needs_cgroup2
def test_settings_that_name_another_accounting_give_up_the_early_leaf(workdir: Path) -> None:
    """entry.py opens the auto accounting before the settings are read; a variable naming
    another gives the leaf up (nothing left behind) and the run counts as told."""
    parent = Path(own_cgroup_dir(2))
    before = {p.name for p in parent.glob("carbonwrap-*")}
    env = {**cw_env(), "CARBONWRAP_CPU_ACCOUNTING": "process-tree"}
    result = run_cw("run", "-q", "--", "true", cwd=workdir, env=env)
    assert result.returncode == 0, result.stderr
    (log,) = logs_in(workdir)
    assert records(log)[0]["cpu_accounting"] == "process-tree"
    assert {p.name for p in parent.glob("carbonwrap-*")} <= before


@needs_cgroup2
def test_auto_prefers_cgroup2(workdir: Path) -> None:
    result = run_cw("run", "-q", "--json", "-", "--", "true", cwd=workdir)
    assert json.loads(result.stdout)["cpu_accounting"] == "cgroup2"


def test_sampling_sees_cpu_while_the_child_runs(workdir: Path) -> None:
    """Samples in the log are cumulative and grow while the command runs."""
    # CPU time, not wall time: other work on the machine must not starve the assertion below.
    script = "import time\nend = time.process_time() + 1.3\nwhile time.process_time() < end: pass"
    started = time.time()
    result = run_cw(
        "run", "-q", "--interval", "0.2", "--log-interval", "0.4", "--",
        sys.executable, "-c", script, cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0
    assert time.time() - started < 10
    (log,) = logs_in(workdir)
    samples = [r for r in records(log) if r["type"] in ("sample", "end")]
    assert len(samples) >= 3
    cpu = [s["cpu_s"] for s in samples]
    assert cpu == sorted(cpu) and cpu[-1] > 1.0


@needs_cgroup2
@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        # --json's directory is checked in run(), after the leaf was created and joined.
        (["--json", "{w}/no/dir/r.json"], {}, "--json {w}/no/dir/r.json: directory"),
        # entry.py opens the leaf before the CLI reads the line: click refuses it after.
        (["--no-such-option"], {}, "No such option"),
        # ... and before the settings are read: a bad one is said after.
        ([], {"CARBONWRAP_PUE": "0.5"}, "PUE"),
    ],
)
def test_a_run_refused_after_the_early_join_leaves_no_leaf(
    workdir: Path, args: list[str], env: dict[str, str], said: str
) -> None:
    parent = Path(own_cgroup_dir(2))
    before = {p.name for p in parent.glob("carbonwrap-*")}
    given = [a.replace("{w}", str(workdir)) for a in args]
    result = run_cw("run", *given, "--", "true", cwd=workdir, env={**cw_env(), **env})
    assert result.returncode == 125
    assert said.replace("{w}", str(workdir)) in result.stderr
    # Other runs on the machine come and go; a leaf left by this one would stay.
    deadline = time.monotonic() + 10
    while {p.name for p in parent.glob("carbonwrap-*")} - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {p.name for p in parent.glob("carbonwrap-*")} <= before
    assert not logs_in(workdir)
