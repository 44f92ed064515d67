"""The edges of the tree, in process, with real cgroups, processes and signals: cgroups below the
leaf (counted, listed, moved out, removed), processes that move out of the leaf (noticed, not
when they merely end), and process-tree mode's PIDs (a PID reused by another process is never
signalled) and its count (what was reaped plus what is live, nothing twice)."""

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
from cgroup_marks import joined, needs_cgroup1, needs_cgroup2
from conftest import cw_env, is_root

from carbonwrap.measure.accounting import escape_warning
from carbonwrap.measure.cgroup import DEPARTURES_EVERY_S, CgroupLeaf
from carbonwrap.measure.leafjoin import own_cgroup_dir, parse_proc_cgroup, remove_stale_leaves

# A process the test drives line by line; each answer is its CPU time so far (s).
WORKER = """\
import os, sys, time
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "burn":
        end = time.process_time() + float(arg)
        while time.process_time() < end:
            pass
    elif command == "move":
        with open(arg, "w") as f:
            f.write(str(os.getpid()))
    elif command == "exit":
        sys.exit(0)
    print(time.process_time(), flush=True)
"""

VERSIONS = [pytest.param(2, marks=needs_cgroup2), pytest.param(1, marks=needs_cgroup1)]


def ask(worker: subprocess.Popen[str], line: str) -> float:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(line + "\n")
    worker.stdin.flush()
    return float(worker.stdout.readline())


def start_worker() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def state(pid: int) -> str:
    """proc(5)'s state letter: R, S, Z (a zombie) …"""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


def cgroup_of(pid: int, version: int) -> str | None:
    text = Path(f"/proc/{pid}/cgroup").read_text()
    return parse_proc_cgroup(text, None if version == 2 else "cpuacct")


@contextlib.contextmanager
def leaf_with_workers(
    version: int, count: int
) -> Iterator[tuple[CgroupLeaf, list[subprocess.Popen[str]]]]:
    """A leaf (removed at the end, whatever happens) and `count` workers born in it."""
    leaf = CgroupLeaf(version, f"carbonwrap-test-edges-{os.getpid()}")
    workers: list[subprocess.Popen[str]] = []
    try:
        with leaf.placement() as into:
            joined(into)
            workers += [start_worker() for _ in range(count)]
        yield leaf, workers
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        with contextlib.suppress(OSError):  # a second finish closed closed files before the fix
            leaf.finish()
        for group in sorted(Path(leaf.path).glob("**/"), reverse=True):  # if finish could not
            with contextlib.suppress(OSError):
                group.rmdir()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_cgroup_below_the_leaf_is_counted_listed_moved_out_and_removed(version: int) -> None:
    """A job that puts a part of itself in a cgroup of its own below the leaf (as a nested
    run's leaf is): before the fix its processes were not listed (no budget stop, no
    leftovers) and the leaf was left behind (rmdir: EBUSY)."""
    with leaf_with_workers(version, 1) as (leaf, (worker,)):
        deeper = Path(leaf.path) / "sub" / "deeper"
        deeper.mkdir(parents=True)
        (Path(leaf.path) / "empty").mkdir()  # e.g. a nested run's leaf, already finished
        ask(worker, f"move {deeper}/cgroup.procs")
        used_s = ask(worker, "burn 0.3")
        assert leaf.pids() == [worker.pid]
        # The count is hierarchical (v2 cpu.stat, v1 cpuacct.usage): the start-up is in it.
        assert used_s - 0.001 <= leaf.cpu_s() <= used_s + 0.1
        assert leaf.escaped == []  # moved within the tree: not a departure
        assert leaf.finish() == [worker.pid]  # still running: left running, moved out
        assert not os.path.exists(leaf.path)
        assert cgroup_of(worker.pid, version) == cgroup_of(os.getpid(), version)
        assert worker.poll() is None
        assert leaf.cpu_s() >= used_s - 0.001  # frozen


