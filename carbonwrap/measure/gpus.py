"""Which GPU backends measure this host's GPUs, and all of them read as one.

The backends are an explicit list, tried in order, each only where a few stat calls say its
hardware can be there (a library import costs tens of milliseconds at start-up): NVML for NVIDIA,
amdsmi for AMD, the Jetson power rails, and the DRM sysfs sensor for the Intel and AMD cards no
vendor library measures. Every device gets a run-wide index: the first backend's own indices (so
`GPU 0` is CUDA's GPU 0 on an NVIDIA host), the next backend's after them.
"""

from __future__ import annotations

import os

from carbonwrap import lite
from carbonwrap.sensors import SensorUnavailable

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Any

    from carbonwrap.sensors.gpu import GpuInfo, GpuSample, GpuSensor

    Opener = Callable[["GpuHost", "list[GpuInfo]"], "GpuSensor"]

    Backend = tuple[str, Callable[["GpuHost"], "str | None"], Opener]


class GpuSet:
    """Several GPU backends as one GpuSensor: devices under run-wide indices, notes in order."""

    def __init__(self, sensors: list[GpuSensor]) -> None:
        self.sensors = sensors
        self.name = "+".join(sensor.name for sensor in sensors)
        self.notes: list[str] = []
        self._keys: list[dict[int, int]] = []  # per sensor: its index -> run-wide index
        self._seen: list[int] = []  # per sensor: notes already taken
        devices: list[GpuInfo] = []
        self.backend_of: dict[int, str] = {}  # run-wide index -> the backend's name
        next_key = 0
        for sensor in sensors:
            keys = {}
            for info in sensor.devices:
                key = info.index if len(sensors) == 1 else next_key + info.index
                keys[info.index] = key
                self.backend_of[key] = sensor.name
                devices.append(lite.replace(info, index=key))
            if len(sensors) > 1 and keys and keys != {i: i for i in keys}:
                self.notes.append(
                    f"{sensor.name} GPUs are numbered from {min(keys.values())} in carbonwrap's "
                    f"output (their own indices {', '.join(map(str, sorted(keys)))})"
                )
            next_key = max([next_key - 1, *keys.values()]) + 1
            self._keys.append(keys)
            self._seen.append(0)
        self.devices = tuple(devices)
        self.pid_namespace_mismatch = any(s.pid_namespace_mismatch for s in sensors)
        self._take_notes()

    def read(self) -> dict[int, GpuSample]:
        """Every backend's samples under run-wide indices; one backend that raises loses only
        its own devices for this reading (the others are read as usual). The error reaches the
        caller (which notes it) only when no backend answered: a backend's own failures are its
        notes (each sensor confines and says its per-device errors)."""
        samples: dict[int, GpuSample] = {}
        failure: Exception | None = None
        for sensor, keys in zip(self.sensors, self._keys, strict=True):
            try:
                read = sensor.read()
            except Exception as exc:
                failure = failure or exc
                continue
            for index, sample in read.items():
                samples[keys.get(index, index)] = sample
        self._take_notes()
        if failure is not None and not samples:
            raise failure
        return samples

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()

    def _take_notes(self) -> None:
        for position, sensor in enumerate(self.sensors):
            fresh = sensor.notes[self._seen[position] :]
            self._seen[position] = len(sensor.notes)
            self.notes.extend(fresh)


# One opener per backend: (its label for the reasons, whether a few stat calls say its hardware
# can be here, how to open it). The openers import their sensor only when they run.


class GpuHost:
    """Where the GPU backends look: roots and environments, and libraries a test hands in."""

    def __init__(
        self,
        environ: Mapping[str, str],
        child_env: Mapping[str, str],
        nvml: Any = None,
        amdsmi: Any = None,
        root: str | os.PathLike[str] = "/",
    ) -> None:
        self.environ = environ  # carbonwrap's own (CARBONWRAP_SYSFS_ROOT, _PROC_ROOT)
        self.child_env = child_env  # the command's (CUDA_VISIBLE_DEVICES & co.)
        self.nvml = nvml  # a pynvml-like module; None: imported if a driver is present
        self.amdsmi = amdsmi  # an amdsmi-like module; None: imported if amdgpu is loaded
        self.root = root  # where driver markers (/dev, /proc/driver, /sys/module) are looked for

    @property
    def sysfs_dir(self) -> str:
        """The sysfs root as a string, for the presence checks (no pathlib on the run path)."""
        return self.environ.get("CARBONWRAP_SYSFS_ROOT", "") or os.path.join(self.root, "sys")

    @property
    def sysfs_root(self) -> Path:
        from pathlib import Path  # only where a backend looks (pathlib is not on the run path)

        return Path(self.environ.get("CARBONWRAP_SYSFS_ROOT", "") or os.path.join(self.root, "sys"))

    @property
    def proc_root(self) -> Path:
        from pathlib import Path

        return Path(self.environ.get("CARBONWRAP_PROC_ROOT", "") or os.path.join(self.root, "proc"))


