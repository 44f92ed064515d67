"""One process's /proc/PID/stat: its state, parent, CPU times and start time (its identity).
Read by the cgroup leaf (who ran there), the process-tree polling and the end's wait for
processes left running; a module of its own so that none of them loads the others."""

from __future__ import annotations

import os

from carbonwrap.lite import NamedTuple

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


class ProcessStat(NamedTuple):
    """What /proc/PID/stat says of a process. Units: seconds; `start_ticks` in clock ticks
    since boot (proc(5) field 22, 10 ms), which with the PID names the process: the kernel
    gives a PID out again only after going through pid_max others, never within a tick."""

    state: str
    ppid: int
    cpu_s: float  # its own user + system time, every thread
    children_cpu_s: float  # of the children it waited for (and theirs)
    start_ticks: int

    @property
    def ended(self) -> bool:
        """A zombie (ended, not waited for yet) or dead."""
        return self.state in "ZXx"


def parse_stat(text: str) -> ProcessStat | None:
    """proc(5)'s /proc/PID/stat; the command name may hold spaces and parentheses."""
    _, paren, rest = text.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) < 20:
        return None
    try:
        ticks = [int(f) for f in fields[11:15]]  # utime, stime, cutime, cstime
        return ProcessStat(
            fields[0],
            int(fields[1]),
            (ticks[0] + ticks[1]) * _TICK_S,
            (ticks[2] + ticks[3]) * _TICK_S,
            int(fields[19]),
        )
    except ValueError:
        return None


def process_stat(pid: int) -> ProcessStat | None:
    """The process's stat now, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(f.read().decode("utf-8", "replace"))
    except OSError:
        return None
