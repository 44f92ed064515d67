"""Skip marks for tests that need a writable cgroup here (v2, or v1 with cpuacct): root and a
cgroup tree this process may create a leaf in; starting processes in a leaf's placement."""

from __future__ import annotations

import os
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
