"""The machine's busy time from the root cgroup's cpu.stat: parsed from the kernel's own text
(this VM's Linux 6.18 and the three-line file of 5.8), refused where the root is a cgroup
namespace's, chosen by the meters only where the hierarchy's root is known, and on the real
kernel the same busy time as /proc/stat's."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from carbonwrap.measure.leafjoin import own_cgroup
from carbonwrap.measure.meters import busy_time_source
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.procstat import ProcStat
from carbonwrap.sensors.rootcpu import RootCgroupCpu, parse_busy_usec

# /sys/fs/cgroup/unified/cpu.stat of the development VM (Linux 6.18.44), read 2026-12-07.
LINUX_6_18 = (
    "usage_usec 16788850274\nuser_usec 12192538824\nsystem_usec 4596311450\nnice_usec 18161761\n"
)
# Kernels before commit db5fd3cf8bf4: usage_usec added steal time; user + system never did.
LINUX_5_8 = "usage_usec 900\nuser_usec 500\nsystem_usec 300\n"


def root(tmp_path: Path, text: str, *, namespace: bool = False) -> Path:
    (tmp_path / "cpu.stat").write_text(text)
    if namespace:
        (tmp_path / "cgroup.type").write_text("domain\n")
    return tmp_path


def test_busy_time_is_user_plus_system_not_usage() -> None:
    assert parse_busy_usec(LINUX_6_18) == 12192538824 + 4596311450
    assert parse_busy_usec(LINUX_5_8) == 800  # not 900: steal is not busy time here
    with pytest.raises(ValueError, match="no user_usec and system_usec"):
        parse_busy_usec("usage_usec 5\nnr_periods 0\n")


def test_the_reader_gives_seconds_and_rereads_the_open_file(tmp_path: Path) -> None:
    reader = RootCgroupCpu(root(tmp_path, LINUX_5_8))
    try:
        assert reader.busy_s() == 800 / 1e6
        (tmp_path / "cpu.stat").write_text("usage_usec 2\nuser_usec 1500000\nsystem_usec 1\n")
        assert reader.busy_s() == 1500001 / 1e6
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("text", "namespace", "reason"),
    [
        (LINUX_6_18, True, "is not the root cgroup"),  # a container's cgroup namespace
        ("usage_usec 5\n", False, "no user_usec and system_usec"),
    ],
)
def test_a_root_that_is_not_the_machines_is_refused(
    tmp_path: Path, text: str, namespace: bool, reason: str
) -> None:
    with pytest.raises(SensorUnavailable, match=reason):
        RootCgroupCpu(root(tmp_path, text, namespace=namespace))


def test_a_root_without_cpu_stat_is_refused(tmp_path: Path) -> None:  # Linux before 5.8
    with pytest.raises(SensorUnavailable, match=r"cannot read the root cgroup's cpu\.stat"):
        RootCgroupCpu(tmp_path)


def test_the_meters_read_the_root_where_it_is_known_else_proc_stat(tmp_path: Path) -> None:
    (tmp_path / "cg").mkdir()
    hierarchy = root(tmp_path / "cg", LINUX_5_8)
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text("cpu  1 0 1 100 0 0 0 0 0 0\n")
    sensor, name = busy_time_source("/proc", str(hierarchy), {})
    assert (name, sensor.busy_s()) == ("the root cgroup's cpu.stat", 800 / 1e6)
    sensor.close()
    for given, environ in [("", {}), (str(hierarchy), {"CARBONWRAP_PROC_ROOT": str(proc)})]:
        sensor, name = busy_time_source(str(proc), given, environ)  # no root; a fake /proc
        assert (name, sensor.busy_s()) == ("/proc/stat", 2 / os.sysconf("SC_CLK_TCK"))
        sensor.close()
    (hierarchy / "cgroup.type").write_text("domain\n")  # a namespace's root: /proc/stat
    sensor, name = busy_time_source(str(proc), str(hierarchy), {})
    assert name == "/proc/stat"
    sensor.close()


def test_on_this_kernel_it_is_proc_stats_busy_time() -> None:
    """Both while this process keeps a CPU busy: the same counters, /proc/stat in 10 ms ticks
    (each of its five fields rounded down), the root in microseconds."""
    try:
        hierarchy = own_cgroup(2)[1]
        reader = RootCgroupCpu(hierarchy)
    except SensorUnavailable as exc:
        pytest.skip(f"no real root cgroup v2 here: {exc.reason}")
    proc = ProcStat()
    try:
        for _ in range(3):
            before = (reader.busy_s(), proc.busy_s())
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                pass
            after = (reader.busy_s(), proc.busy_s())
            root_s, proc_s = after[0] - before[0], after[1] - before[1]
            assert root_s >= 0.25  # this process's own 0.3 s of CPU, at least
            if abs(root_s - proc_s) <= 5 * 0.01 + 0.005:  # five fields, each floored to ticks
                return
        pytest.fail(f"root {root_s:.4f} s against /proc/stat {proc_s:.4f} s, three times")
    finally:
        reader.close()
        proc.close()
