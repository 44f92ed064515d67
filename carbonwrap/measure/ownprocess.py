"""CPU time of this process and its children since a moment (`carbonwrap.track`): its own
threads by the process CPU clock, its children by rusage and /proc, each from a baseline.

The count is the sum of three parts that hold no CPU second twice:

- self: CLOCK_PROCESS_CPUTIME_ID (`time.process_time`) since the start: every thread of this
  process, carbonwrap's own sampler and poller threads included — the same sum of user and
  system time as getrusage(RUSAGE_SELF), in nanoseconds rather than microseconds.
- reaped: RUSAGE_CHILDREN since the start: every child this process waited for during the
  block, each with the children it waited for (getrusage(2)).
- live: every descendant not yet waited for (running, or a zombie), its own CPU and its
  children time from /proc/PID/stat (proc(5) fields 14-17), less what it had already used when
  the block began. A descendant that was alive at the start and is waited for during the
  block adds its whole CPU to a reaper's count: its baseline is taken off once it has gone.

Not counted: other processes, children reaped by a parent that ignores SIGCHLD (the kernel
adds their time nowhere), a descendant re-parented away from this process (to init) before it
was walked. Children started and still running since the last walk of /proc (every
`proctree.WALK_EVERY_S`) come in at the next walk; what they used by then is counted.
Labelled approximate (the children's part is polled, as in `proctree`); the process's own part
is exact.

No cgroup leaf: moving a live interpreter (a Jupyter kernel, with every thread it has) into a
cgroup of its own would change its resource controls for the rest of its life, and under
cgroup v2's no-internal-processes rule it could not come back to a cgroup that has a child.
"""

import contextlib
import os
import resource
import threading
import time

from carbonwrap.measure.proctree import PIDS_WALK_S, WALK_EVERY_S, descendants
from carbonwrap.sensors.pidstat import process_stat

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")

Key = tuple[int, int]  # (PID, start ticks): one process, whatever later takes its PID


def _reaped_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class OwnProcessAccounting:
    """CPU seconds of this process and its descendants since it was made (`TreeAccounting`)."""

    method = "process"
    approximate = True
    joining = False

    def __init__(self) -> None:
        self.escaped: list[int] = []  # a thread cannot leave its process
        self._pid = os.getpid()
        self._lock = threading.Lock()  # the sampler reads; summary() and finish() too
        self._self_base_s = time.process_time()
        self._reaped_base_s = _reaped_cpu_s()
        self._tree: list[Key] = descendants(self._pid)
        self._walked_at_s = time.monotonic()
        # What each descendant alive at the start had used by then (own + children's CPU).
        self._base_s: dict[Key, float] = {}
        for key in self._tree:
            stat = process_stat(key[0])
            if stat is not None and stat.start_ticks == key[1]:
                self._base_s[key] = stat.cpu_s + stat.children_cpu_s
        self._gone_base_s = 0.0  # baselines of those gone since: counted whole by a reaper
        self._count_s = 0.0
        self._final_cpu_s: float | None = None

    def placement(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to join: the process is already running."""
        return contextlib.nullcontext()

    def started(self, pid: int) -> None:
        """Nothing to do: the baselines were taken when this was made."""

    def _walk(self) -> None:
        self._tree = descendants(self._pid)
        self._walked_at_s = time.monotonic()

    def cpu_s(self) -> float:
        """Self + reaped + live since the start (see the module's docstring); never less than
        before."""
        if self._final_cpu_s is not None:
            return self._final_cpu_s
        with self._lock:
            reaped_s = _reaped_cpu_s() - self._reaped_base_s  # first, as in proctree
            self_s = time.process_time() - self._self_base_s
            before = set(self._tree)
            if time.monotonic() - self._walked_at_s >= WALK_EVERY_S:
                self._walk()
            live_s = 0.0
            alive: list[Key] = []
            for key in self._tree:
                stat = process_stat(key[0])
                if stat is None or stat.start_ticks != key[1]:
                    continue
                live_s += stat.cpu_s + stat.children_cpu_s - self._base_s.get(key, 0.0)
                alive.append(key)
            for key in (before | set(self._tree)) - set(alive):
                self._gone_base_s += self._base_s.pop(key, 0.0)
            self._tree = alive
            count_s = self_s + reaped_s + live_s - self._gone_base_s
            self._count_s = max(self._count_s, count_s)
            return self._count_s

    def pids(self) -> list[int]:
        """This process and its running descendants (for the GPU's process list: a CUDA
        context is usually this process's own)."""
        with self._lock:
            if time.monotonic() - self._walked_at_s >= PIDS_WALK_S:
                before = self._tree
                self._walk()
                for key in set(before) - set(self._tree):  # gone: see cpu_s
                    self._gone_base_s += self._base_s.pop(key, 0.0)
            tree = list(self._tree)
        listed = [self._pid]
        for pid, start in tree:
            stat = process_stat(pid)
            if stat is not None and stat.start_ticks == start and not stat.ended:
                listed.append(pid)
        return listed

    def rss_bytes(self) -> int:
        """Resident memory of this process and its descendants (shared pages per process)."""
        total_pages = 0
        for pid in (self._pid, *(pid for pid, _ in self._tree)):
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{pid}/statm", "rb") as f,
            ):
                total_pages += int(f.read().split()[1])
        return total_pages * _PAGE_BYTES

    def finish(self) -> list[int]:
        """The count frozen over a fresh walk; the descendants started during the block and
        still running (this process goes on, and is not one of them; nor are the children it
        had before the block: a worker pool, a server a notebook started earlier)."""
        if self._final_cpu_s is not None:
            return []
        self._walked_at_s = -float("inf")
        count_s = self.cpu_s()
        before = {pid for pid, _ in self._base_s}
        leftover = [pid for pid in self.pids()[1:] if pid not in before]
        self._final_cpu_s = count_s
        return leftover
