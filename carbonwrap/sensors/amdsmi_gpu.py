"""AMD GPU energy or power, processes and engine busy time, read via amdsmi (ROCm's AMD SMI).

Every call, return shape and error below is amdsmi's Python interface, ROCm/amdsmi
py-interface/amdsmi_interface.py and amdsmi_exception.py (tags rocm-6.0.0 to rocm-6.2.x and
amd-staging, 2024), its C header include/amd_smi/amdsmi.h, and the API reference
https://rocm.docs.amd.com/projects/amdsmi/en/latest/ (amdsmi_power_info_t for ROCm 6.4-7.x).

amdsmi builds its process list from /proc/<pid>/fdinfo (src/amd_smi/fdinfo.cc, gpuvsmi_get_pids:
the processes whose fdinfo names the GPU's PCI address), so it lists PIDs of our own namespace,
the caller among them, and only processes whose fdinfo we may read: another user's work on the
same GPU is seen by root only. Without it, the run looks like the GPU's only user: an upper
bound, as with DRM fdinfo.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.amd_driver import INSTALL_HINT, library_mismatch, load_amdsmi
from carbonwrap.sensors.amd_packages import DieFacts, is_dual_die, packages
from carbonwrap.sensors.amdsmi_values import (
    counter_energy_j,
    describe,
    integer,
    reading_power_w,
    rocr_uuid,
    text,
    vram_bytes,
)
from carbonwrap.sensors.counter_probation import CounterProbation, EnergyPoint
from carbonwrap.sensors.gpu import EMPTY, SHARE_ENGINE, GpuInfo, GpuSample, busy_deltas
from carbonwrap.sensors.gpu_markers import AMD_MARKERS, amd_driver_present, no_amd_driver_reason
from carbonwrap.sensors.rocm_visible import empty_variable, visible_indices

# amd_driver's and gpu_markers' AMD names, here too: the sensor's module is where a caller
# looks first
__all__ = [
    "AMD_MARKERS",
    "INSTALL_HINT",
    "METHOD_COUNTER",
    "METHOD_POWER",
    "NAMESPACE_HINT",
    "PERMISSION_HINT",
    "AmdSmiSensor",
    "Clients",
    "amd_driver_present",
    "load_amdsmi",
    "nested_pid_namespace",
    "no_amd_driver_reason",
]

METHOD_COUNTER = "amdsmi-counter"  # amdsmi_get_energy_count, checked against power
METHOD_POWER = "amdsmi-power"  # amdsmi_get_power_info, integrated by the caller

# amdsmi_status_t (include/amd_smi/amdsmi.h, the same numbers from ROCm 5.7 to 7.x), as
# AmdSmiLibraryException.err_code carries them.
_NOT_SUPPORTED = 2
_FAIL_LOAD_MODULE = 4
_FAIL_LOAD_SYMBOL = 5
_NO_PERM = 10
_NOT_FOUND = 31
_DRIVER_NOT_LOADED = 34
_FILE_NOT_FOUND = 52
_GONE = (_NOT_FOUND, _FILE_NOT_FOUND)  # the device is no longer there
_REFUSED = (_NOT_SUPPORTED, _NO_PERM)  # will not change during the run

PERMISSION_HINT = (
    "no permission to use the AMD GPUs (/dev/kfd, /dev/dri/renderD*): add the user to the "
    "`render` and `video` groups (sudo usermod -aG render,video $USER, then log in again); in a "
    "container, pass the devices (docker run --device=/dev/kfd --device=/dev/dri)"
)
NAMESPACE_HINT = (
    "carbonwrap runs in its own PID namespace (NSpid in /proc/self/status has several PIDs): "
    "amdsmi lists only the GPU processes it can see in this namespace's /proc, so work of other "
    "containers on the same GPU is not seen and the run's share cannot be told: GPU energy is "
    "given per device, not attributed. To attribute it, run the container in the host PID "
    "namespace (`docker run --pid=host`, Kubernetes `hostPID: true`) or run carbonwrap outside "
    "the container"
)

# The coordinator's DRM fdinfo reader: a card's PCI bus id -> (pid -> memory bytes, pid -> busy
# ns in the interval since its previous call), or None where it cannot tell.
Clients = Callable[[str], tuple[Mapping[int, int], Mapping[int, float]] | None]


def nested_pid_namespace(proc_root: Path) -> bool:
    """True when our PID namespace is not the host's: NSpid lists one PID per namespace level
    (proc(5); the line appeared in Linux 4.1: without it, the host namespace is assumed)."""
    try:
        with open(proc_root / "self" / "status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass
    return False


class _Gone(Exception):
    """A device amdsmi no longer finds: it is dropped from the readings."""


class _Die:
    """One GPU as amdsmi lists it: its handle and what identifies it."""

    __slots__ = ("bdf", "facts", "handle", "index", "name", "rocr_uuid", "uuid")

    def __init__(self, amdsmi: Any, index: int, handle: Any) -> None:
        self.index = index
        self.handle = handle
        self.uuid = text(amdsmi.amdsmi_get_gpu_device_uuid(handle))
        self.bdf = text(amdsmi.amdsmi_get_gpu_device_bdf(handle)).lower()
        asic = amdsmi.amdsmi_get_gpu_asic_info(handle)
        market_name = text(asic.get("market_name", ""))
        self.name = market_name if market_name not in ("", "N/A") else "AMD GPU"
        # ROCr names a device "GPU-" and its 64-bit unique id in hex: amdsmi's asic_serial
        self.rocr_uuid = rocr_uuid(asic.get("asic_serial"))
        self.facts = DieFacts(index, self.name, integer(asic.get("device_id")), "")
        if is_dual_die(self.facts):
            with contextlib.suppress(amdsmi.AmdSmiException):  # pairing falls back to order
                serial = text(amdsmi.amdsmi_get_gpu_board_info(handle).get("product_serial", ""))
                if serial not in ("", "N/A"):
                    self.facts = self.facts._replace(board_serial=serial)


class _Device:
    """A measured GPU: one die, or the dies of one package read as one."""

    __slots__ = ("busy_ns", "dies", "info", "listing", "probation")

    def __init__(self, info: GpuInfo, dies: tuple[_Die, ...]) -> None:
        self.info = info
        self.dies = dies
        self.probation = CounterProbation()
        self.listing = True  # amdsmi_get_gpu_process_list still worth calling
        self.busy_ns: dict[tuple[int, int], tuple[int, float]] = {}  # (die, pid) -> (pid, ns)


class AmdSmiSensor:
    """Energy or power, processes and engine busy time of each visible AMD GPU."""

    name = "amdsmi"

    def __init__(
        self,
        amdsmi: Any,
        environ: Mapping[str, str],
        proc_root: Path = Path("/proc"),
        clients: Clients | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._amdsmi = amdsmi
        self._clients = clients
        self._clock = clock
        self._own_pid = os.getpid()  # amdsmi lists the caller among a GPU's users
        self.notes: list[str] = []
        self._noted: set[tuple[int, str, str]] = set()
        empty = empty_variable(environ)
        if empty is not None:
            raise SensorUnavailable(f"{empty} is empty: the command sees no GPU")
        _init(amdsmi)
        self._open = True
        try:
            self._devices = self._select(environ)
        except BaseException:
            self.close()
            raise
        self.devices: tuple[GpuInfo, ...] = tuple(d.info for d in self._devices)
        self.pid_namespace_mismatch = nested_pid_namespace(proc_root)
        if self.pid_namespace_mismatch:
            self.notes.append(NAMESPACE_HINT)

    def read(self) -> dict[int, GpuSample]:
        """A sample of every device still readable, keyed by its (first die's) amdsmi index."""
        if not self._open:
            raise SensorUnavailable("amdsmi sensor read after close()")
        samples: dict[int, GpuSample] = {}
        for device in list(self._devices):
            try:
                samples[device.info.index] = self._read_device(device)
            except _Gone as exc:
                self._devices.remove(device)
                self.notes.append(
                    f"GPU {device.info.index} ({device.info.name}) is gone ({exc}): no further "
                    "readings from it"
                )
        return samples

    def close(self) -> None:
        """amdsmi_shut_down, once; safe to call twice."""
        if self._open:
            self._open = False
            with contextlib.suppress(self._amdsmi.AmdSmiException):  # nothing we could act on
                self._amdsmi.amdsmi_shut_down()

    def __enter__(self) -> AmdSmiSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- per read: power always, the counter on probation, the processes; failures confined --

    def _read_device(self, device: _Device) -> GpuSample:
        power_w = self._power_w(device)
        energy_j = None
        probation = device.probation
        if device.info.energy_method == METHOD_COUNTER and probation.rejected is None:
            counter_j = self._counter_j(device)
            if counter_j is not None:
                energy_j = probation.observe(EnergyPoint(self._clock(), counter_j, power_w))
                if probation.rejected is not None:
                    self.notes.append(
                        f"GPU {device.info.index} ({device.info.name}): energy counter "
                        f"rejected: {probation.rejected}; power integrated instead"
                    )
        processes, busy, known = self._processes(device)
        return GpuSample(energy_j, power_w, processes, busy, SHARE_ENGINE, known)

    def _counter_j(self, device: _Device) -> float | None:
        """The package's counter in J: the sum over its dies; None if any die fails."""
        total_j = 0.0
        for die in device.dies:
            counter = self._ask(device, "amdsmi_get_energy_count", die.handle)
            energy_j = counter_energy_j(counter) if counter is not None else None
            if energy_j is None:
                return None
            total_j += energy_j
        return total_j

    def _power_w(self, device: _Device) -> float | None:
        """The package's power in W: the sum over its dies; None if any die has none."""
        total_w = 0.0
        for die in device.dies:
            info = self._ask(device, "amdsmi_get_power_info", die.handle)
            power_w = reading_power_w(info) if info is not None else None
            if power_w is None:
                if info is not None:
                    self._note_once(device, "amdsmi_get_power_info", "gave no power (N/A)")
                return None
            total_w += power_w
        return total_w

    def _processes(self, device: _Device) -> tuple[Mapping[int, int], Mapping[int, float], bool]:
        """pid -> VRAM bytes, pid -> engine busy ns since the last read, and whether known."""
        if device.listing:
            listed = self._process_list(device)
            if listed is not None:
                processes, cumulative = listed
                busy = busy_deltas(device.busy_ns, cumulative)
                device.busy_ns = cumulative
                return processes or EMPTY, busy or EMPTY, True
        return self._from_clients(device)

    def _process_list(
        self, device: _Device
    ) -> tuple[dict[int, int], dict[tuple[int, int], tuple[int, float]]] | None:
        amdsmi = self._amdsmi
        processes: dict[int, int] = {}
        cumulative: dict[tuple[int, int], tuple[int, float]] = {}
        for die in device.dies:
            try:
                entries = amdsmi.amdsmi_get_gpu_process_list(die.handle)
            except amdsmi.AmdSmiException as exc:
                self._list_failed(device, exc)
                return None
            for entry in entries:
                # ROCm 6.2+: a dict per process; before: handles (the PIDs) to look up, ours not
                if not isinstance(entry, Mapping) and integer(entry) == self._own_pid:
                    continue
                info = entry if isinstance(entry, Mapping) else self._process_info(die, entry)
                pid = integer(info.get("pid")) if info is not None else None
                if info is None or pid is None or pid == self._own_pid:
                    continue
                processes[pid] = processes.get(pid, 0) + vram_bytes(info)
                engines = info.get("engine_usage") or {}
                busy_ns = sum(integer(engines.get(e)) or 0 for e in ("gfx", "enc"))
                cumulative[(die.index, pid)] = (pid, float(busy_ns))
        return processes, cumulative

    def _process_info(self, die: _Die, process: Any) -> Mapping[str, Any] | None:
        """amdsmi_get_gpu_process_info (ROCm 6.0, 6.1); None if the process is gone meanwhile."""
        try:
            info: Mapping[str, Any] = self._amdsmi.amdsmi_get_gpu_process_info(die.handle, process)
        except self._amdsmi.AmdSmiException:
            return None
        return info

    def _list_failed(self, device: _Device, exc: Exception) -> None:
        code = getattr(exc, "err_code", None)
        if code in _GONE:
            raise _Gone(describe(exc)) from exc
        if code in _REFUSED:
            device.listing = False
            if self._clients is not None:
                what = "processes from DRM fdinfo instead"
            else:
                what = "no process list: the whole device is charged (device-level, an upper bound)"
            self._note_once(
                device, "amdsmi_get_gpu_process_list", f"refused ({describe(exc)}): {what}"
            )
        else:
            source = "DRM fdinfo" if self._clients is not None else "nowhere: device-level"
            self._note_once(
                device,
                "amdsmi_get_gpu_process_list",
                f"failed ({describe(exc)}): when it fails, that reading's processes come from "
                + source,
            )

    def _from_clients(self, device: _Device) -> tuple[Mapping[int, int], Mapping[int, float], bool]:
        """The coordinator's DRM fdinfo reader, where wired: its busy is per interval already."""
        if self._clients is not None:
            processes: dict[int, int] = {}
            busy: dict[int, float] = {}
            for die in device.dies:
                found = self._clients(die.bdf)
                if found is None:
                    self._note_once(
                        device,
                        "DRM fdinfo",
                        "gives no processes either: the whole device is charged (device-level, "
                        "an upper bound)",
                    )
                    return EMPTY, EMPTY, False
                for pid, memory in found[0].items():
                    processes[pid] = processes.get(pid, 0) + memory
                for pid, busy_ns in found[1].items():
                    busy[pid] = busy.get(pid, 0.0) + busy_ns
            return processes or EMPTY, busy or EMPTY, True
        return EMPTY, EMPTY, False

    def _ask(self, device: _Device, call: str, handle: Any) -> Any:
        """amdsmi.`call`(handle), or None where it fails (noted once); a vanished device raises."""
        amdsmi = self._amdsmi
        try:
            return getattr(amdsmi, call)(handle)
        except amdsmi.AmdSmiException as exc:
            if getattr(exc, "err_code", None) in _GONE:
                raise _Gone(describe(exc)) from exc
            self._note_once(
                device, call, f"failed ({describe(exc)}): that reading is missing when it fails"
            )
            return None

    def _note_once(self, device: _Device, call: str, what: str) -> None:
        key = (device.info.index, call, what)
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(f"GPU {device.info.index} ({device.info.name}): {call} {what}")

    # -- once, at init --

    def _select(self, environ: Mapping[str, str]) -> list[_Device]:
        """The devices the command can see, dies of one package joined, each probed once."""
        amdsmi = self._amdsmi
        try:
            handles = list(amdsmi.amdsmi_get_processor_handles())
        except amdsmi.AmdSmiException as exc:
            raise SensorUnavailable(f"amdsmi cannot list the GPUs: {describe(exc)}") from exc
        if not handles:
            raise SensorUnavailable(
                "no AMD GPU: the amdgpu driver is loaded but amdsmi lists no GPU; "
                + PERMISSION_HINT
            )
        dies: dict[int, _Die] = {}
        for index, handle in enumerate(handles):
            try:
                dies[index] = _Die(amdsmi, index, handle)
            except amdsmi.AmdSmiException as exc:
                self.notes.append(f"GPU {index} cannot be opened ({describe(exc)}): left out")
        listed = [(i, dies[i].rocr_uuid if i in dies else "") for i in range(len(handles))]
        visible = [i for i in visible_indices(environ, listed, self.notes) if i in dies]
        groups = packages([die.facts for die in dies.values()], self.notes)
        group_of = {index: group for group in groups for index in group}
        chosen: list[tuple[int, ...]] = []
        for index in visible:
            if group_of[index] not in chosen:
                chosen.append(group_of[index])
        devices = [self._open_device(tuple(dies[i] for i in g), set(visible)) for g in chosen]
        opened = [device for device in devices if device is not None]
        if not opened:
            detail = f" ({'; '.join(self.notes)})" if self.notes else ""
            raise SensorUnavailable("no usable AMD GPU" + detail)
        return opened

    def _open_device(self, dies: tuple[_Die, ...], visible: set[int]) -> _Device | None:
        """Probe a device's counter and take the baseline reading; None if it cannot be read."""
        amdsmi = self._amdsmi
        first = dies[0]
        name = first.name if len(dies) == 1 else f"{first.name} ({len(dies)} dies)"
        counter = True
        for die in dies:
            try:
                readable = counter_energy_j(amdsmi.amdsmi_get_energy_count(die.handle)) is not None
            except amdsmi.AmdSmiException as exc:
                readable = False
                if getattr(exc, "err_code", None) != _NOT_SUPPORTED:  # no counter: no fault
                    self.notes.append(
                        f"GPU {die.index} ({name}): energy counter unreadable ({describe(exc)})"
                    )
            counter = counter and readable
        method = METHOD_COUNTER if counter else METHOD_POWER
        info = GpuInfo(first.index, name, first.uuid or first.bdf, method, False, "amd", first.bdf)
        device = _Device(info, dies)
        if len(dies) > 1:
            indices = [die.index for die in dies]
            seen = [i for i in indices if i in visible]
            self.notes.append(
                f"GPUs {' and '.join(map(str, indices))} ({first.name}) are the dies of one "
                "package, whose power and energy are reported on one die only: measured as one "
                f"device, GPU {first.index}, shared by the processes of both dies"
                + ("" if seen == indices else f" (the command sees GPU {seen[0]} only)")
            )
        try:
            self._read_device(device)  # the baseline: the counter's first point, busy so far
        except _Gone as exc:
            self.notes.append(f"GPU {first.index} ({name}) cannot be read ({exc}): left out")
            return None
        return device


def _init(amdsmi: Any) -> None:
    """amdsmi_init for AMD GPUs, or SensorUnavailable with the cause and what to do."""
    try:
        amdsmi.amdsmi_init(amdsmi.AmdSmiInitFlags.INIT_AMD_GPUS)
    except amdsmi.AmdSmiException as exc:
        code = getattr(exc, "err_code", None)
        if code == _NO_PERM:
            raise SensorUnavailable(PERMISSION_HINT) from exc
        if code == _DRIVER_NOT_LOADED:
            raise SensorUnavailable(
                "amdgpu driver not loaded (no AMD GPU, or the amdgpu kernel module is not "
                "loaded: sudo modprobe amdgpu)"
            ) from exc
        if code in (_FAIL_LOAD_MODULE, _FAIL_LOAD_SYMBOL):
            raise SensorUnavailable(library_mismatch(exc, "")) from exc
        raise SensorUnavailable(f"amdsmi initialisation failed: {describe(exc)}") from exc
