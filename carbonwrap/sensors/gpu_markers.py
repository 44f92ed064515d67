"""Whether a GPU vendor's driver can be here, from a few stat calls, nothing loaded: NVIDIA,
AMD (amdgpu) and a Jetson's power monitors. Only where one says yes is its library worth
loading (pynvml ~35 ms to import, amdsmi a ctypes library). One module for the three: every
run asks each of them (start-up, issue 19)."""

from __future__ import annotations

import os

# Where the NVIDIA driver shows itself: its procfs entry and control device on Linux (also
# inside containers given GPUs), /dev/dxg on WSL2.
NVIDIA_MARKERS = ("proc/driver/nvidia/version", "dev/nvidiactl", "dev/dxg")

# The amdgpu driver shows itself by its module directory ("/sys/module/amdgpu exists when it
# is [loaded]": https://rocm.docs.amd.com/projects/amdsmi/en/latest/install/install.html) and,
# inside a container given GPUs, by the compute device node it was handed.
AMD_MARKERS = ("sys/module/amdgpu", "dev/kfd")


def nvidia_driver_present(root: str | os.PathLike[str] = "/") -> bool:
    """True if any NVIDIA marker exists: only then are pynvml and nvmlInit worth it."""
    return _any_exists(root, NVIDIA_MARKERS)


def no_nvidia_driver_reason() -> str:
    """What the GPU component says when `nvidia_driver_present` is False."""
    return f"no NVIDIA driver ({_none_of(NVIDIA_MARKERS)})"


def amd_driver_present(root: str | os.PathLike[str] = "/") -> bool:
    """True if an AMD marker exists: only then are amdsmi and amdsmi_init worth it."""
    return _any_exists(root, AMD_MARKERS)


def no_amd_driver_reason() -> str:
    """What the GPU component says when `amd_driver_present` is False."""
    return f"no AMD GPU driver ({_none_of(AMD_MARKERS)})"


def _any_exists(root: str | os.PathLike[str], markers: tuple[str, ...]) -> bool:
    return any(os.path.exists(os.path.join(root, marker)) for marker in markers)


def _none_of(markers: tuple[str, ...]) -> str:
    return f"none of {', '.join('/' + m for m in markers)} exist"


def jetson_present(sysfs_root: str | os.PathLike[str]) -> bool:
    """Two stat calls: an INA3221 driver (hwmon or NVIDIA's iio) is bound. Not proof of a
    Jetson (the chip is generic): JetsonSensor then checks the device tree."""
    drivers = os.path.join(sysfs_root, "bus", "i2c", "drivers")
    return os.path.isdir(os.path.join(drivers, "ina3221")) or os.path.isdir(
        os.path.join(drivers, "ina3221x")
    )
