"""Cgroups in process: mountinfo and /proc/self/cgroup parsed, stale leaves removed, and a real
leaf joined early counts a child's exact CPU time and none of ours (a v2 leaf's command born
in it: test_cgroupspawn.py)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cgroup_marks import needs_cgroup1, needs_cgroup2, spawn_in

from carbonwrap.measure import leafjoin
from carbonwrap.measure.accounting import take_early
from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.measure.leafjoin import (
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
    assert v2.options == "rw,nsdelegate"  # the super options: favordynmods would be here
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
    """Joined early (v1; v2 where joins are quick, mounted favordynmods: said here),
    carbonwrap's own CPU in the leaf (before and around the spawn) is not the tree's; a run
    that fails before the spawn leaves carbonwrap where it was and no leaf."""
    home = _own_cgroup_line(version)

    def joining_leaf(name: str) -> CgroupLeaf:
        made = leafjoin.LeafJoin(version, f"{name}-{os.getpid()}", quick_joins=True)
        return CgroupLeaf(version, "", made=made)

    failed = joining_leaf("carbonwrap-test-early")
    failed.join_early()
    failed.finish()  # setup failed: the join may or may not have finished yet
    assert _own_cgroup_line(version) == home and not os.path.exists(failed.path)

    leaf = joining_leaf("carbonwrap-test-early2")
    leaf.join_early()
    end = time.process_time() + 0.2
    while time.process_time() < end:  # carbonwrap's start-up work, inside the leaf
        pass
    assert leaf.cpu_s() == 0.0  # nothing spawned yet
    child_script = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: 0"
    )
    with leaf.placement() as into:
        assert into is None  # carbonwrap is in the leaf: os's spawn
        pid = spawn_in(into, [sys.executable, "-c", child_script])
    assert _own_cgroup_line(version) == home  # back out for the rest of the run
    _, _, usage = os.wait4(pid, 0)
    truth_s = usage.ru_utime + usage.ru_stime
    leaf.finish()
    # The child's exit work is real tree CPU its rusage cannot include: a few ms. Our own
    # moves are measured to tens of microseconds (µs counters, the syscall's own time).
    assert truth_s - 0.001 <= leaf.cpu_s() <= truth_s + 0.03


@needs_cgroup2
def test_the_leaf_made_first_thing_is_taken_over_or_given_up() -> None:
    """entry.py's leaf (leafjoin.open_early, on os and _thread alone, before the rest of the
    accounting is loaded): the run's accounting takes it over, join under way, and it counts
    the child and goes as any leaf does; one no run takes is left and removed."""
    home = _own_cgroup_line(2)
    leafjoin.open_early()
    taken = take_early()
    assert taken is not None
    run_id, (leaf, notes) = taken
    assert isinstance(leaf, CgroupLeaf) and leaf.path.endswith(f"carbonwrap-{run_id}")
    assert leaf.method == "cgroup2" and notes == [] and take_early() is None
    with leaf.placement() as into:
        pid = spawn_in(into, ["true"])
    assert _own_cgroup_line(2) == home
    os.waitpid(pid, 0)
    leaf.finish()
    assert not os.path.exists(leaf.path)

    leafjoin.open_early()
    made = leafjoin._early[-1][1].path
    assert os.path.isdir(made)
    leafjoin.give_up_early()
    assert _own_cgroup_line(2) == home and not os.path.exists(made) and take_early() is None


@needs_cgroup2
def test_stale_leaves_go_before_the_new_leaf_is_made(tmp_path: Path) -> None:
    """A killed run's empty leaf is removed before the new leaf is made (the stale ones may be
    what keeps it from being made: cgroup.max.descendants) and before the join (whose grace
    period holds the cgroup lock a removal needs), and said by the run taking the leaf over."""
    parent = Path(own_cgroup_dir(2))
    old = parent / f"carbonwrap-test-stale-{os.getpid()}"
    old.mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    made: list[tuple[str, bool]] = []
    real_mkdir = os.mkdir

    def watching(path: str, *args: int) -> None:
        made.append((str(path), old.exists()))
        real_mkdir(path, *args)

    os.mkdir = watching  # type: ignore[assignment]  # the leaf's mkdir, seen in order
    try:
        leaf = leafjoin.LeafJoin(2, f"carbonwrap-test-new-{os.getpid()}")
    finally:
        os.mkdir = real_mkdir
    try:
        assert made == [(leaf.path, False)] and old.name in leaf.removed_stale
        assert CgroupLeaf(2, "", made=leaf).removed_stale == leaf.removed_stale
    finally:
        leaf.close()
    assert not os.path.exists(leaf.path)


@needs_cgroup2
def test_a_take_over_interrupted_leaves_no_leaf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C as the run takes the early leaf over: the leaf is left and removed, not lost
    between the early list and the run."""
    home = _own_cgroup_line(2)

    class Interrupted:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

    leafjoin.open_early()
    made = leafjoin._early[-1][1].path
    monkeypatch.setattr("carbonwrap.measure.accounting.CgroupLeaf", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        take_early()
    assert _own_cgroup_line(2) == home and not os.path.exists(made)
