"""NVIDIA GPU energy or power, context holders and per-process SM utilisation, read via NVML."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.cuda_visible import visible_indices
from carbonwrap.sensors.gpu import SHARE_SM, GpuInfo, GpuSample
from carbonwrap.sensors.nvml_probe import NVML_SUCCESS, GpuProbe, field_value, text

# NVML API reference (every call, its units and its quirks): https://docs.nvidia.com/deploy/nvml-api/
# Accounting statistics (processes that have ended):
# https://docs.nvidia.com/deploy/nvml-api/group__nvmlAccountingStats.html and
# https://docs.nvidia.com/deploy/nvml-api/structnvmlAccountingStats__t.html
# CUDA_VISIBLE_DEVICES: https://docs.nvidia.com/cuda/cuda-programming-guide/05-appendices/environment-variables.html

METHOD_COUNTER = "nvml-counter"  # nvmlDeviceGetTotalEnergyConsumption, mJ since driver load
METHOD_POWER = "nvml-power"  # instantaneous power, to be integrated by the caller

_MJ_PER_J = 1000
_MW_PER_W = 1000
_EMPTY: Mapping[int, Any] = MappingProxyType({})


NAMESPACE_HINT = (
    "carbonwrap runs in its own PID namespace (NSpid in /proc/self/status has several PIDs) but "
    "NVML reports host PIDs, so GPU processes cannot be matched to the run: GPU energy is given "
    "per device, not attributed. To attribute it, run the container in the host PID namespace "
    "(`docker run --pid=host`, Kubernetes `hostPID: true`) or run carbonwrap outside the container"
)


class _Device:
    """A selected GPU: its handle (fetched once) and what can be read from it."""

    __slots__ = (
        "accounting",
        "compute",
        "decided",
        "graphics",
        "handle",
        "info",
        "last_seen_us",
        "listed",
        "power_field",
        "util",
    )

    def __init__(self, info: GpuInfo, handle: Any, power_field: bool) -> None:
        self.info = info
        self.handle = handle
        self.power_field = power_field  # NVML_FI_DEV_POWER_INSTANT readable (else GetPowerUsage)
        self.compute = True  # calls still worth making: NotSupported/NoPermission end one
        self.graphics = True
        self.util = True
        self.last_seen_us = 0  # largest process-utilisation timeStamp seen, NVML's clock, µs
        self.accounting = False  # accounting mode on: ended processes are looked for
        self.listed: set[int] = set()  # PIDs a reading listed running (accounting on only)
        self.decided: set[int] = set()  # accounting PIDs already judged, or there at the start


class NvmlSensor:
    """Energy or power, context holders and SM-utilisation samples of each visible GPU."""

    name = "nvml"

    def __init__(
        self, nvml: Any, environ: Mapping[str, str], proc_root: Path = Path("/proc")
    ) -> None:
        self._nvml = nvml
        self.notes: list[str] = []
        self._noted: set[tuple[int, str, str]] = set()
        # Every GPU NVML counts, by index: its probe, or the error that kept it from opening.
        self.probes: dict[int, GpuProbe | Exception] = {}
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and not visible.strip():
            raise SensorUnavailable("CUDA_VISIBLE_DEVICES is empty: the command sees no GPU")
        _init(nvml)
        self._open = True
        # A field id alone leaves nvmlFieldValue_t.scopeId 0: NVML_POWER_SCOPE_GPU, the GPU
        # without a superchip's CPU (nvml.h, NVML_FI_DEV_POWER_AVERAGE's comment).
        self._power_fields = [nvml.NVML_FI_DEV_POWER_INSTANT]
        self._module_counters: set[int] = set()
        try:
            self._devices = self._select(visible, environ.get("CUDA_DEVICE_ORDER", ""))
            self._resolve_process_calls()
        except BaseException:
            self.close()
            raise
        self.devices: tuple[GpuInfo, ...] = tuple(d.info for d in self._devices)
        # GPUs whose energy covers a superchip module, CPU included (GpuInfo.module_scope)
        self.module_scope = frozenset(d.index for d in self.devices if d.module_scope)
        self.pid_namespace_mismatch = _nested_pid_namespace(proc_root)
        if self.pid_namespace_mismatch:
            self.notes.append(NAMESPACE_HINT)

    def read(self) -> dict[int, GpuSample]:
        """A sample of every device still readable, keyed by NVML index."""
        if not self._open:
            raise SensorUnavailable("NVML sensor read after close()")
        samples: dict[int, GpuSample] = {}
        lost: list[_Device] = []
        for device in self._devices:
            try:
                samples[device.info.index] = self._read_device(device)
            except self._nvml.NVMLError_GpuIsLost:
                lost.append(device)
        for device in lost:
            self._devices.remove(device)
            self.notes.append(
                f"GPU {device.info.index} ({device.info.name}) is lost (fell off the bus or "
                "needs a reset): no further readings from it"
            )
        return samples

    def close(self) -> None:
        """nvmlShutdown, once; safe to call twice."""
        if self._open:
            self._open = False
            with contextlib.suppress(self._nvml.NVMLError):  # nothing we could act on
                self._nvml.nvmlShutdown()

    def __enter__(self) -> NvmlSensor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- per read: only the few NVML calls below, each failure confined to its own reading --

    def _read_device(self, device: _Device) -> GpuSample:
        nvml = self._nvml
        energy_j = None
        if device.info.energy_method == METHOD_COUNTER:
            try:
                energy_j = nvml.nvmlDeviceGetTotalEnergyConsumption(device.handle) / _MJ_PER_J
            except nvml.NVMLError as exc:
                self._failed(device, "nvmlDeviceGetTotalEnergyConsumption", exc)
        # With a counter too (one GetPowerUsage call): what the counter is checked against
        # (attribution.power_check_step) and what stands in where it is not believed.
        power_w = self._power_w(device)
        processes = self._processes(device)
        util = self._sm_util(device)
        # A refused process list (a MIG board to an unprivileged caller): the whole device.
        known = device.compute
        ended = self._ended(device) if device.accounting else _EMPTY
        return GpuSample(energy_j, power_w, processes, util, SHARE_SM, known, ended or _EMPTY)

    def _power_w(self, device: _Device) -> float | None:
        nvml = self._nvml
        if device.power_field:
            try:
                value = nvml.nvmlDeviceGetFieldValues(device.handle, self._power_fields)[0]
            except nvml.NVMLError as exc:
                self._failed(device, "nvmlDeviceGetFieldValues", exc)
            else:
                power_mw = field_value(value)
                if power_mw is not None:
                    return power_mw / _MW_PER_W
                self._note_once(
                    device,
                    "nvmlDeviceGetFieldValues",
                    "gave no valid instant power: used "
                    "nvmlDeviceGetPowerUsage (a 1 s mean on Ampere and newer) instead",
                )
        try:
            return float(nvml.nvmlDeviceGetPowerUsage(device.handle)) / _MW_PER_W
        except nvml.NVMLError as exc:
            self._failed(device, "nvmlDeviceGetPowerUsage", exc)
            return None

    def _processes(self, device: _Device) -> Mapping[int, int]:
        nvml = self._nvml
        processes: dict[int, int] = {}
        for kind, call in (("compute", self._compute_call), ("graphics", self._graphics_call)):
            if not getattr(device, kind):
                continue
            try:
                found = call(device.handle)
            except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission) as exc:
                # Neither changes during a run (NoPermission: a MIG board's list is root-only).
                setattr(device, kind, False)
                self._refused(device, call.__name__, exc, kind)
                continue
            except nvml.NVMLError as exc:
                self._failed(device, call.__name__, exc)
                continue
            for process in found:
                # A process in both lists reports the same total memory in each: keep one.
                memory = process.usedGpuMemory or 0  # None: NVML cannot tell (WDDM, some MIG)
                if memory > processes.get(process.pid, -1):
                    processes[process.pid] = memory
        if device.accounting:
            device.listed.update(processes)
        return processes or _EMPTY

    def _refused(self, device: _Device, call: str, exc: Exception, kind: str) -> None:
        """Say what a refused process list means: no processes from it; without the compute
        list, no telling the run's processes apart: the whole device is charged."""
        if kind != "compute":
            self._note_once(device, call, f"refused ({exc}): no processes from it")
            return
        info = device.info
        if info.mig and isinstance(exc, self._nvml.NVMLError_NoPermission):
            self.notes.append(
                f"GPU {info.index} ({info.name}) is in MIG mode and NVML lists its processes "
                f"only to privileged callers ({exc}): the run is charged the whole board's "
                "energy, an upper bound (as root, carbonwrap splits the board by the GPU memory "
                "each process holds)"
            )
            return
        self._note_once(
            device,
            call,
            f"refused ({exc}): the run's processes cannot be told apart on this GPU, so the run "
            "is charged the whole device's energy, an upper bound",
        )

    def _ended(self, device: _Device) -> Mapping[int, int]:
        """Processes that held a context only since the last reading, from NVML accounting
        (`GpuSample.ended`): pid -> most memory held. Each PID is judged once: listed running
        at a reading (the process lists count it), ended (reported here), or still running per
        accounting but not listed yet (asked again at the next reading)."""
        nvml = self._nvml
        try:
            pids = nvml.nvmlDeviceGetAccountingPids(device.handle)
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission) as exc:
            device.accounting = False
            self._note_once(device, "nvmlDeviceGetAccountingPids", f"refused ({exc})")
            return _EMPTY
        except nvml.NVMLError as exc:
            self._failed(device, "nvmlDeviceGetAccountingPids", exc)
            return _EMPTY
        ended: dict[int, int] = {}
        for pid in pids:
            if pid in device.decided:
                continue
            if pid in device.listed:
                device.decided.add(pid)
                continue
            try:
                stats = nvml.nvmlDeviceGetAccountingStats(device.handle, pid)
            except nvml.NVMLError_NotFound:
                device.decided.add(pid)  # overwritten in the circular buffer meanwhile
                continue
            except nvml.NVMLError as exc:
                self._failed(device, "nvmlDeviceGetAccountingStats", exc)
                continue
            if stats.isRunning:
                continue
            device.decided.add(pid)
            # maxMemoryUsage: None from pynvml where NVML cannot tell (WDDM)
            ended[pid] = stats.maxMemoryUsage or 0
        return ended

    def _sm_util(self, device: _Device) -> Mapping[int, float]:
        nvml = self._nvml
        if not device.util:
            return _EMPTY
        since = device.last_seen_us
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(device.handle, since)
        except nvml.NVMLError_NotFound:
            return _EMPTY  # no sample newer than `since`: nothing ran in this window
        except nvml.NVMLError as exc:
            if exc.value != NVML_SUCCESS:  # pynvml raises NVMLError(SUCCESS) for "no samples"
                self._util_failed(device, exc)
            return _EMPTY
        util: dict[int, float] = {}
        for sample in samples:
            stamp = sample.timeStamp
            if stamp <= since:
                continue  # the driver should filter these; never count a sample twice
            util[sample.pid] = util.get(sample.pid, 0.0) + sample.smUtil
            if stamp > device.last_seen_us:
                device.last_seen_us = stamp
        return util or _EMPTY

    def _util_failed(self, device: _Device, exc: Exception) -> None:
        if isinstance(exc, (self._nvml.NVMLError_NotSupported, self._nvml.NVMLError_NoPermission)):
            # NotSupported is documented for MIG-enabled GPUs and pre-Maxwell boards.
            device.util = False
            self._note_once(
                device,
                "nvmlDeviceGetProcessUtilization",
                f"refused ({exc}): no per-process samples",
            )
        else:
            self._failed(device, "nvmlDeviceGetProcessUtilization", exc)

    def _failed(self, device: _Device, call: str, exc: Exception) -> None:
        """Leave this reading out, note the failure once; a lost GPU ends the device's reads."""
        if isinstance(exc, self._nvml.NVMLError_GpuIsLost):
            raise exc
        self._note_once(device, call, f"failed ({exc}): that reading is missing when it fails")

    def _note_once(self, device: _Device, call: str, what: str) -> None:
        key = (device.info.index, call, what)
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(f"GPU {device.info.index} ({device.info.name}): {call} {what}")

    # -- once, at init --

    def _select(self, visible: str | None, device_order: str) -> list[_Device]:
        """The devices the command can see, each probed for its energy method."""
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            raise SensorUnavailable(f"NVML cannot count the GPUs: {exc}") from exc
        if count == 0:
            raise SensorUnavailable("no NVIDIA GPU: the driver is loaded but reports no device")
        self.probes = self._probe_all(count)
        opened = {i: p for i, p in self.probes.items() if isinstance(p, GpuProbe)}
        if visible is None:
            chosen = list(opened)
        else:
            uuids = {index: probe.uuid for index, probe in opened.items()}
            chosen = visible_indices(visible, uuids, self._mig_parent_uuid, self.notes)
            names = {probe.name for probe in opened.values()}
            uses_index = any(e.strip().isdigit() for e in visible.split(","))
            if uses_index and len(names) > 1 and device_order != "PCI_BUS_ID":
                self.notes.append(
                    "CUDA_VISIBLE_DEVICES uses indices on a machine with different GPU models: "
                    "CUDA numbers them fastest first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, NVML "
                    "by PCI bus, so the indices may name other GPUs; use UUIDs to be sure"
                )
        devices = [d for d in (self._open_device(opened[i]) for i in chosen) if d is not None]
        if not devices:
            what = "no usable NVIDIA GPU"
            if visible is not None:
                what = f"CUDA_VISIBLE_DEVICES={visible!r} leaves the command no usable GPU"
            detail = f" ({'; '.join(self.notes)})" if self.notes else ""
            raise SensorUnavailable(what + detail)
        return devices

    def _mig_parent_uuid(self, entry: str) -> str | None:
        """The UUID of the GPU holding MIG device `entry` (MIG-<UUID>), or None."""
        nvml = self._nvml
        try:
            mig_handle = nvml.nvmlDeviceGetHandleByUUID(entry)
            parent = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_handle)
            return text(nvml.nvmlDeviceGetUUID(parent))
        except nvml.NVMLError:
            return None

    def _probe_all(self, count: int) -> dict[int, GpuProbe | Exception]:
        """Open GPUs 0 to `count` - 1, noting each that NVML will not open."""
        nvml = self._nvml
        probes: dict[int, GpuProbe | Exception] = {}
        for index in range(count):
            try:
                probes[index] = GpuProbe(nvml, index)
            except nvml.NVMLError as exc:
                # e.g. NoPermission for GPUs a Slurm or container cgroup does not grant
                probes[index] = exc
                self.notes.append(f"GPU {index} cannot be opened ({exc}): left out")
        return probes

    def _open_device(self, probe: GpuProbe) -> _Device | None:
        """Ask one GPU its energy method, MIG mode and utilisation start; None if unusable."""
        index, name = probe.index, probe.name
        try:
            mig = probe.mig_enabled()
            method = self._energy_method(probe)
            counter_error = probe.total_energy_error()
            if counter_error is not None:
                self.notes.append(
                    f"GPU {index} ({name}): energy counter unreadable ({counter_error})"
                )
            power_field = method == METHOD_POWER and probe.instant_power_readable()
            module = index in self._module_counters
            info = GpuInfo(index, name, probe.uuid, method, mig, module_scope=module)
            device = _Device(info, probe.handle, power_field)
            if mig:
                self.notes.append(
                    f"GPU {index} ({name}) is in MIG mode: its energy is the whole board's, "
                    "shared by all its MIG instances. NVML gives no per-process utilisation on "
                    "MIG-enabled GPUs, so within the board the run's share is its GPU memory "
                    "(where NVML lists the board's processes: to privileged callers only); "
                    "take the board's energy as an upper bound for the run"
                )
            self._prime_utilisation(device, probe)
            self._prime_accounting(device, probe)
        except self._nvml.NVMLError as exc:
            self.notes.append(f"GPU {index} ({name}) cannot be read ({exc}): left out")
            return None
        return device

    def _energy_method(self, probe: GpuProbe) -> str:
        """The counter where the GPU has one, unless it counts a superchip's CPU too: then the
        GPU's own power (NVML_POWER_SCOPE_GPU) where it reads, so the CPU is not counted twice
        (once here, once as the CPU component); else the module's counter, said."""
        counter = probe.supports_total_energy()
        if not probe.module_scope():
            return METHOD_COUNTER if counter else METHOD_POWER
        index, name = probe.index, probe.name
        if probe.instant_power_readable():
            self.notes.append(
                f"GPU {index} ({name}) shares a superchip module with a Grace CPU, whose energy "
                "its counter includes: the GPU's own power (NVML_POWER_SCOPE_GPU) is sampled "
                "and integrated instead, so the CPU is not counted twice"
            )
            return METHOD_POWER
        self._module_counters.add(index)
        self.notes.append(
            f"GPU {index} ({name}) shares a superchip module with a Grace CPU and NVML gives no "
            "GPU-only power here: its energy is the whole module's (CPU, memory and GPU)"
        )
        return METHOD_COUNTER if counter else METHOD_POWER

    def _prime_accounting(self, device: _Device, probe: GpuProbe) -> None:
        """Where accounting mode is on, take note of the processes it already holds: they began
        before the run. Only those added later can be the run's."""
        if not probe.accounting_enabled():
            return
        nvml = self._nvml
        try:
            device.decided = set(nvml.nvmlDeviceGetAccountingPids(device.handle))
        except nvml.NVMLError_GpuIsLost:
            raise
        except nvml.NVMLError as exc:
            self._note_once(device, "nvmlDeviceGetAccountingPids", f"refused ({exc})")
            return
        device.accounting = True

    def _prime_utilisation(self, device: _Device, probe: GpuProbe) -> None:
        """Start the utilisation window now, in NVML's own clock: drop the samples buffered so far.

        Passing 0 on the first read would charge the first interval with every sample still in
        the driver's buffer, from before the run; passing our time.time() would assume a clock
        the documentation does not name. The newest buffered timeStamp is "now" on NVML's clock.
        """
        error = probe.process_utilisation_error()
        if error is not None:
            self._util_failed(device, error)
        device.last_seen_us = probe.newest_utilisation_us()

    def _resolve_process_calls(self) -> None:
        """The running-process calls this driver has.

        pynvml's unversioned calls need the _v3 symbol and raise NVMLLibraryMismatchError (not an
        NVMLError) on drivers without it; the symbol lookup does not depend on the device.
        """
        nvml = self._nvml
        handle = self._devices[0].handle
        self._compute_call: Callable[[Any], Any] = nvml.nvmlDeviceGetComputeRunningProcesses
        self._graphics_call: Callable[[Any], Any] = nvml.nvmlDeviceGetGraphicsRunningProcesses
        try:
            self._compute_call(handle)
        except nvml.NVMLLibraryMismatchError:
            self._compute_call = nvml.nvmlDeviceGetComputeRunningProcesses_v2
            self._graphics_call = nvml.nvmlDeviceGetGraphicsRunningProcesses_v2
        except nvml.NVMLError:
            pass  # the symbol exists; this device's answer is handled at each read


