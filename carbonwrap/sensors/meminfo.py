"""Memory in use on the whole machine, from /proc/meminfo."""

from __future__ import annotations

import os


def parse_used_bytes(text: str) -> int:
    """MemTotal − MemAvailable, in bytes (the kernel reports kB)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            values[key] = int(rest.split()[0]) * 1024
            if len(values) == 2:
                break
    return max(0, values.get("MemTotal", 0) - values.get("MemAvailable", 0))


class MemInfo:
    """Keeps /proc/meminfo open and re-reads its first lines with pread."""

    name = "meminfo"

    def __init__(self, proc_root: str | os.PathLike[str] = "/proc") -> None:
        self._fd = os.open(os.path.join(proc_root, "meminfo"), os.O_RDONLY | os.O_CLOEXEC)

    def used_bytes(self) -> int:
        return parse_used_bytes(os.pread(self._fd, 512, 0).decode("ascii", "replace"))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
