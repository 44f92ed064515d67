"""Whether an NVIDIA driver can be present, from a few stat calls (no library loaded)."""

from __future__ import annotations

import os

# Where the driver shows itself: its procfs entry and control device on Linux (also inside
# containers given GPUs), /dev/dxg on WSL2.
DRIVER_MARKERS = ("proc/driver/nvidia/version", "dev/nvidiactl", "dev/dxg")


def driver_present(root: str | os.PathLike[str] = "/") -> bool:
    """True if any marker exists: only then are pynvml (~35 ms to import) and nvmlInit worth it."""
    return any(os.path.exists(os.path.join(root, marker)) for marker in DRIVER_MARKERS)


def no_driver_reason() -> str:
    """What the GPU component says when `driver_present` is False."""
    return f"no NVIDIA driver (none of {', '.join('/' + m for m in DRIVER_MARKERS)} exist)"
