"""Hardware sensors: small classes behind one protocol, each given its root or handle."""

from __future__ import annotations


def numbered(name: str, prefix: str, parts: int = 1) -> tuple[int, ...] | None:
    """The numbers of a sysfs or hwmon name `prefix` N[:N…] (`parts` of them, each decimal
    digits, as the regex `prefix\\d+(?::\\d+)*` would take them), else None: "intel-rapl:0:1"
    with prefix "intel-rapl:" and parts 2 is (0, 1). No `re`: the sensors probed at every run's
    start-up do without it."""
    if not name.startswith(prefix):
        return None
    fields = name[len(prefix) :].split(":")
    if len(fields) != parts or not all(field.isdecimal() for field in fields):
        return None
    return tuple(int(field) for field in fields)


class SensorUnavailable(Exception):
    """A sensor cannot be used here; `reason` says why and, where possible, how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
