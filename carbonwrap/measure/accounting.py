"""Choose how the tree's CPU time is counted: cgroup v2, cgroup v1, or process-tree polling."""

from __future__ import annotations

import os

from carbonwrap.errors import CarbonwrapError
from carbonwrap.lite import Protocol
from carbonwrap.measure import leafjoin
from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.sensors import SensorUnavailable

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractContextManager

    from carbonwrap.measure.cgroupspawn import IntoCgroup


class TreeAccounting(Protocol):
    """What the run needs from a CPU accounting backend.

    `pids()` lists the tree's processes as they are at the call: every PID it returns belonged
    to the tree at some moment during the call, never to a process that took a tree process's
    PID after it ended (the budget stop pins each PID with a pidfd, then lists again).
    `escaped`: processes noticed to have moved themselves out of the counted tree (a cgroup
    leaf: their PID written to another cgroup), in the order noticed; their CPU time from then
    on is not counted (`escape_warning`).
    """

    method: str
    approximate: bool
    escaped: list[int]

    @property
    def joining(self) -> bool:
        """The kernel is still moving carbonwrap into the tree's cgroup (`CgroupLeaf`): the
        spawn will wait for it, and work done meanwhile costs no time."""

    def placement(self) -> AbstractContextManager[IntoCgroup | None]:
        """A block to spawn the command in: the spawn functions that start it inside the
        counted tree (a cgroup v2 leaf), or None where os's do (carbonwrap placed itself)."""

    def started(self, pid: int) -> None: ...
    def cpu_s(self) -> float: ...
    def pids(self) -> list[int]: ...
    def rss_bytes(self) -> int: ...
    def finish(self) -> list[int]: ...


def escape_warning(escaped: Sequence[int]) -> str:
    """The one warning of a run whose processes left its cgroup: how many, which."""
    shown = " ".join(str(pid) for pid in escaped[:20]) + (" …" if len(escaped) > 20 else "")
    return (
        f"{len(escaped)} process(es) moved out of the run's cgroup while running: {shown}; "
        "their CPU time from then on, and that of processes they started there, is not "
        "counted (the CPU time is not the whole tree's)"
    )


def open_accounting(method: str, run_id: str) -> tuple[TreeAccounting, list[str]]:
    """The first backend that works for `method`, and why better ones were passed over.

    `auto` falls back step by step; a method named explicitly must work or it is an error.
    A cgroup leaf (carbonwrap-RUN_ID) that carbonwrap will join starts its join at once
    (CgroupLeaf.join_early): open the accounting first and do the rest of start-up while the
    kernel moves carbonwrap in. A v2 leaf usually needs none: the command is born in it
    (measure/cgroupspawn.py).
    """
    notes: list[str] = []
    if method == "process-tree":
        return _process_tree(), notes
    name = f"{leafjoin.LEAF_PREFIX}{run_id}"
    if method == "auto":
        made = leafjoin.first_leaf(name, notes)
        if made is None:
            notes.append("CPU time counted by polling the process tree (approximate)")
            return _process_tree(), notes
    else:
        try:
            made = leafjoin.LeafJoin(2 if method == "cgroup2" else 1, name)
        except SensorUnavailable as exc:
            raise CarbonwrapError(
                f"--cpu-accounting {method} is not possible here: {exc.reason}; "
                "use --cpu-accounting auto"
            ) from exc
    leaf = _take_over(made, notes)
    try:
        leaf.join_early()
    except BaseException:  # no thread to be had (or Ctrl-C): the leaf is not left behind
        leaf.finish()
        raise
    return leaf, notes


def _process_tree() -> TreeAccounting:
    """The polling fallback, loaded only where it is used (a cgroup leaf needs none of it)."""
    from carbonwrap.measure.proctree import ProcessTreeAccounting

    return ProcessTreeAccounting()


def take_early() -> tuple[str, tuple[TreeAccounting, list[str]]] | None:
    """The run id and the auto accounting of the cgroup leaf entry.py made and started joining
    first thing (`leafjoin.open_early`), once; None if it made none."""
    taken = leafjoin.take_early()
    if taken is None:
        return None
    run_id, made, notes = taken
    return run_id, (_take_over(made, notes), notes)


def _take_over(made: leafjoin.LeafJoin, notes: list[str]) -> CgroupLeaf:
    """The run's CgroupLeaf over a leaf made (its join under way or not), its stale
    neighbours' removal said; the leaf removed again if that fails (Ctrl-C)."""
    try:
        leaf = CgroupLeaf(made.version, os.path.basename(made.path), made=made)
    except BaseException:
        made.close()
        raise
    if leaf.removed_stale:
        notes.append(
            f"removed {len(leaf.removed_stale)} empty cgroup leaf/leaves left by killed runs"
        )
    return leaf
