"""Skip marks for tests that need a writable cgroup here (v2, or v1 with cpuacct): root and a
cgroup tree this process may create a leaf in; starting processes in a leaf's placement."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from conftest import is_root

from carbonwrap.measure.cgroup import CgroupLeaf
from carbonwrap.measure.cgroupspawn import IntoCgroup
from carbonwrap.sensors import SensorUnavailable


def _cgroup_possible(version: int) -> bool:
    if not is_root():
        return False
    try:
        leaf = CgroupLeaf(version, f"carbonwrap-probe-{os.getpid()}")
    except SensorUnavailable:
        return False
    leaf.finish()
    return True


needs_cgroup2 = pytest.mark.skipif(not _cgroup_possible(2), reason="no writable cgroup v2 here")
needs_cgroup1 = pytest.mark.skipif(not _cgroup_possible(1), reason="no writable cgroup v1 cpuacct")


def spawn_in(into: IntoCgroup | None, argv: list[str], **attributes: Any) -> int:
    """A process started inside a placement's block as the run starts its command: with the
    spawn functions the block gives (a child born in a cgroup v2 leaf), else os's."""
    spawner = os if into is None else into
    return spawner.posix_spawnp(argv[0], argv, dict(os.environ), **attributes)


def joined(into: IntoCgroup | None) -> None:
    """Inside a placement's block: carbonwrap in the leaf, as where clone3 is refused, so that
    processes started any way at all (subprocess) are born in it."""
    if into is not None:
        into.refuse("the test starts its processes with subprocess")


def in_one_thread(body: Callable[[], None]) -> None:
    """`body` run in a forked copy of this process, which has one thread: a v2 leaf's command
    is born in it (clone3) only where carbonwrap runs no other thread, and this process may hold
    threads earlier tests left (an MLflow sink stuck on a silent server, by design). A failure
    in the copy fails the test here, with its traceback."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the copy)
        code = 0
        try:
            os.close(read_end)
            body()
        except BaseException:
            code = 1
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as report:
        failure = report.read().decode()
    status = os.waitpid(pid, 0)[1]
    if failure or os.waitstatus_to_exitcode(status) != 0:
        pytest.fail(f"in the one-thread copy:\n{failure}", pytrace=False)
