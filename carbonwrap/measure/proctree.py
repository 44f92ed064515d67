"""Approximate CPU time of a process tree where no cgroup is writable: /proc polling plus rusage.

The tree is every descendant of carbonwrap: the child, what it starts, and the orphans
re-parented to carbonwrap, its subreaper (the descendants of the child alone miss those). Its
CPU time is the sum of two parts that hold no process twice:

- reaped: RUSAGE_CHILDREN since the start. Every process carbonwrap waited for (the child,
  orphans it reaped), each with its own children time: the kernel adds a reaped process's CPU
  and its children time to its reaper's children time, so this holds every process waited for
  along a chain of parents up to carbonwrap.
- live: every process of the tree carbonwrap has not reaped (running, or ended and not waited
  for yet: a zombie), its own CPU and its children time (the children it waited for).

A process is waited for once, by one parent: carbonwrap (reaped), a live process (live), or a
process reaped since (its children time went up with it). The reaped part is read first and the
live processes parents first, so a reap between two reads loses a process from that reading
rather than counting it twice. Neither part holds a process reaped by a parent that ignores
SIGCHLD (the kernel adds its time nowhere), nor one started and still running since the last
walk of /proc (every WALK_EVERY_S); the largest own CPU seen of each process is a floor for the
first. Labelled approximate.

psutil is not needed: one read of /proc/PID/stat gives a process's parent, CPU times and start
time (its identity: a PID reused by another process has another start time).
"""

from __future__ import annotations

import os
import time

from carbonwrap.lite import Lock, nullcontext, suppress
from carbonwrap.sensors.pidstat import process_stat

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

WALK_EVERY_S = 5.0  # how often new processes of the tree are looked for
PIDS_WALK_S = 1.0  # pids() (the budget stop, GPU matching) sees processes at most this old
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def descendants(root_pid: int) -> list[tuple[int, int]]:
    """Every descendant of `root_pid` as (PID, start ticks), breadth first, parents before
    children. Reads each process's stat in /proc (as `ps` does) to find its parent."""
    children: dict[int, list[tuple[int, int]]] = {}
    with suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = process_stat(int(name))
                if stat is not None:
                    children.setdefault(stat.ppid, []).append((int(name), stat.start_ticks))
    tree = list(children.get(root_pid, []))
    for pid, _ in tree:  # grows as it goes
        tree.extend(children.get(pid, []))
    return tree


def _children_cpu_s() -> float:
    import resource  # the process tree only (a C module: start-up)

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to us instead of init (prctl(2)); False if refused.
    Only for the process tree polled from /proc: ctypes costs every run ~2 ms of start-up."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class ProcessTreeAccounting:
    """CPU seconds of carbonwrap's descendants: what it reaped plus what is still live."""

    method = "process-tree"
    approximate = True
    joining = False

    def __init__(self) -> None:
        self.escaped: list[int] = []  # a process cannot leave carbonwrap's descendants
        self._started = False
        self._own_pid = os.getpid()
        self._tree: list[tuple[int, int]] = []  # (pid, start ticks), parents first
        self._walked_at_s = -float("inf")
        self._lock = Lock()  # the sampler reads; the budget stop lists
        self._seen_cpu_s: dict[tuple[int, int], float] = {}  # own CPU of the live, largest seen
        self._gone_seen_s = 0.0  # the same of processes gone since
        self._rusage_base_s = _children_cpu_s()
        self._count_s = 0.0  # the largest count so far: each is a lower bound of the truth
        self._final_cpu_s: float | None = None

    def placement(self) -> AbstractContextManager[None]:
        """Nothing to join; carbonwrap becomes a subreaper first, so that what the command
        leaves running stays among its descendants (a cgroup leaf keeps it without that)."""
        become_subreaper()
        return nullcontext()

    def started(self, pid: int) -> None:
        self._started = True

    def _walk(self) -> None:
        """Every descendant of carbonwrap, parents first: every WALK_EVERY_S, not every
        reading."""
        self._tree = descendants(self._own_pid)
        self._walked_at_s = time.monotonic()

    def cpu_s(self) -> float:
        """Reaped plus live CPU seconds (see the module's docstring); never less than before."""
        if self._final_cpu_s is not None:
            return self._final_cpu_s
        if not self._started:
            return 0.0
        with self._lock:
            reaped_s = _children_cpu_s() - self._rusage_base_s  # first: see the docstring
            if time.monotonic() - self._walked_at_s >= WALK_EVERY_S:
                self._walk()
            live_s = 0.0
            alive: list[tuple[int, int]] = []
            seen = self._seen_cpu_s
            for pid, start in self._tree:
                stat = process_stat(pid)
                if stat is None or stat.start_ticks != start:
                    continue  # gone (its PID may be another process's by now)
                seen[(pid, start)] = max(seen.get((pid, start), 0.0), stat.cpu_s)
                live_s += stat.cpu_s + stat.children_cpu_s
                alive.append((pid, start))
            for key in seen.keys() - set(alive):
                self._gone_seen_s += seen.pop(key)
            self._tree = alive
            floor_s = self._gone_seen_s + sum(seen.values())
            self._count_s = max(self._count_s, reaped_s + live_s, floor_s)
            return self._count_s

    def pids(self) -> list[int]:
        """The tree's running processes now: walked again when the last walk is over
        PIDS_WALK_S old, and each PID checked against the start time the walk saw, so that a
        PID another process has taken since is never listed (the budget stop signals these)."""
        with self._lock:
            if self._started and time.monotonic() - self._walked_at_s >= PIDS_WALK_S:
                self._walk()
            tree = self._tree
        listed = []
        for pid, start in tree:
            stat = process_stat(pid)
            if stat is not None and stat.start_ticks == start and not stat.ended:
                listed.append(pid)
        return listed

    def rss_bytes(self) -> int:
        """Resident memory of the tree as of the latest reading (shared pages per process)."""
        total_pages = 0
        for pid, _ in self._tree:
            with (
                suppress(OSError, ValueError, IndexError),
                open(f"/proc/{pid}/statm", "rb") as f,
            ):
                total_pages += int(f.read().split()[1])
        return total_pages * _PAGE_BYTES

    def finish(self) -> list[int]:
        """After the child was reaped: the count frozen over a fresh walk (leftovers' CPU up to
        now included); the processes still running (orphans re-parented to carbonwrap)."""
        if self._final_cpu_s is not None:
            return []
        self._walked_at_s = -float("inf")
        count_s = self.cpu_s()
        leftover = self.pids()
        self._final_cpu_s = count_s
        return leftover