@pytest.mark.parametrize("version", VERSIONS)
def test_a_process_that_moves_itself_out_is_noticed_and_no_longer_counted(version: int) -> None:
    """Before the fix nothing noticed it: the run claimed the whole tree's CPU time."""
    with leaf_with_workers(version, 3) as (leaf, (leaver, ender, mover)):
        leaf.departures_every_s = 0.0  # every reading looks (by default at most every 0.9 s)
        inside_s = ask(leaver, "burn 0.2")
        leaf.cpu_s()  # a reading sees all three in the leaf
        (Path(leaf.path) / "sub").mkdir()
        ask(mover, f"move {leaf.path}/sub/cgroup.procs")  # still the tree's
        ask(leaver, f"move {leaf.parent}/cgroup.procs")
        assert ender.stdin is not None
        ender.stdin.close()  # it ends, and stays a zombie: not waited for yet
        for _ in range(200):
            if state(ender.pid) == "Z":
                break
            time.sleep(0.01)
        ask(leaver, "burn 0.3")  # outside now
        counted_s = leaf.cpu_s()
        assert leaf.escaped == [leaver.pid]  # not the one that ended, not the one below
        assert counted_s < inside_s + 0.2  # three start-ups, not the 0.3 s outside
        assert leaf.finish() == [mover.pid]
        assert leaf.escaped == [leaver.pid]


@pytest.mark.parametrize("version", VERSIONS)
def test_readings_more_often_than_a_second_look_for_departures_once_a_second(
    version: int,
) -> None:
    """At --interval 0.1 the walk of the leaf's groups and processes at every reading was most
    of the sampler's CPU (0.5 % of a core here); the count itself is read every time."""
    with leaf_with_workers(version, 1) as (leaf, (worker,)):
        before = leaf.walks
        counts = [leaf.cpu_s() for _ in range(5)]
        assert leaf.walks - before <= 1  # five readings within a few ms: one walk at most
        ask(worker, "burn 0.05")
        assert leaf.cpu_s() > counts[-1]  # the CPU count is still fresh at every reading
        time.sleep(DEPARTURES_EVERY_S)
        walked = leaf.walks
        leaf.cpu_s()
        assert leaf.walks == walked + 1


@pytest.mark.parametrize("version", VERSIONS)
def test_a_departure_between_the_last_reading_and_the_end_is_noticed(version: int) -> None:
    with leaf_with_workers(version, 1) as (leaf, (worker,)):
        ask(worker, "burn 0.05")
        leaf.cpu_s()
        ask(worker, f"move {leaf.parent}/cgroup.procs")
        assert leaf.finish() == []  # not a leftover: it is not in the leaf
        assert leaf.escaped == [worker.pid]


@needs_cgroup2
def test_stale_leaves_with_cgroups_below_them_are_removed() -> None:
    """A killed run whose tree made cgroups below its leaf: before the fix the leaf stayed for
    good (rmdir of a cgroup with children: EBUSY)."""
    parent = Path(own_cgroup_dir(2))
    stale = parent / f"carbonwrap-test-stale-{os.getpid()}"
    busy = parent / f"carbonwrap-test-stale-busy-{os.getpid()}"
    (stale / "a" / "b").mkdir(parents=True)
    (busy / "a").mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (busy / "a" / "cgroup.procs").write_text(str(sleeper.pid))
        two_hours_ago = time.time() - 7200
        for leaf in (stale, busy):
            os.utime(leaf, (two_hours_ago, two_hours_ago))
        removed = remove_stale_leaves(str(parent))
        assert stale.name in removed and not stale.exists()
        assert busy.name not in removed and (busy / "a").exists()  # a process still runs there
    finally:
        sleeper.kill()
        sleeper.wait()
        for group in (busy / "a", busy, stale / "a" / "b", stale / "a", stale):
            with contextlib.suppress(OSError):
                group.rmdir()


# Process-tree mode: each scenario in a fresh interpreter standing for carbonwrap, so that the
# tree (its descendants) holds nothing of the test's own.

PARENT = """\
import subprocess, sys
child = subprocess.Popen(["sleep", "60"])
print(child.pid, flush=True)
sys.stdin.readline()
child.kill()
child.wait()
print("reaped", flush=True)
sys.stdin.readline()
"""

