"""amdsmi's return shapes, which differ between ROCm releases, as plain numbers in our units."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

# amdsmi_power_info_t: "socket_power" (W, ROCm 6.4+ on Linux: current power), else
# "current_socket_power" (MI300 and later), else "average_socket_power" (Navi, MI200 and
# earlier). Unsupported members read 0xFFFF (uint16 max in gpu_metrics) or UINT32_MAX; the
# Python layer turns 0xFFFF into "N/A" from ROCm 6.2, earlier releases pass the number through.
_POWER_KEYS = ("socket_power", "current_socket_power", "average_socket_power")
_NOT_AVAILABLE = (0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)
_UJ_PER_J = 1e6


def counter_energy_j(counter: Mapping[str, Any]) -> float | None:
    """amdsmi_get_energy_count's accumulator times its resolution (µJ), in J; None if invalid.

    The accumulator is "energy_accumulator" from ROCm 6.2.1 (zeus: "Changed since amdsmi
    6.2.1"); "power" before, and beside it, deprecated, until 6.4 (amdsmi_interface.py).
    """
    raw = counter.get("energy_accumulator", counter.get("power"))
    accumulator, resolution_uj = number(raw), number(counter.get("counter_resolution"))
    if accumulator is None or resolution_uj is None:
        return None
    return accumulator * resolution_uj / _UJ_PER_J


def reading_power_w(info: Mapping[str, Any]) -> float | None:
    """The first power amdsmi_get_power_info gives (W); a 0 only if every value is 0 (the
    secondary die of an MI250, or a field some release leaves at 0 beside a real one)."""
    values = [v for v in (number(info.get(key)) for key in _POWER_KEYS) if v is not None]
    return next((v for v in values if v > 0), values[0] if values else None)


def vram_bytes(info: Mapping[str, Any]) -> int:
    """VRAM a process holds: memory_usage.vram_mem, else the total "mem" (bytes)."""
    usage = info.get("memory_usage") or {}
    vram = integer(usage.get("vram_mem")) if isinstance(usage, Mapping) else None
    return vram if vram is not None else (integer(info.get("mem")) or 0)


def number(value: Any) -> float | None:
    """A reading as a float; None for "N/A", the "not supported" maxima and anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value in _NOT_AVAILABLE or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def integer(value: Any) -> int | None:
    """An int from a number or a hex/decimal string ("0x740c"); None for "N/A" and the like."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if hasattr(value, "value") and isinstance(value.value, int):  # a ctypes c_uint32 handle
        return int(value.value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return int(value, 0)
    return None


def rocr_uuid(asic_serial: Any) -> str:
    """ROCr's name of a device, "GPU-" and 16 hex digits, from amdsmi's asic_serial ("0x…"
    from ROCm 6.2, the bare hex of sysfs unique_id before); "" where there is none."""
    serial = text(asic_serial) if isinstance(asic_serial, (str, bytes)) else ""
    try:
        value = int(serial.removeprefix("0x").removeprefix("0X"), 16)
    except ValueError:
        return ""
    return f"GPU-{value:016x}" if value else ""


def describe(exc: BaseException) -> str:
    """AmdSmiLibraryException's own words ("AMDSMI_STATUS_NO_PERM - Permission Denied")."""
    info = getattr(exc, "err_info", None)
    return str(info) if info else str(exc).strip() or type(exc).__name__


def text(value: str | bytes) -> str:
    """A string amdsmi gives as str (or bytes, from a ctypes buffer), as str."""
    return value.decode() if isinstance(value, bytes) else value
