"""The edges of the tree through real runs of carbonwrap: a part of the job in a cgroup of its own
below the run's leaf (left running, stopped by a budget), a nested run, a process that moves
itself out of the leaf, and process-tree mode's orphans (counted, stopped by a budget)."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cgroup_marks import needs_cgroup1, needs_cgroup2
from conftest import cw_argv, cw_env, logs_in, records, run_cw

from carbonwrap.measure.leafjoin import own_cgroup_dir

FAST = ("--interval", "0.05", "--log-interval", "0.1", "--intensity", "100", "--log-dir", "logs")
METHODS = [
    pytest.param("cgroup2", marks=needs_cgroup2),
    pytest.param("cgroup1", marks=needs_cgroup1),
]

# The command's own leaf, from what carbonwrap tells it (the test gives the parent).
LEAF = (
    "import os, signal, sys, time\n"
    "run_id = os.environ['CARBONWRAP_RUN_ID']\n"
    "leaf = os.path.join(os.environ['LEAF_PARENT'], 'carbonwrap-' + run_id)\n"
    "def burn(seconds):\n"
    "    end = time.process_time() + seconds\n"
    "    while time.process_time() < end:\n"
    "        pass\n"
    "def say(name, text):\n"  # whole or not at all
    "    with open(name + '.tmp', 'w') as f:\n"
    "        f.write(text)\n"
    "    os.rename(name + '.tmp', name)\n"
    "def wait_for(name):\n"
    "    deadline = time.monotonic() + 30\n"
    "    while not os.path.exists(name) and time.monotonic() < deadline:\n"
    "        time.sleep(0.02)\n"
    "def move(group):\n"
    "    with open(os.path.join(group, 'cgroup.procs'), 'w') as f:\n"
    "        f.write(str(os.getpid()))\n"
)

# A worker forked into a cgroup of its own below the leaf; it outlives the command.
WORKER_BELOW = LEAF + (
    "os.mkdir(leaf + '/workers')\n"
    "if os.fork() == 0:\n"
    "    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)\n"  # outlives the run: not its output
    "    os.dup2(1, 2)\n"
    "    move(leaf + '/workers')\n"
    "    burn(0.4)\n"
    "    say('worker', f'{os.getpid()} {time.process_time()}')\n"
    "    time.sleep(30)\n"
    "    os._exit(0)\n"
    "wait_for('worker')\n"
)

# The same worker ignores SIGTERM and stays busy; the command is busy until stopped.
STUBBORN_BELOW = LEAF + (
    "os.mkdir(leaf + '/workers')\n"
    "if os.fork() == 0:\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "    move(leaf + '/workers')\n"
    "    say('worker', str(os.getpid()))\n"
    "    burn(30)\n"
    "    os._exit(0)\n"
    "wait_for('worker')\n"
    "burn(30)\n"
)

# Burns in the leaf, moves itself to the leaf's parent (where carbonwrap runs), burns there.
LEAVER = LEAF + (
    "burn(0.2)\n"
    "inside = time.process_time()\n"
    "move(os.environ['LEAF_PARENT'])\n"
    "burn(1.5)\n"  # outside longer than the 0.9 s between two looks for departures
    "say('leaver', f'{os.getpid()} {inside} {time.process_time()}')\n"
)


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            return True  # ended; init reaps it
        time.sleep(0.05)
    return False


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _remove_leaf(leaf: Path) -> None:
    """Where carbonwrap could not (before the fix): the groups below first, once the processes
    killed there have gone."""
    deadline = time.monotonic() + 5
    while leaf.exists() and time.monotonic() < deadline:
        for group in sorted(leaf.glob("**/"), reverse=True):
            with contextlib.suppress(OSError):
                group.rmdir()
        time.sleep(0.05)


def _end(workdir: Path) -> dict[str, Any]:
    (log,) = logs_in(workdir / "logs")
    return records(log)[-1]


@pytest.mark.parametrize("method", METHODS)
def test_a_part_of_the_job_below_the_leaf_is_left_running_and_the_leaf_removed(
    workdir: Path, method: str
) -> None:
    """Before the fix the worker was not listed as left running (only the leaf's own
    cgroup.procs was read) and the leaf stayed behind (rmdir: EBUSY)."""
    parent = Path(own_cgroup_dir(2 if method == "cgroup2" else 1))
    result = run_cw(
        "run", "-q", *FAST, "--cpu-accounting", method, "--json", "-", "--",
        sys.executable, "-c", WORKER_BELOW,
        cwd=workdir, env=cw_env(LEAF_PARENT=str(parent)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    pid_text, cpu_text = (workdir / "worker").read_text().split()
    worker, worker_cpu_s = int(pid_text), float(cpu_text)
    leaf = parent / f"carbonwrap-{report['run_id']}"
    try:
        assert report["leftover_pids"] == [worker]
        assert _end(workdir)["leftover_pids"] == [worker]
        assert report["cpu_seconds"] >= worker_cpu_s  # counted below the leaf
        assert not leaf.exists()
        os.kill(worker, 0)  # left running
    finally:
        _kill(worker)
        _remove_leaf(leaf)


@needs_cgroup2
def test_a_budget_stop_reaches_a_part_of_the_job_below_the_leaf(workdir: Path) -> None:
    """Before the fix the worker below the leaf got neither SIGTERM nor SIGKILL: it ran on."""
    parent = Path(own_cgroup_dir(2))
    done = run_cw(
        "run", *FAST, "--cpu-accounting", "cgroup2", "--budget", "1J", "--on-exceed", "stop",
        "--budget-grace", "0.5", "--", sys.executable, "-c", STUBBORN_BELOW,
        cwd=workdir, env=cw_env(LEAF_PARENT=str(parent)),
    )  # fmt: skip
    worker = int((workdir / "worker").read_text())
    end = _end(workdir)
    leaf = parent / f"carbonwrap-{records(logs_in(workdir / 'logs')[0])[0]['run_id']}"
    try:
        assert done.returncode == 124, done.stderr
        budget = [r for r in records(logs_in(workdir / "logs")[0]) if r["type"] == "budget"]
        assert [r["event"] for r in budget] == ["set", "exceeded", "kill"]
        assert budget[-1]["pids"] == [worker]
        assert _gone(worker), f"worker {worker} below the leaf still running"
        assert end["leftover_pids"] == []
        assert not leaf.exists()
    finally:
        _kill(worker)
        _remove_leaf(leaf)


@needs_cgroup2
def test_a_nested_run_is_counted_in_the_outer_one(workdir: Path) -> None:
    """The inner run's leaf lies below the outer's; its count (and the inner carbonwrap's own
    CPU) is in the outer's; both leaves are removed."""
    burn = (
        "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
        "open('inner.cgroup', 'w').write(open('/proc/self/cgroup').read())\n"
    )
    inner = [*cw_argv("run", "-q", "--log-dir", "inner-logs", "--json", "inner.json", "--"),
             sys.executable, "-c", burn]  # fmt: skip
    result = run_cw("run", "-q", "--json", "-", "--", *inner, cwd=workdir)
    assert result.returncode == 0, result.stderr
    outer = json.loads(result.stdout)
    nested = json.loads((workdir / "inner.json").read_text())
    path = next(line[3:] for line in (workdir / "inner.cgroup").read_text().splitlines()
                if line.startswith("0::"))  # fmt: skip
    assert path.endswith(f"/carbonwrap-{outer['run_id']}/carbonwrap-{nested['run_id']}")
    assert nested["cpu_accounting"] == "cgroup2"
    # + the inner carbonwrap: its start-up at least (an interpreter: ~10 ms; ~25 ms in all here)
    assert outer["cpu_seconds"] >= nested["cpu_seconds"] + 0.01
    assert outer["leftover_pids"] == [] and nested["leftover_pids"] == []
    parent = Path(own_cgroup_dir(2))
    assert not (parent / f"carbonwrap-{outer['run_id']}").exists()


