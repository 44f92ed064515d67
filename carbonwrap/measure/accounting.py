"""Choose how the tree's CPU time is counted: cgroup v2, cgroup v1, or process-tree polling."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Protocol

from carbonwrap.errors import CarbonwrapError
from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.sensors import SensorUnavailable


class TreeAccounting(Protocol):
    """What the run needs from a CPU accounting backend."""

    method: str
    approximate: bool

    def placement(self) -> AbstractContextManager[None]: ...
    def started(self, pid: int) -> None: ...
    def cpu_s(self) -> float: ...
    def pids(self) -> list[int]: ...
    def rss_bytes(self) -> int: ...
    def finish(self) -> list[int]: ...


def new_run_id() -> str:
    """12 random hex digits: name the run's log and cgroup leaf; the child gets it as
    CARBONWRAP_RUN_ID."""
    return os.urandom(6).hex()


def open_accounting(method: str, run_id: str) -> tuple[TreeAccounting, list[str]]:
    """The first backend that works for `method`, and why better ones were passed over.

    `auto` falls back step by step; a method named explicitly must work or it is an error.
    A cgroup leaf (carbonwrap-RUN_ID) starts its join at once (CgroupLeaf.join_early): open
    the accounting first and do the rest of start-up while the kernel moves carbonwrap in.
    """
    from carbonwrap.measure.proctree import ProcessTreeAccounting

    notes: list[str] = []
    order = ("cgroup2", "cgroup1", "process-tree") if method == "auto" else (method,)
    for candidate in order:
        if candidate == "process-tree":
            return ProcessTreeAccounting(), notes
        try:
            leaf = CgroupLeaf(2 if candidate == "cgroup2" else 1, f"carbonwrap-{run_id}")
        except SensorUnavailable as exc:
            if method != "auto":
                raise CarbonwrapError(
                    f"--cpu-accounting {method} is not possible here: {exc.reason}; "
                    "use --cpu-accounting auto"
                ) from exc
            notes.append(f"{candidate} unavailable: {exc.reason}")
            continue
        if leaf.removed_stale:
            notes.append(
                f"removed {len(leaf.removed_stale)} empty cgroup leaf/leaves left by killed runs"
            )
        leaf.join_early()
        return leaf, notes
    notes.append("CPU time counted by polling the process tree (approximate)")
    return ProcessTreeAccounting(), notes
