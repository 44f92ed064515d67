"""The run's own cgroup leaf: create it, start the child in it, read it, remove it.

cgroup v2: `cpu.stat` `usage_usec` exists in every cgroup, with or without the cpu controller
(https://docs.kernel.org/admin-guide/cgroup-v2.html#cpu-interface-files). cgroup v1: the
`cpuacct` controller's `cpuacct.usage` in nanoseconds
(https://docs.kernel.org/admin-guide/cgroup-v1/cpuacct.html). The leaf is created below the
wrapper's own cgroup, which v2's "no internal processes" rule guarantees can hold a child group.

Both counts are hierarchical: a cgroup below the leaf (a nested run's leaf, one a job made for a
part of itself) is counted in the leaf's, also after it is removed. Its processes are the tree's
too: listed, stopped by a budget, moved out at the end, and the groups removed bottom-up.
"""

from __future__ import annotations

import errno
import os
import time

from carbonwrap.lite import suppress
from carbonwrap.measure.leafjoin import (
    LeafJoin,
    cgroup_dirs,
    parse_proc_cgroup,
    read_fd,
    read_text,
    remove_dir,
)
from carbonwrap.sensors.pidstat import process_stat

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from carbonwrap.measure.cgroupspawn import IntoCgroup

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# How often readings look for processes that left the leaf (at --interval 0.1 the walk of the
# leaf's groups and processes every reading was a third of the sampler's CPU).
DEPARTURES_EVERY_S = 0.9
# How old a listing of the leaf's processes the memory figure and the departures walk may share.
LISTING_SHARED_S = 0.05


def procs_in(groups: list[str], first_fd: int = -1) -> list[int]:
    """The processes in these cgroups now, each once (one moving between two of them while
    they are read may be missed). `first_fd`: the first group's cgroup.procs, open (read with
    pread: no path to look up, nothing opened)."""
    found: dict[int, None] = {}
    for i, group in enumerate(groups):
        with suppress(OSError, ValueError):
            text = (
                read_fd(first_fd)
                if i == 0 and first_fd >= 0
                else read_text(f"{group}/cgroup.procs")
            )
            found.update(dict.fromkeys(int(p) for p in text.split()))
    return list(found)


