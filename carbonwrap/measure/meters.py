"""Which sensor measures each component (CPU, DRAM, GPU), how it is labelled, one reading of all."""

from __future__ import annotations

import os
import time

from carbonwrap.measure.accounting import TreeAccounting
from carbonwrap.measure.attribution import MAX_ZONE_POWER_W, EnergyModel, Reading, is_wrap
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.meminfo import MemInfo

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TypeVar

    T = TypeVar("T")
_NO_PIDS: list[int] = []
RAPL_STUCK_S = 10.0  # a live counter moves every millisecond: unchanged this long is stuck
MEMORY_REFRESH_S = 0.9  # memory figures (the DRAM estimate's) are read at most this often

# What a failing read means for the numbers, said once per source in the log.
_BUSY_FAILED = "until it reads again the tree is charged the whole CPU energy (an upper bound)"
_CONSEQUENCE = {
    "tree CPU time": "the tree's CPU time is counted up to the last good reading",
    "/proc/stat": _BUSY_FAILED,
    "the root cgroup's cpu.stat": _BUSY_FAILED,
    "RAPL": "the interval is counted when a counter reads again (cumulative); if none does, "
    "CPU and DRAM energy stop at the last good reading",
    "amd_energy": "the interval is counted when a counter reads again (cumulative); if none "
    "does, CPU energy stops at the last good reading",
    "/proc/meminfo": "the last good value stands in",
    "the tree's memory": "the last good value stands in",
    "the tree's processes": "the last good list stands in",
    "NVML": "GPU energy is counted when it reads again",
}


def proc_root_from_env(environ: Mapping[str, str]) -> str:
    """The /proc root for /proc/stat and /proc/meminfo: $CARBONWRAP_PROC_ROOT (for tests and
    containers, as $CARBONWRAP_SYSFS_ROOT is for RAPL), else /proc."""
    return environ.get("CARBONWRAP_PROC_ROOT", "") or "/proc"


def busy_time_source(
    proc_root: str, hierarchy_root: str, environ: Mapping[str, str]
) -> tuple[Any, str]:
    """The machine's busy CPU time, and its name: the root cgroup's cpu.stat where the cgroup v2
    hierarchy's real root is known (a few lines, microseconds), else /proc/stat (a line per CPU
    and per interrupt, made at each read; clock ticks). /proc/stat also wherever
    $CARBONWRAP_PROC_ROOT gives another /proc (tests, doctor): it is read from there."""
    if hierarchy_root and not environ.get("CARBONWRAP_PROC_ROOT"):
        from carbonwrap.sensors.rootcpu import RootCgroupCpu

        try:
            return RootCgroupCpu(hierarchy_root), RootCgroupCpu.name
        except SensorUnavailable:
            pass
    from carbonwrap.sensors.procstat import ProcStat

    return ProcStat(proc_root), "/proc/stat"


GPU_BASES = {
    "sm-share": "share of SM-utilisation samples among all processes on the GPU",
    "engine-share": "share of engine busy time (DRM fdinfo or amdsmi) among all processes",
    "sole-user": "the tree held every context: whole device, idle included",
    "memory-share": "no utilisation samples: share of GPU memory held",
    "equal-split": "no samples or memory figures: equal split per process",
    "device-level": "the tree's processes cannot be told apart on the GPU (PID namespace, no "
    "process list): whole device, an upper bound",
    "accounting": "a process of the tree held the GPU only between two readings, seen through "
    "NVML accounting mode: counted as if a reading had listed it",
}


