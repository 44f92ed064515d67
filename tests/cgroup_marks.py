"""Skip marks for tests that need a writable cgroup here (v2, or v1 with cpuacct): root and a
cgroup tree this process may create a leaf in."""

from __future__ import annotations

import os

import pytest
from conftest import is_root

from carbonwrap.measure.cgroup import CgroupLeaf
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
