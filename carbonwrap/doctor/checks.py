"""`carbonwrap doctor`: what this machine lets carbonwrap measure, one check per sensor and service.

Each check is a small function that takes its roots and handles as arguments and returns `Check`s;
`command.py` runs them, `render/doctor.py` draws them.
"""

from typing import NamedTuple

OK = "ok"  # works as well as carbonwrap can use it
WARN = "warn"  # works, with less accuracy or a fallback (an estimate, polling, the static table)
MISSING = "missing"  # not present here (no RAPL, no driver, no credentials)
ERROR = "error"  # present but refused or broken (permission denied, a lost GPU, a bad file)
STATUSES = (OK, WARN, MISSING, ERROR)

# The checks without which carbonwrap measures nothing: the busy time of all CPUs and memory in
# use (/proc), and a way to count the command's own CPU time (a cgroup, or process polling).
# Energy then always comes from RAPL or the rated-power estimate; GPU, region and intensity
# lines only refine the result.
ESSENTIAL = ("proc", "cgroup")


class Check(NamedTuple):
    """One line of the report: what was checked, how it went, and the fix where there is one."""

    name: str
    status: str  # one of STATUSES
    detail: str
    fix: str | None = None


def can_measure(checks: list[Check]) -> bool:
    """True when every essential check is ok or warn (exit status 0)."""
    essential = [c for c in checks if c.name in ESSENTIAL]
    return len(essential) == len(ESSENTIAL) and all(c.status in (OK, WARN) for c in essential)
