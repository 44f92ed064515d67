"""Exact CPU time of the whole tree with real cgroups, against what each process measured."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import WORKLOADS, cw_env, is_root, logs_in, records, run_cw

from carbonwrap.measure.cgroup import (
    CgroupLeaf,
    own_cgroup_dir,
    parse_mountinfo,
    parse_proc_cgroup,
    remove_stale_leaves,
)
from carbonwrap.sensors import SensorUnavailable

MOUNTINFO = """\
25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 /lxc/box /sys/fs/cgroup/my\\040mem rw shared:15 - cgroup cgroup rw,memory
"""


def test_parse_mountinfo_finds_v2_and_v1_cpuacct() -> None:
    v2 = parse_mountinfo(MOUNTINFO, "cgroup2")
    assert v2 is not None and str(v2.mount_point) == "/sys/fs/cgroup/unified"
    v1 = parse_mountinfo(MOUNTINFO, "cgroup", "cpuacct")
    assert v1 is not None and str(v1.mount_point) == "/sys/fs/cgroup/cpu,cpuacct"
    mem = parse_mountinfo(MOUNTINFO, "cgroup", "memory")
    assert mem is not None and str(mem.mount_point) == "/sys/fs/cgroup/my mem"
    assert mem.root == "/lxc/box"
    assert parse_mountinfo(MOUNTINFO, "cgroup", "pids") is None


def test_parse_proc_cgroup() -> None:
    text = "12:pids:/user.slice\n4:cpu,cpuacct:/jobs/42\n0::/user.slice/session-1.scope\n"
    assert parse_proc_cgroup(text, None) == "/user.slice/session-1.scope"
    assert parse_proc_cgroup(text, "cpuacct") == "/jobs/42"
    assert parse_proc_cgroup(text, "memory") is None


def test_leaf_in_a_directory_that_is_not_a_cgroup_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="cannot use"):
        CgroupLeaf(2, "leaf", parent=tmp_path)
    assert not (tmp_path / "leaf").exists()  # cleaned up


def _cgroup_possible(version: int) -> bool:
    if not is_root():
        return False
    try:
        leaf = CgroupLeaf(version, f"carbonwrap-probe-{os.getpid()}")
    except SensorUnavailable:
        return False
    leaf.finish()
    return True


needs_cgroup2 = pytest.mark.skipif(not _cgroup_possible(2), reason="no writable cgroup v2 here")
needs_cgroup1 = pytest.mark.skipif(not _cgroup_possible(1), reason="no writable cgroup v1 cpuacct")


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
def test_empty_leaves_of_killed_runs_are_removed_and_live_ones_kept() -> None:
    parent = Path(own_cgroup_dir(2))
    old, young, busy = (parent / f"carbonwrap-test-{kind}-{os.getpid()}" for kind in
                        ("old", "young", "busy"))  # fmt: skip
    for leaf in (old, young, busy):
        leaf.mkdir()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        two_hours_ago = time.time() - 7200
        for leaf in (old, busy):
            os.utime(leaf, (two_hours_ago, two_hours_ago))
        removed = remove_stale_leaves(parent)
        assert old.name in removed and not old.exists()
        assert young.exists() and busy.exists()  # too young to judge; still has a process
    finally:
        sleeper.kill()
        sleeper.wait()
        for leaf in (young, busy):
            with contextlib.suppress(OSError):
                leaf.rmdir()


def _own_cgroup_line(version: int) -> str:
    text = Path("/proc/self/cgroup").read_text()
    return parse_proc_cgroup(text, None if version == 2 else "cpuacct") or ""


@pytest.mark.parametrize(
    "version", [pytest.param(2, marks=needs_cgroup2), pytest.param(1, marks=needs_cgroup1)]
)
def test_early_join_counts_none_of_carbonwrap_and_undoes_cleanly(version: int) -> None:
    """Joined early, carbonwrap's own CPU in the leaf (before and around the spawn) is not the
    tree's; a run that fails before the spawn leaves carbonwrap where it was and no leaf."""
    home = _own_cgroup_line(version)
    failed = CgroupLeaf(version, f"carbonwrap-test-early-{os.getpid()}")
    failed.join_early()
    failed.finish()  # setup failed: the join may or may not have finished yet
    assert _own_cgroup_line(version) == home and not os.path.exists(failed.path)

    leaf = CgroupLeaf(version, f"carbonwrap-test-early2-{os.getpid()}")
    leaf.join_early()
    end = time.process_time() + 0.2
    while time.process_time() < end:  # carbonwrap's start-up work, inside the leaf
        pass
    assert leaf.cpu_s() == 0.0  # nothing spawned yet
    child_script = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: 0"
    )
    with leaf.placement():
        child = subprocess.Popen([sys.executable, "-c", child_script])
    assert _own_cgroup_line(version) == home  # back out for the rest of the run
    _, _, usage = os.wait4(child.pid, 0)
    truth_s = usage.ru_utime + usage.ru_stime
    leaf.finish()
    # The child's exit work is real tree CPU its rusage cannot include: a few ms. Our own
    # moves are measured to tens of microseconds (µs counters, the syscall's own time).
    assert truth_s - 0.001 <= leaf.cpu_s() <= truth_s + 0.03


@needs_cgroup2
def test_a_run_refused_after_the_early_join_leaves_no_leaf(workdir: Path) -> None:
    parent = Path(own_cgroup_dir(2))
    before = {p.name for p in parent.glob("carbonwrap-*")}
    # --json's directory is checked in run(), after the leaf was created and joined.
    result = run_cw("run", "--json", "/nonexistent/dir/r.json", "--", "true", cwd=workdir)
    assert result.returncode == 125
    assert "--json /nonexistent/dir/r.json: directory" in result.stderr
    assert {p.name for p in parent.glob("carbonwrap-*")} <= before
    assert not logs_in(workdir)
