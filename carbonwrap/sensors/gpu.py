"""What every GPU backend gives (NVML, amdsmi, DRM sysfs, Jetson rails): its devices and, at each
reading, one sample per device. The attribution (`measure/attribution.gpu_interval`) is the same
for all of them."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar

from carbonwrap.lite import dataclass

EMPTY: Mapping[Any, Any] = MappingProxyType({})  # shared, read-only default

# How a share is found from `GpuSample.busy`, per backend (the label every output carries).
SHARE_SM = "sm-share"  # NVML: SM-utilisation samples per process
SHARE_ENGINE = "engine-share"  # DRM fdinfo or amdsmi: engine busy time per process


@dataclass(frozen=True)
class GpuInfo:
    """One physical GPU that the command may use."""

    index: int  # the vendor's own index: NVML's, amdsmi's processor order, DRM card order
    name: str
    uuid: str  # the vendor's unique id where it has one, else the PCI bus id
    energy_method: str  # e.g. nvml-counter, nvml-power, amdsmi-counter, hwmon-energy
    mig: bool = False  # MIG mode enabled: energy is board level
    vendor: str = "nvidia"  # nvidia | amd | intel
    pci_bus_id: str = ""  # domain:bus:device.function, lower case ("0000:03:00.0"); "" unknown
    # Its energy is a superchip module's (GH200, GB200: Grace CPU, memory and GPU) for want of a
    # GPU-only reading: that CPU's energy is in this GPU's figure, not to be counted again.
    module_scope: bool = False


class GpuSample(NamedTuple):
    """One device at one instant."""

    energy_j: float | None  # cumulative energy counter in J, else None
    power_w: float | None  # instantaneous power in W (integrated by the caller), else None
    processes: Mapping[int, int]  # pid -> GPU memory in bytes (0 when unknown) of every user
    sm_util: Mapping[int, float]  # pid -> busy in the interval since the last read (any unit)
    busy_method: str = SHARE_SM  # what `sm_util` measures: SHARE_SM or SHARE_ENGINE
    processes_known: bool = True  # False: no process list: the whole device, an upper bound
    # pid -> most GPU memory (B; 0 unknown) of each process that held a context only since the
    # last reading, never listed at one (NVML accounting mode); which were the run's is
    # `measure/attribution.ended_in_tree`'s call
    ended: Mapping[int, int] = EMPTY


class GpuSensor(Protocol):
    """A GPU backend: opened with its library or root (raising SensorUnavailable), then read."""

    name: str  # the backend, as doctor and the notes name it
    devices: tuple[GpuInfo, ...]  # what it measures, in its own index order
    notes: list[str]  # appended to while it runs; the caller logs what is new
    pid_namespace_mismatch: bool  # its PIDs are the host's and ours are not: no matching

    def read(self) -> dict[int, GpuSample]:
        """A sample of every device still readable, keyed by `GpuInfo.index`."""
        ...

    def close(self) -> None:
        """Release the library or files; safe to call twice."""
        ...


K = TypeVar("K", bound=Hashable)


def busy_deltas(
    previous: Mapping[K, tuple[int, float]], current: Mapping[K, tuple[int, float]]
) -> dict[int, float]:
    """Busy time per PID between two readings of cumulative per-client counters.

    Each mapping: client key (e.g. (pid, drm-client-id)) -> (pid, busy so far). A client seen
    in both counts its increase; a client new since the last reading counts all it has (it
    began after that reading); a counter that went back (a reused key) counts its new value.
    Clients that vanished counted up to their last reading.
    """
    busy: dict[int, float] = {}
    for key, (pid, now) in current.items():
        before = previous.get(key)
        delta = now if before is None or now < before[1] else now - before[1]
        if delta > 0:
            busy[pid] = busy.get(pid, 0.0) + delta
    return busy