class CgroupLeaf:
    """A fresh cgroup for one run, the child started in it (`placement`)."""

    def __init__(
        self,
        version: int,
        name: str,
        parent: str | os.PathLike[str] | None = None,
        *,
        made: LeafJoin | None = None,
    ) -> None:
        """The leaf `name` below `parent` (default: the wrapper's own cgroup), or the one
        `made` already (leafjoin.open_early: its join may be under way)."""
        leaf = made if made is not None else LeafJoin(version, name, parent)
        self._leaf = leaf
        self.version = leaf.version
        self.method = f"cgroup{leaf.version}"
        self.approximate = False
        self.hierarchy_root = leaf.hierarchy_root  # the root cgroup's cpu.stat: rootcpu.py
        self.parent = leaf.parent
        self.path = leaf.path
        self.removed_stale = leaf.removed_stale
        self._procs_fd, self._parent_procs_fd, self._usage_fd = leaf.fds
        self._final_cpu_s: float | None = None
        self._last_cpu_s = 0.0  # the count as last read, kept if the leaf is removed under us
        self._wrapper_cpu_s = 0.0  # our own CPU while we sat in the leaf to spawn the child
        self._placed = False  # the child has been spawned in the leaf
        self._finished = False
        # Processes seen in the leaf or below (PID -> start time in clock ticks), and those
        # that later left for a cgroup outside it (noticed at a reading; said at the end).
        self._members: dict[int, int] = {}
        self.escaped: list[int] = []
        self.departures_every_s = DEPARTURES_EVERY_S
        self._departures_at = -DEPARTURES_EVERY_S  # when they were last looked for (monotonic)
        self.walks = 0  # how many times readings looked for departures
        self._listed: tuple[float, list[int]] = (-float("inf"), [])  # when, `pids()`' answer
        self._proc_path: str | None = None  # the leaf as /proc/PID/cgroup names it

    def join_early(self) -> None:
        """Where carbonwrap will join the leaf (`LeafJoin.will_join`: v1, v2 mounted
        favordynmods, no clone3 to be had), start moving it in now, on a thread
        (`LeafJoin.start`): what wait there is overlaps the rest of start-up; `placement`
        waits for it and charges back everything carbonwrap ran in the leaf meanwhile.
        Elsewhere nothing joins: the command is born in the v2 leaf (`placement`)."""
        if self._leaf.will_join():
            self._leaf.start()

    @property
    def joining(self) -> bool:
        """The early join still waits for the kernel (`placement` will wait for it)."""
        return self._leaf.joining

    def placement(self) -> _Placement:
        """Spawn inside this block and the child starts life in the leaf.

        A v2 leaf carbonwrap does not join (`LeafJoin.clones`): the block gives the spawn
        functions (`cgroupspawn.IntoCgroup`) that start the child inside the leaf with clone3:
        carbonwrap never enters it, and nothing waits for the kernel's grace period (~1.2 ms
        more than a quick join: the copy of carbonwrap forked and exec'd, _ctypes loaded);
        the copy's CPU before its exec is charged back (`_charge_copy`). Otherwise (v1, v2
        mounted favordynmods, no clone3 to be had), or once the clone is refused at the spawn
        (a kernel before 5.7, another thread of ours running): carbonwrap is in the leaf
        (joined early, or now), spawns with os.posix_spawn (the child inherits the cgroup at
        fork, before exec, so nothing it does can escape), and moves back out. Everything
        the leaf has counted before such a spawn is ours (it was empty until we joined), and
        our CPU from then until we are out again is measured; both are subtracted from the
        tree's count.
        """
        return _Placement(self)

    def _enter(self) -> tuple[float, float]:
        """In the leaf; (our CPU the leaf has counted, our process time now)."""
        self._leaf.joined()
        # process_time() brings this thread's runtime, and so the leaf's count, up to date;
        # no other thread of ours runs now (the early join's thread has ended). Then the
        # leaf's count, then our clock again: what the read itself costs is in the count, and
        # our CPU from the second clock on is charged back at the exit. Clock, read, clock:
        # the read is never charged back twice (once in the count, once on the clock), which
        # took ~20 µs more than carbonwrap used off the command's count.
        time.process_time()
        ours_s = self._usage_s()
        return ours_s, time.process_time()

    def _exit(self, ours_s: float, before_s: float) -> None:
        # Our clock before the leave: the leave's own few µs in the leaf stay in the command's
        # count, rather than our CPU after it, outside the leaf, being taken off it.
        after_s = time.process_time()
        self._leaf.leave()
        self._wrapper_cpu_s += ours_s + after_s - before_s
        self._placed = True

    def _charge_copy(self, cpu_s: float) -> None:
        """The clone's child ran as carbonwrap's copy in the leaf until its exec (its few
        lines, its copied pages): `cpu_s` of the leaf's count are ours, as a join's are
        (~0.3 ms here). The kernel's teardown of the copy inside exec stays in the count
        (cgroupspawn.py says why)."""
        self._wrapper_cpu_s += cpu_s

    def started(self, pid: int) -> None:
        """Nothing to do: the child was born in the leaf."""

    def cpu_s(self, *, force: bool = False) -> float:
        """CPU seconds used by every process that ever ran in the leaf or below it, less
        carbonwrap's own. Readings also note processes that have left (`escaped`), at most
        every DEPARTURES_EVERY_S (a walk of the leaf's groups and processes), or now with
        `force`."""
        if self._final_cpu_s is not None:
            return self._final_cpu_s
        if not self._placed:
            return 0.0  # before the spawn the leaf holds only carbonwrap, joined early
        self._last_cpu_s = max(self._last_cpu_s, self._usage_s() - self._wrapper_cpu_s)
        now_s = time.monotonic()
        if force or now_s - self._departures_at >= self.departures_every_s:
            self._departures_at = now_s
            self.walks += 1
            self._note_departures(afresh=force)
        return self._last_cpu_s

    def _note_departures(self, *, afresh: bool = False) -> None:
        """Which processes seen in the leaf before are no longer in it or below it, and of
        those, which still run elsewhere: they moved themselves out (wrote their PID to another
        cgroup's cgroup.procs), and their CPU from then on, with that of processes they start
        there, is not counted. Seen at readings: one that leaves and ends between two readings
        is not noticed."""
        now = self.pids() if afresh else self._recent_pids()  # the end's walk: as it is now
        members = self._members
        for pid in now:
            if pid not in members and (stat := process_stat(pid)) is not None:
                members[pid] = stat.start_ticks
        for pid in members.keys() - set(now):
            start = members.pop(pid)
            if self._moved_out(pid, start) and pid not in self.escaped:
                self.escaped.append(pid)

    def _moved_out(self, pid: int, start_ticks: int) -> bool:
        """Whether the process is alive in a cgroup outside the leaf; False when it ended
        (zombies are no longer listed in cgroup.procs, and v1 shows them in the root)."""
        try:
            with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return False
        stat = process_stat(pid)  # after the read: it ran there then
        if stat is None or stat.start_ticks != start_ticks or stat.ended:
            return False
        path = parse_proc_cgroup(text, None if self.version == 2 else "cpuacct")
        leaf = self._leaf_proc_path()
        if path is None or leaf is None:
            return False
        return path != leaf and not path.startswith(leaf.rstrip("/") + "/")

    def _leaf_proc_path(self) -> str | None:
        """The leaf's path as /proc/PID/cgroup shows it: carbonwrap's own (it sits in the
        parent once the child is spawned) and the leaf's name; read when first needed."""
        if self._proc_path is None:
            with suppress(OSError):
                own = parse_proc_cgroup(
                    read_text("/proc/self/cgroup"), None if self.version == 2 else "cpuacct"
                )
                if own is not None:
                    name = os.path.basename(self.path)
                    self._proc_path = f"{own.rstrip('/')}/{name}"
        return self._proc_path

    def _usage_s(self) -> float:
        """The leaf's CPU count as the kernel keeps it."""
        text = os.pread(self._usage_fd, 512, 0).decode("ascii")
        if self.version == 1:
            return int(text) / 1e9
        key, _, value = text.partition("\n")[0].partition(" ")
        if key == "usage_usec":  # the first line, as the kernel writes it
            return int(value) / 1e6
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        raise OSError(errno.EINVAL, f"no usage_usec in {self.path}/cpu.stat")

    def pids(self) -> list[int]:
        """Processes now in the leaf or in a cgroup below it."""
        # v2 lists afresh at each read from the start; v1 keeps the list it made for an open
        # file while it is read again within a second (cgroup_pidlist_start): opened each time.
        listed = procs_in(cgroup_dirs(self.path), self._procs_fd if self.version == 2 else -1)
        self._listed = (time.monotonic(), listed)
        return listed

    def _recent_pids(self) -> list[int]:
        """`pids()`, or its answer of the last LISTING_SHARED_S: the memory figure and the
        departures walk, due at the same reading every 0.9 s, list the leaf once between them
        (each listing, run cold after the sampler's sleep, ~100-200 µs here). Never for a
        budget stop or the end, which list afresh (`pids`)."""
        listed_at, listed = self._listed
        if time.monotonic() - listed_at < LISTING_SHARED_S:
            return listed
        return self.pids()

    def rss_bytes(self) -> int:
        """Resident memory of the leaf's processes (sum of RSS; shared pages count per process)."""
        total_pages = 0
        for pid in self._recent_pids():
            with suppress(OSError, ValueError, IndexError):
                fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    total_pages += int(os.read(fd, 256).split()[1])  # 7 numbers
                finally:
                    os.close(fd)
        return total_pages * _PAGE_BYTES

    def finish(self) -> list[int]:
        """Freeze the count, move processes still in the leaf or below it out (left running),
        remove the cgroups below it and the leaf, bottom-up.

        Returns the PIDs that were still running (nothing the second time).
        """
        if self._finished:
            return []
        self._finished = True
        self._leaf.stop()  # setup failed before the spawn: the join may still be running
        with suppress(OSError):
            self._leaf.leave()
        try:
            self._final_cpu_s = self.cpu_s(force=True)  # the last departures, before we move any
        except OSError:  # the leaf was removed from outside (ENODEV): its last count stands
            self._final_cpu_s = self._last_cpu_s
        leftover: dict[int, None] = {}
        for _ in range(10):  # a leftover may start another process while we move them
            moving = [pid for pid in self.pids() if pid not in leftover]
            if not moving:
                break
            for pid in moving:
                with suppress(OSError):
                    os.write(self._parent_procs_fd, str(pid).encode())
            leftover.update(dict.fromkeys(moving))
        for fd in (self._procs_fd, self._parent_procs_fd, self._usage_fd):
            os.close(fd)
        self._procs_fd = self._parent_procs_fd = self._usage_fd = -1
        for group in reversed(cgroup_dirs(self.path)):  # children before parents
            remove_dir(group)
        return list(leftover)


class _Placement:
    """`CgroupLeaf.placement()`'s block: the spawn functions that start the child in a v2
    leaf (which join the leaf themselves if the clone is refused: `_join`), or None with
    carbonwrap in the leaf; carbonwrap out again on exit however the block ends (a context
    manager written out: contextlib costs the run's start-up)."""

    __slots__ = ("_counted", "_leaf")

    def __init__(self, leaf: CgroupLeaf) -> None:
        self._leaf = leaf
        self._counted: tuple[float, float] | None = None  # set once carbonwrap joined

    def __enter__(self) -> IntoCgroup | None:
        leaf = self._leaf
        if leaf._leaf.clones and not leaf._leaf.started:
            from carbonwrap.measure.cgroupspawn import IntoCgroup  # only for this spawn

            return IntoCgroup(leaf.path, on_refused=self._join, on_born=leaf._charge_copy)
        self._join()
        return None

    def _join(self) -> None:
        self._counted = self._leaf._enter()

    def __exit__(self, *exc: object) -> None:
        if self._counted is not None:
            self._leaf._exit(*self._counted)
        self._leaf._placed = True