@needs_cgroup2
def test_cpu_used_after_moving_out_of_the_leaf_is_not_counted(workdir: Path) -> None:
    parent = Path(own_cgroup_dir(2))
    result = run_cw(
        "run", *FAST, "--json", "-", "--", sys.executable, "-c", LEAVER,
        cwd=workdir, env=cw_env(LEAF_PARENT=str(parent)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    _, inside_s, total_s = (float(x) for x in (workdir / "leaver").read_text().split())
    # The leaver's own clock counts from its fork: born in a v2 leaf (measure/cgroupspawn.py)
    # it first ran as carbonwrap's copy until its exec, ~0.3 ms that are carbonwrap's and not
    # counted; the leaf's usage_usec is whole microseconds besides.
    assert inside_s - 0.005 <= report["cpu_seconds"] < inside_s + 0.2 < total_s
    assert not (parent / f"carbonwrap-{report['run_id']}").exists()


@needs_cgroup2
def test_a_process_that_moves_itself_out_is_said_and_the_label_drops_whole_tree(
    workdir: Path,
) -> None:
    parent = Path(own_cgroup_dir(2))
    result = run_cw(
        "run",
        *FAST,
        "-v",
        "--json",
        "-",
        "--",
        sys.executable,
        "-c",
        LEAVER,
        cwd=workdir,
        env=cw_env(LEAF_PARENT=str(parent)),
    )  # fmt: skip  (-v: the CPU time line, with its label, is in the full report)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    pid = int((workdir / "leaver").read_text().split()[0])
    said = [n for n in report["notes"] if "moved out of the run's cgroup" in n]
    assert said == [
        f"1 process(es) moved out of the run's cgroup while running: {pid}; their CPU time "
        "from then on, and that of processes they started there, is not counted (the CPU "
        "time is not the whole tree's)"
    ]
    end = _end(workdir)
    assert end["escaped_pids"] == [pid]
    assert "exact, whole tree" not in result.stderr
    assert "counted by cgroup2 (the tree less 1 process that left its cgroup)" in result.stderr


# Process-tree mode: carbonwrap is the subreaper, so orphans are re-parented to it.

TRUTH = (
    "import os, resource, sys, time\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end:\n"
    "    pass\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "fd = os.open('truth', os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)\n"
    "os.write(fd, f'{os.getpid()} {usage.ru_utime + usage.ru_stime}\\n'.encode())\n"
    "os.close(fd)\n"
    "deadline = time.monotonic() + 30\n"
    "while len(sys.argv) > 2 and time.monotonic() < deadline:\n"
    "    if len(open('truth').read().splitlines()) >= int(sys.argv[2]):\n"
    "        break\n"
    "    time.sleep(0.02)\n"
)


def test_process_tree_counts_orphans_and_adds_what_was_reaped_to_what_lives(
    workdir: Path,
) -> None:
    """An orphan (its parent, a subshell, exits at once) whose shell waits for a burner and
    then stays; the command's own burner is waited for. Before the fix only the larger of
    RUSAGE_CHILDREN (the command's part) and the polled tree (the child's descendants: not
    the orphan) counted: 0.3 s of 0.8."""
    py = shlex.quote(sys.executable)
    truth = shlex.quote(TRUTH)
    script = (  # the orphan outlives the run: its output is not the run's
        f"(sh -c '{py} -c \"$0\" 0.5; sleep 4' {truth} >/dev/null 2>&1 &); {py} -c {truth} 0.3 2"
    )
    result = run_cw(
        "run", "-q", *FAST, "--cpu-accounting", "process-tree", "--json", "-", "--",
        "sh", "-c", script, cwd=workdir,
    )  # fmt: skip
    leftover = json.loads(result.stdout)["leftover_pids"] if result.stdout else []
    try:
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        truth_s = sum(
            float(line.split()[1]) for line in (workdir / "truth").read_text().split("\n")[:-1]
        )
        assert 0.8 <= truth_s < 1.0
        # The shells' own CPU and each process's exit work are real tree CPU the truth lacks.
        assert truth_s - 0.01 <= report["cpu_seconds"] <= truth_s + 0.15
        assert len(leftover) == 2  # the orphan shell and its sleep
    finally:
        for pid in leftover:
            _kill(pid)


def test_process_tree_budget_stop_reaches_orphans(workdir: Path) -> None:
    """An orphan that ignores SIGTERM: before the fix the stop never listed it (the child's
    descendants only) and it was left running."""
    stubborn = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('orphan', 'w').write(str(os.getpid()))\n"
        "end = time.monotonic() + 30\n"
        "while time.monotonic() < end: pass\n"
    )
    busy = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"
    py = shlex.quote(sys.executable)
    script = f"({py} -c {shlex.quote(stubborn)} &); exec {py} -c {shlex.quote(busy)}"
    done = run_cw(
        "run", *FAST, "--cpu-accounting", "process-tree", "--budget", "1J", "--on-exceed",
        "stop", "--budget-grace", "0.5", "--", "sh", "-c", script, cwd=workdir,
    )  # fmt: skip
    orphan = int((workdir / "orphan").read_text())
    try:
        assert done.returncode == 124, done.stderr
        (log,) = logs_in(workdir / "logs")
        budget = [r for r in records(log) if r["type"] == "budget"]
        assert [r["event"] for r in budget] == ["set", "exceeded", "kill"]
        assert orphan in budget[-1]["pids"]
        assert _gone(orphan), f"orphan {orphan} still running"
        assert _end(workdir)["leftover_pids"] == []
    finally:
        _kill(orphan)