REUSE = f"""\
import json, os, subprocess, sys
from carbonwrap.measure.proctree import ProcessTreeAccounting
from carbonwrap.run.budget import Stopper
acct = ProcessTreeAccounting()
parent = subprocess.Popen(
    [sys.executable, "-c", {PARENT!r}], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
)
acct.started(parent.pid)
grandchild = int(parent.stdout.readline())
acct.cpu_s()  # the reading that sees both
listed = sorted(acct.pids())
parent.stdin.write("\\n")
parent.stdin.flush()
parent.stdout.readline()  # the grandchild has ended and been reaped
print(json.dumps({{"grandchild": grandchild, "listed": listed, "parent": parent.pid}}), flush=True)
sys.stdin.readline()  # the test has given the grandchild's PID to another process


def send(signum):
    os.kill(parent.pid, signum)
    return True


Stopper(parent.pid, send, acct.pids, 30.0, print).stop()
print(json.dumps({{"status": parent.wait()}}), flush=True)
"""


def drive(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=cw_env(),
    )


def _take_pid(pid: int, tries: int = 100) -> subprocess.Popen[bytes] | None:
    """Another process on `pid` (through ns_last_pid, as CRIU restores PIDs); None if other
    work on the machine took it every time."""
    for _ in range(tries):
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        holder = subprocess.Popen(["sleep", "60"])
        if holder.pid == pid:
            return holder
        holder.kill()
        holder.wait()
    return None


@pytest.mark.skipif(not is_root(), reason="writing ns_last_pid to reuse a PID needs root")
def test_the_budget_stop_never_signals_a_pid_another_process_took() -> None:
    """A grandchild is sampled, ends, and an unrelated process gets its PID before the stop.
    Before the fix the stop sent that process SIGTERM (pids() gave the PIDs of the last
    reading as they were)."""
    driver = drive(REUSE)
    holder = None
    try:
        assert driver.stdout is not None and driver.stdin is not None
        seen = json.loads(driver.stdout.readline())
        assert seen["listed"] == sorted([seen["parent"], seen["grandchild"]])
        # A process's identity is its PID and start time, in clock ticks (10 ms): a PID given
        # out again within the same tick would pass for the same process. The kernel gives a
        # PID out again only after going through all pid_max of them, never within 10 ms;
        # ns_last_pid can, so the test waits.
        time.sleep(0.05)
        holder = _take_pid(seen["grandchild"])
        if holder is None:
            pytest.skip("other work on the machine kept taking the PID; nothing was tested")
        driver.stdin.write("\n")
        driver.stdin.flush()
        assert json.loads(driver.stdout.readline())["status"] == -signal.SIGTERM
        time.sleep(0.2)
        assert holder.poll() is None, "the process that took the PID got the stop's SIGTERM"
    finally:
        driver.kill()
        driver.wait()
        if holder is not None:
            holder.kill()
            holder.wait()


ONCE = """\
import json, os, subprocess, sys, time
from carbonwrap.measure.proctree import ProcessTreeAccounting
acct = ProcessTreeAccounting()
script = "import time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: 0"
child = subprocess.Popen([sys.executable, "-c", script])
acct.started(child.pid)
readings = []
while True:
    readings.append(acct.cpu_s())
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    time.sleep(0.02)
left = acct.finish()
print(json.dumps({"readings": readings, "left": left, "count": acct.cpu_s(),
                  "truth": usage.ru_utime + usage.ru_stime}))
"""


def test_a_child_polled_while_it_runs_and_then_reaped_counts_once() -> None:
    """Its CPU is in what was polled and, once reaped, in RUSAGE_CHILDREN: counted once."""
    out, _ = drive(ONCE).communicate(timeout=60)
    done = json.loads(out)
    assert done["left"] == []
    assert max(done["readings"]) <= done["truth"] + 0.001
    assert done["truth"] - 0.001 <= done["count"] <= done["truth"] + 0.001


def test_the_warning_names_how_many_left_and_which() -> None:
    assert escape_warning([41, 42]) == (
        "2 process(es) moved out of the run's cgroup while running: 41 42; their CPU time "
        "from then on, and that of processes they started there, is not counted (the CPU "
        "time is not the whole tree's)"
    )
    assert ": " + " ".join(map(str, range(20))) + " …;" in escape_warning(list(range(25)))
