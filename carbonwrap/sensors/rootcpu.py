"""Busy time of all CPUs from the root cgroup's cpu.stat (cgroup v2, Linux 5.8 and later).

The same kernel counters as /proc/stat's busy fields (user, nice, system, irq, softirq: each
CPU's kcpustat), summed by the kernel over the CPUs: `user_usec` is user + nice, `system_usec`
system + irq + softirq (kernel/cgroup/rstat.c, root_cgroup_cputime). Their sum is taken rather
than `usage_usec`, which also held steal time until that was taken out (commit db5fd3cf8bf4,
backported to the stable kernels; Linux 5.8 to then still has it). Against /proc/stat: in
microseconds rather than clock ticks of 10 ms (the counters still move by the kernel's tick),
and a file of a few lines where /proc/stat is made afresh at each read with a line per CPU and
a count per interrupt (its cost grows with the machine: the sampler reads it every interval).
In a container given a /proc/stat of its own (lxcfs) but the host's cgroup namespace, the
figure is the host's, as the real root's is.

Only the real root holds the machine's figures: the root a cgroup namespace shows (a
container's) is an ordinary cgroup, whose cpu.stat counts its own processes. That one has a
`cgroup.type` file, which the kernel gives every cgroup but the real root (CFTYPE_NOT_ON_ROOT).
"""

from __future__ import annotations

import os

from carbonwrap.sensors import SensorUnavailable


def parse_busy_usec(text: str) -> int:
    """user_usec + system_usec from a cpu.stat's text."""
    user = system = None
    for line in text.split("\n", 4)[:4]:  # usage_usec, user_usec, system_usec come first
        key, _, value = line.partition(" ")
        if key == "user_usec":
            user = int(value)
        elif key == "system_usec":
            system = int(value)
    if user is None or system is None:
        raise ValueError("no user_usec and system_usec in the root cgroup's cpu.stat")
    return user + system


class RootCgroupCpu:
    """Reads the busy seconds of all CPUs; keeps cpu.stat open and re-reads it with pread."""

    name = "the root cgroup's cpu.stat"

    def __init__(self, hierarchy_root: str | os.PathLike[str]) -> None:
        if os.path.exists(os.path.join(hierarchy_root, "cgroup.type")):
            raise SensorUnavailable(f"{hierarchy_root} is not the root cgroup (a namespace's)")
        try:
            self._fd = os.open(os.path.join(hierarchy_root, "cpu.stat"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:  # before Linux 5.8 the root has no cpu.stat
            raise SensorUnavailable(f"cannot read the root cgroup's cpu.stat: {exc}") from exc
        try:
            self.busy_s()
        except (OSError, ValueError) as exc:
            self.close()
            raise SensorUnavailable(f"the root cgroup's cpu.stat: {exc}") from exc

    def busy_s(self) -> float:
        """Cumulative busy seconds of all CPUs since boot."""
        return parse_busy_usec(os.pread(self._fd, 256, 0).decode("ascii", "replace")) / 1e6

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
