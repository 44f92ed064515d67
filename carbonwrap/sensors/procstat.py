"""Busy time of all CPUs from /proc/stat."""

from __future__ import annotations

import os

# Fields of the "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice.
# Busy = user + nice + system + irq + softirq. idle and iowait are not busy; steal is time the
# hypervisor ran someone else; guest(_nice) is already included in user(_nice)
# (https://www.kernel.org/doc/html/latest/filesystems/proc.html#miscellaneous-kernel-statistics-in-proc-stat).
_BUSY_FIELDS = (0, 1, 2, 5, 6)


def parse_busy_ticks(text: str) -> int:
    """Busy clock ticks of all CPUs from the aggregate `cpu` line of /proc/stat."""
    # The aggregate line comes first; only where it does not is the rest looked through.
    first = text.partition("\n")[0]
    for line in (first,) if first.startswith("cpu ") else text.splitlines():
        if line.startswith("cpu "):
            f = line.split()
            if len(f) > 7:  # every kernel since 2.6.0: the five summed in line (no generator)
                return int(f[1]) + int(f[2]) + int(f[3]) + int(f[6]) + int(f[7])
            return sum(int(f[i + 1]) for i in _BUSY_FIELDS if i + 1 < len(f))
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


class ProcStat:
    """Reads the busy seconds of all CPUs; keeps the file open and re-reads it with pread."""

    name = "procstat"

    def __init__(self, proc_root: str | os.PathLike[str] = "/proc") -> None:
        self._fd = os.open(os.path.join(proc_root, "stat"), os.O_RDONLY | os.O_CLOEXEC)
        self._seconds_per_tick = 1.0 / os.sysconf("SC_CLK_TCK")

    def busy_s(self) -> float:
        """Cumulative busy seconds of all CPUs since boot."""
        # The kernel makes the whole file at each read; only its first line is needed (the
        # aggregate "cpu" line, under 200 bytes: 10 fields of at most 20 digits).
        text = os.pread(self._fd, 512, 0).decode("ascii", "replace")
        return parse_busy_ticks(text) * self._seconds_per_tick

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
