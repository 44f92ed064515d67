"""Approximate CPU time of a process tree where no cgroup is writable: polling plus rusage.

Polling `/proc` misses processes that start and end between two polls and CPU used after the
last poll; at the end the kernel's RUSAGE_CHILDREN (every descendant that was waited for,
including orphans this subreaper reaped) is taken where it is larger. Labelled approximate.
"""

from __future__ import annotations

import contextlib
import resource
import time
from typing import Any

WALK_EVERY_S = 5.0  # how often new processes of the tree are looked for


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class ProcessTreeAccounting:
    """CPU seconds of the child and its descendants by polling, reconciled with rusage."""

    method = "process-tree"
    approximate = True

    def __init__(self) -> None:
        import psutil  # lazily: only this fallback needs it

        self._psutil: Any = psutil
        self._root: Any = None
        self._seen_cpu_s: dict[tuple[int, float], float] = {}
        self._rusage_base_s = _children_cpu_s()
        self._final_cpu_s: float | None = None
        self._last_tree: list[Any] = []  # the tree as of the latest cpu_s()
        self._walked_at_s = 0.0

    def placement(self) -> contextlib.AbstractContextManager[None]:
        """Nothing to join."""
        return contextlib.nullcontext()

    def started(self, pid: int) -> None:
        with contextlib.suppress(self._psutil.Error):
            self._root = self._psutil.Process(pid)

    def _tree(self) -> list[Any]:
        if self._root is None:
            return []
        try:
            return [self._root, *self._root.children(recursive=True)]
        except self._psutil.Error:
            return []

    def cpu_s(self) -> float:
        """Sum over every process seen so far of its last observed own CPU time."""
        if self._final_cpu_s is not None:
            return self._final_cpu_s
        # Finding the tree reads every process's /proc entry (psutil builds the parent map):
        # do that every WALK_EVERY_S; between walks read only the processes already known.
        now_s = time.monotonic()
        if not self._last_tree or now_s - self._walked_at_s >= WALK_EVERY_S:
            self._last_tree = self._tree()
            self._walked_at_s = now_s
        alive = []
        for proc in self._last_tree:
            with contextlib.suppress(self._psutil.Error):
                times = proc.cpu_times()
                key = (proc.pid, proc.create_time())  # psutil caches it: no second read
                self._seen_cpu_s[key] = max(
                    self._seen_cpu_s.get(key, 0.0), times.user + times.system
                )
                alive.append(proc)
        self._last_tree = alive
        return sum(self._seen_cpu_s.values())

    def pids(self) -> list[int]:
        """The tree as of the latest reading (the sampler calls cpu_s first)."""
        return [p.pid for p in self._last_tree]

    def rss_bytes(self) -> int:
        total = 0
        for proc in self._last_tree:
            with contextlib.suppress(self._psutil.Error):
                total += proc.memory_info().rss
        return int(total)

    def finish(self) -> list[int]:
        """After the child was reaped: the larger of polling and rusage; orphans left running."""
        polled = self.cpu_s()
        self._final_cpu_s = max(polled, _children_cpu_s() - self._rusage_base_s)
        leftover: list[int] = []
        # Orphans re-parented to us (the subreaper) that are still alive.
        with contextlib.suppress(self._psutil.Error):
            leftover = [p.pid for p in self._psutil.Process().children(recursive=True)]
        return leftover