def _init(nvml: Any) -> None:
    """nvmlInit, or SensorUnavailable with the cause and what to do."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError_LibraryNotFound as exc:
        raise SensorUnavailable(
            "no NVIDIA driver: libnvidia-ml.so not found (install the NVIDIA driver; in a "
            "container, start it with the NVIDIA container toolkit, e.g. `docker run --gpus all`)"
        ) from exc
    except nvml.NVMLError_DriverNotLoaded as exc:
        raise SensorUnavailable(
            "NVIDIA driver not loaded (no NVIDIA GPU, or the nvidia kernel module is not loaded)"
        ) from exc
    except nvml.NVMLError_NoPermission as exc:
        raise SensorUnavailable(
            "no permission to use the NVIDIA devices (/dev/nvidia*): ask for GPU access"
        ) from exc
    except nvml.NVMLError_LibRmVersionMismatch as exc:
        raise SensorUnavailable(
            "NVIDIA driver and libnvidia-ml.so versions differ (driver updated without a "
            "reboot?): reboot or reload the nvidia kernel module"
        ) from exc
    except nvml.NVMLError as exc:
        raise SensorUnavailable(f"NVML initialisation failed: {exc}") from exc


def _nested_pid_namespace(proc_root: Path) -> bool:
    """True when our PID namespace is not the host's: NSpid lists one PID per namespace level."""
    try:
        with open(proc_root / "self" / "status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("NSpid:"):
                    return len(line.split()) > 2
    except OSError:
        pass  # no procfs, or a kernel before 4.1 (no NSpid): assume the host namespace
    return False