class Meters:
    """The run's sensors: RAPL or the rated-power estimate for CPU, RAPL or resident memory for
    DRAM, NVML for GPUs. `components` and `notes` say what is used and why."""

    def __init__(
        self,
        environ: Mapping[str, str],
        child_env: Mapping[str, str],
        nvml: Any = None,
        amdsmi: Any = None,
        hierarchy_root: str = "",
    ) -> None:
        """`hierarchy_root`: the cgroup v2 hierarchy's root directory where known (a cgroup
        leaf's), for the machine's busy CPU time."""
        self.notes: list[str] = []
        self.components: dict[str, dict[str, Any]] = {}
        proc_root = proc_root_from_env(environ)
        self._busy, self._busy_source = busy_time_source(proc_root, hierarchy_root, environ)
        self._rapl = self._open_rapl(environ)
        self._meminfo = None if self.model_dram == "rapl" else MemInfo(proc_root)
        self._last: dict[str, Any] = {}  # each source's last good value
        self._memory_at = -float("inf")  # when the memory figures were last read (monotonic)
        self._memory = (0, 0)  # the tree's resident bytes, the machine's used bytes
        self._failing: set[str] = set()  # sources whose failure has been said
        self._fresh: list[str] = []  # notes found while sampling, for new_notes()
        self._rapl_moved: dict[str, tuple[float, float]] = {}  # zone -> (value J, since mono s)
        self._amdsmi = amdsmi
        self._gpu = self._open_gpu(environ, child_env, nvml)
        self._gpu_notes_seen = len(self._gpu.notes) if self._gpu else 0
        rapl = self._rapl
        self.model = EnergyModel(
            cpu_method="rapl" if rapl else "estimate",
            dram_method=self.model_dram,
            zone_kind={z.zone_id: z.kind for z in rapl.zones} if rapl else {},
            zone_max_j={z.zone_id: z.max_energy_range_j for z in rapl.zones} if rapl else {},
            cpu_w_per_cpu=self._cpu_w,
            dram_w_per_gb=self._dram_w_per_gb,
            gpu=self._gpu is not None,
            gpu_device_level=bool(self._gpu and self._gpu.pid_namespace_mismatch),
            cpu_in_gpus=self._cpu_in_gpus(),
        )

    def _cpu_in_gpus(self) -> frozenset[int]:
        """GPUs whose energy covers a superchip module, Grace CPU and memory included
        (GpuInfo.module_scope): while the command uses one, CPU and DRAM count there only."""
        indices = (
            frozenset(d.index for d in self._gpu.devices if d.module_scope)
            if self._gpu
            else frozenset()
        )
        if indices:
            named = ", ".join(str(i) for i in sorted(indices))
            self.notes.append(
                f"GPU {named}'s energy covers its superchip module, Grace CPU and memory "
                "included: in intervals where the command uses it, CPU and DRAM are counted "
                "there and not again"
            )
            for component in ("cpu", "dram"):
                basis = self.components[component].get("basis", "")
                self.components[component]["basis"] = (
                    f"{basis}; 0 while the command uses GPU {named}, whose module figure holds it"
                )
        return indices

    def _open_rapl(self, environ: Mapping[str, str]) -> Any:
        from carbonwrap.sensors.cpu_estimate import (
            DRAM_BASIS,
            DRAM_W_PER_GB,
            cloud_instance,
            cpuinfo_fields,
            estimate_cpu_power,
            model_name,
        )
        from carbonwrap.sensors.rapl import RaplSensor, dram_missing_note, sysfs_root_from_env

        self._cpu_w = 0.0
        self._dram_w_per_gb = 0.0
        sysfs_root, proc_root = sysfs_root_from_env(environ), proc_root_from_env(environ)
        read: list[dict[str, str]] = []

        def cpuinfo() -> dict[str, str]:
            """cpuinfo's fields, read at most once (each CPU's block costs the kernel an
            interrupt of that CPU); not at all where RAPL has every zone."""
            if not read:
                read.append(cpuinfo_fields(proc_root))
            return read[0]

        try:
            rapl: Any = RaplSensor(sysfs_root)
        except SensorUnavailable as exc:
            rapl = self._open_amd_energy(sysfs_root, cpuinfo().get("vendor_id", ""), exc.reason)
        kinds = [z.kind for z in rapl.zones] if rapl else []
        if rapl is not None:
            self.notes.extend(f"RAPL zone skipped: {reason}" for reason in rapl.skipped)
            driver = "" if rapl.name == "rapl" else f"{rapl.name} "
            self.components["cpu"] = {
                "method": "rapl",
                "basis": f"{kinds.count('package')} {driver}package zone(s); "
                "share = tree CPU time / all CPUs' busy time",
            }
        else:
            estimate = estimate_cpu_power(
                model_name(cpuinfo()), os.cpu_count() or 1, cloud_instance(sysfs_root)
            )
            self._cpu_w = estimate.watts_per_cpu
            self.components["cpu"] = {"method": "estimate", "basis": estimate.basis}
        if "dram" in kinds:
            self.model_dram = "rapl"
            self.components["dram"] = {
                "method": "rapl",
                "basis": "dram zone(s); same CPU-time share",
            }
        else:
            self.model_dram = "estimate"
            self._dram_w_per_gb = DRAM_W_PER_GB
            self.components["dram"] = {
                "method": "estimate",
                "basis": f"{DRAM_BASIS}, of the tree's resident memory sampled every interval",
            }
            if rapl is not None:
                self.notes.append(dram_missing_note(cpuinfo().get("vendor_id", "")))
        return rapl

    def _open_amd_energy(self, sysfs_root: str, vendor: str, rapl_reason: str) -> Any:
        """On AMD hosts (cpuinfo's `vendor`) whose powercap cannot be read, the amd_energy (or
        zenergy) hwmon driver's socket counters, used as RAPL package zones; else None (the
        estimate)."""
        if vendor not in ("AuthenticAMD", "HygonGenuine"):
            self.notes.append(f"RAPL unavailable, CPU energy estimated: {rapl_reason}")
            return None
        from carbonwrap.sensors.amd_energy import AmdEnergySensor

        try:
            sensor = AmdEnergySensor(sysfs_root)
        except SensorUnavailable as exc:
            self.notes.append(f"RAPL unavailable, CPU energy estimated: {rapl_reason}")
            self.notes.append(f"amd_energy unavailable too: {exc.reason}")
            return None
        self.notes.append(f"RAPL unavailable, CPU energy from amd_energy: {rapl_reason}")
        return sensor

    def _open_gpu(self, environ: Mapping[str, str], child_env: Mapping[str, str], nvml: Any) -> Any:
        from carbonwrap.measure.gpus import GpuHost, open_gpus, unavailable_reason

        gpus, failed, absent = open_gpus(
            GpuHost(environ, child_env, nvml=nvml, amdsmi=self._amdsmi)
        )
        if gpus is None:
            self.components["gpu"] = {
                "method": f"unavailable: {unavailable_reason(failed, absent)}"
            }
            return None
        self.notes.extend(f"GPU backend unavailable: {reason}" for reason in failed)
        methods = sorted({d.energy_method for d in gpus.devices})
        vendors = {d.vendor for d in gpus.devices}
        shares = ["sole-user", "sm-share", "engine-share", "memory-share", "equal-split"]
        if "nvidia" not in vendors:
            shares.remove("sm-share")
        if vendors <= {"nvidia"}:
            shares.remove("engine-share")
        self.components["gpu"] = {
            "method": "+".join(methods),
            "basis": "per GPU and interval: " + "; else ".join(GPU_BASES[m] for m in shares),
            "devices": [
                {
                    "index": d.index,
                    "name": d.name,
                    "uuid": d.uuid,
                    "vendor": d.vendor,
                    "energy_method": d.energy_method,
                    "mig": d.mig,
                }
                for d in gpus.devices
            ],
        }
        self.notes.extend(gpus.notes)
        return gpus

    def read(self, acct: TreeAccounting, *, gpus: bool = True) -> Reading:
        """One reading of every counter, for the sampler thread. Never raises: a source that
        fails gives its last good value (counters are cumulative, so an interval it missed is
        counted when it reads again) and the failure is noted once (`new_notes`); the other
        sources are read as usual, so one broken sensor costs only its own numbers. `gpus`
        False: CPU and memory only (`Sampler.peek`)."""
        rapl, gpu, meminfo = self._rapl, self._gpu if gpus else None, self._meminfo
        mono_s = time.monotonic()
        source = "RAPL" if rapl is None or rapl.name == "rapl" else "amd_energy"
        rapl_j: dict[str, float] = self._guard(source, rapl.read, {}) if rapl else {}
        if rapl_j:
            self._check_rapl(rapl_j, mono_s)
        # Memory in use changes slowly: read at most every MEMORY_REFRESH_S (at --interval 0.1
        # every process's statm each time was most of the sampler's CPU), both at once.
        memory = self._memory
        if meminfo is not None and mono_s - self._memory_at >= MEMORY_REFRESH_S:
            self._memory_at = mono_s
            memory = self._memory = (
                self._guard("the tree's memory", acct.rss_bytes, 0),
                self._guard("/proc/meminfo", meminfo.used_bytes, 0),
            )
        return Reading(
            mono_s=mono_s,
            tree_cpu_s=self._guard("tree CPU time", acct.cpu_s, 0.0),
            busy_all_s=self._guard(self._busy_source, self._busy.busy_s, 0.0),
            rapl_j=rapl_j,
            tree_rss_bytes=memory[0],
            used_memory_bytes=memory[1],
            tree_pids=frozenset(self._guard("the tree's processes", acct.pids, _NO_PIDS))
            if gpu
            else frozenset(),
            gpu=self._guard("NVML", gpu.read, {}) if gpu else {},
        )

    def _guard(self, source: str, read: Callable[[], T], default: T) -> T:
        try:
            value = read()
        except Exception as exc:
            if source not in self._failing:
                self._failing.add(source)
                self._fresh.append(f"{source} could not be read ({exc}): {_CONSEQUENCE[source]}")
            return self._last.get(source, default)  # type: ignore[no-any-return]
        if source in self._failing:
            self._failing.discard(source)
            self._fresh.append(f"{source} reads again")
        self._last[source] = value
        return value

    def _check_rapl(self, rapl_j: Mapping[str, float], mono_s: float) -> None:
        """Say when a counter goes backwards by less than a wrap (that interval counts 0:
        `attribution.counter_delta`) or stops moving (no energy is counted while it does)."""
        ranges = {z.zone_id: z.max_energy_range_j for z in self._rapl.zones}
        for zone, value in rapl_j.items():
            before = self._rapl_moved.get(zone)
            if before is None or value != before[0]:
                if before is not None and value < before[0]:
                    most = (mono_s - before[1]) * MAX_ZONE_POWER_W
                    if not is_wrap(before[0], value, ranges.get(zone, 0.0), most):
                        self._fresh.append(
                            f"RAPL counter {zone} went back from {before[0]:.6f} J to "
                            f"{value:.6f} J without wrapping: that interval counts no energy"
                        )
                self._rapl_moved[zone] = (value, mono_s)
                self._failing.discard(f"stuck {zone}")
            elif mono_s - before[1] >= RAPL_STUCK_S and f"stuck {zone}" not in self._failing:
                self._failing.add(f"stuck {zone}")
                self._fresh.append(
                    f"RAPL counter {zone} has not changed for {mono_s - before[1]:.0f} s: "
                    "no energy is counted while it is stuck (an underestimate)"
                )

    def new_notes(self) -> list[str]:
        """Notes since the last call: failures found while sampling (and recoveries)."""
        fresh, self._fresh = self._fresh, []
        if self._gpu is not None and len(self._gpu.notes) > self._gpu_notes_seen:
            fresh += self._gpu.notes[self._gpu_notes_seen :]
            self._gpu_notes_seen = len(self._gpu.notes)
        return fresh

    def close(self) -> None:
        for sensor in (self._rapl, self._meminfo, self._gpu, self._busy):
            if sensor is not None:
                sensor.close()