def _nvidia_here(host: GpuHost) -> str | None:
    from carbonwrap.sensors.gpu_markers import no_nvidia_driver_reason, nvidia_driver_present

    if host.nvml is not None or nvidia_driver_present(host.root):
        return None
    return no_nvidia_driver_reason()


def _open_nvml(host: GpuHost, _found: list[GpuInfo]) -> GpuSensor:
    from pathlib import Path

    from carbonwrap.sensors.nvml import NvmlSensor
    from carbonwrap.sensors.nvml_probe import load_nvml

    nvml = load_nvml(Path(host.root)) if host.nvml is None else host.nvml
    return NvmlSensor(nvml, host.child_env, host.proc_root)


def _amd_here(host: GpuHost) -> str | None:
    from carbonwrap.sensors.gpu_markers import amd_driver_present, no_amd_driver_reason

    if host.amdsmi is not None or amd_driver_present(host.root):
        return None
    return no_amd_driver_reason()


def _open_amdsmi(host: GpuHost, _found: list[GpuInfo]) -> GpuSensor:
    from carbonwrap.sensors.amd_driver import load_amdsmi
    from carbonwrap.sensors.amdsmi_gpu import AmdSmiSensor
    from carbonwrap.sensors.drm_fdinfo import DrmClients

    amdsmi = load_amdsmi(host.root) if host.amdsmi is None else host.amdsmi
    clients = DrmClients(host.proc_root)
    return AmdSmiSensor(amdsmi, host.child_env, host.proc_root, clients=clients.for_card)


def _jetson_here(host: GpuHost) -> str | None:
    from carbonwrap.sensors.gpu_markers import jetson_present

    return None if jetson_present(host.sysfs_dir) else "not a Jetson board (no INA3221 monitor)"


def _open_jetson(host: GpuHost, _found: list[GpuInfo]) -> GpuSensor:
    from carbonwrap.sensors.jetson import JetsonSensor

    return JetsonSensor(host.sysfs_root, host.proc_root, host.child_env)


def _drm_here(host: GpuHost) -> str | None:
    drm = os.path.join(host.sysfs_dir, "class", "drm")
    if os.path.isdir(drm):
        return None
    return f"no DRM GPU ({drm} does not exist)"


def _open_drm(host: GpuHost, found: list[GpuInfo]) -> GpuSensor:
    from carbonwrap.sensors.drm_fdinfo import DrmClients
    from carbonwrap.sensors.drm_hwmon import DrmSensor
    from carbonwrap.sensors.rocm_visible import select_amd_cards

    return DrmSensor(
        host.sysfs_root,
        host.proc_root,
        host.child_env,
        skip_pci=frozenset(info.pci_bus_id for info in found if info.pci_bus_id),
        select_amd=lambda cards: select_amd_cards(cards, host.child_env),
        clients=DrmClients(host.proc_root),
    )


BACKENDS: tuple[Backend, ...] = (
    ("NVIDIA", _nvidia_here, _open_nvml),
    ("AMD (amdsmi)", _amd_here, _open_amdsmi),
    ("Jetson", _jetson_here, _open_jetson),
    ("Intel/AMD (sysfs)", _drm_here, _open_drm),
)


def open_gpus(
    host: GpuHost, backends: tuple[Backend, ...] | None = None
) -> tuple[GpuSet | None, list[str], list[str]]:
    """The GPU backends that apply here, as one GpuSet (None: none); then, as
    `<label>: <reason>`, why each backend whose hardware is here could not be opened, and why
    each of the others does not apply (no driver, no card)."""
    sensors: list[GpuSensor] = []
    found: list[GpuInfo] = []
    failed: list[str] = []
    absent: list[str] = []
    for label, here, open_backend in BACKENDS if backends is None else backends:
        missing = here(host)
        if missing is not None:
            absent.append(f"{label}: {missing}")
            continue
        try:
            sensor = open_backend(host, found)
        except SensorUnavailable as exc:
            failed.append(f"{label}: {exc.reason}")
            continue
        sensors.append(sensor)
        found.extend(sensor.devices)
    return (GpuSet(sensors) if sensors else None), failed, absent


def unavailable_reason(failed: list[str], absent: list[str]) -> str:
    """What the GPU component says when no backend could be opened: the failures, which a user
    can act on, else that there is no GPU at all (the details are doctor's)."""
    if failed:
        return "; ".join(failed)
    return "no GPU found (no NVIDIA or AMD driver, no Intel/AMD card with a sensor, not a Jetson)"
