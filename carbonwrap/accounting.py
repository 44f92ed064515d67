"""Choose how the tree's CPU time is counted: cgroup v2, cgroup v1, or process-tree polling."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from carbonwrap.cgroup import CgroupLeaf
from carbonwrap.errors import CarbonwrapError
from carbonwrap.sensors import SensorUnavailable

METHODS = ("auto", "cgroup2", "cgroup1", "process-tree")


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


def open_accounting(method: str, leaf_name: str) -> tuple[TreeAccounting, list[str]]:
    """The first backend that works for `method`, and why better ones were passed over.

    `auto` falls back step by step; a method named explicitly must work or it is an error.
    """
    from carbonwrap.proctree import ProcessTreeAccounting

    notes: list[str] = []
    order = ("cgroup2", "cgroup1", "process-tree") if method == "auto" else (method,)
    for candidate in order:
        if candidate == "process-tree":
            return ProcessTreeAccounting(), notes
        try:
            leaf = CgroupLeaf(2 if candidate == "cgroup2" else 1, leaf_name)
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
        return leaf, notes
    notes.append("CPU time counted by polling the process tree (approximate)")
    return ProcessTreeAccounting(), notes
