"""Which sensor measures each component (CPU, DRAM, GPU), how it is labelled, one reading of all."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from carbonwrap.accounting import TreeAccounting
from carbonwrap.attribution import EnergyModel, Reading
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.meminfo import MemInfo
from carbonwrap.sensors.procstat import ProcStat

GPU_BASES = {
    "sm-share": "share of SM-utilisation samples among all processes on the GPU",
    "sole-user": "the tree held every context: whole device, idle included",
    "memory-share": "no utilisation samples: share of GPU memory held",
    "equal-split": "no samples or memory figures: equal split per process",
    "device-level": "PIDs cannot be matched (PID namespace): whole device",
}


class Meters:
    """The run's sensors: RAPL or the rated-power estimate for CPU, RAPL or resident memory for
    DRAM, NVML for GPUs. `components` and `notes` say what is used and why."""

    def __init__(
        self, environ: Mapping[str, str], child_env: Mapping[str, str], nvml: Any = None
    ) -> None:
        self.notes: list[str] = []
        self.components: dict[str, dict[str, Any]] = {}
        self._procstat = ProcStat()
        self._rapl = self._open_rapl(environ)
        self._meminfo = None if self.model_dram == "rapl" else MemInfo()
        self._gpu = self._open_gpu(child_env, nvml)
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
        )

    def _open_rapl(self, environ: Mapping[str, str]) -> Any:
        from carbonwrap.sensors.cpu_estimate import (
            DRAM_BASIS,
            DRAM_W_PER_GB,
            cpu_model_name,
            estimate_cpu_power,
        )
        from carbonwrap.sensors.rapl import RaplSensor, sysfs_root_from_env

        self._cpu_w = 0.0
        self._dram_w_per_gb = 0.0
        try:
            rapl: RaplSensor | None = RaplSensor(sysfs_root_from_env(environ))
        except SensorUnavailable as exc:
            rapl = None
            self.notes.append(f"RAPL unavailable, CPU energy estimated: {exc.reason}")
        kinds = [z.kind for z in rapl.zones] if rapl else []
        if rapl is not None:
            self.notes.extend(f"RAPL zone skipped: {reason}" for reason in rapl.skipped)
            self.components["cpu"] = {
                "method": "rapl",
                "basis": f"{kinds.count('package')} package zone(s); "
                "share = tree CPU time / all CPUs' busy time",
            }
        else:
            estimate = estimate_cpu_power(cpu_model_name(), os.cpu_count() or 1)
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
                self.notes.append("RAPL has no dram zone here; DRAM estimated from resident memory")
        return rapl

    def _open_gpu(self, child_env: Mapping[str, str], nvml: Any) -> Any:
        from carbonwrap.sensors.nvidia_driver import driver_present, no_driver_reason

        if nvml is None and not driver_present():
            # No driver: say so without importing pynvml and the 480-line sensor (~45 ms here).
            self.components["gpu"] = {"method": f"unavailable: {no_driver_reason()}"}
            return None
        from carbonwrap.sensors.nvml import NvmlSensor, load_nvml

        try:
            sensor = NvmlSensor(load_nvml() if nvml is None else nvml, child_env)
        except SensorUnavailable as exc:
            self.components["gpu"] = {"method": f"unavailable: {exc.reason}"}
            return None
        methods = sorted({d.energy_method for d in sensor.devices})
        self.components["gpu"] = {
            "method": "+".join(methods),
            "basis": "per GPU and interval: "
            + "; else ".join(
                GPU_BASES[m] for m in ("sole-user", "sm-share", "memory-share", "equal-split")
            ),
            "devices": [
                {
                    "index": d.index,
                    "name": d.name,
                    "uuid": d.uuid,
                    "energy_method": d.energy_method,
                    "mig": d.mig,
                }
                for d in sensor.devices
            ],
        }
        self.notes.extend(sensor.notes)
        return sensor

    def read(self, acct: TreeAccounting) -> Reading:
        """One reading of every counter, for the sampler thread."""
        rapl, gpu, meminfo = self._rapl, self._gpu, self._meminfo
        return Reading(
            mono_s=time.monotonic(),
            tree_cpu_s=acct.cpu_s(),
            busy_all_s=self._procstat.busy_s(),
            rapl_j=rapl.read() if rapl else {},
            tree_rss_bytes=acct.rss_bytes() if meminfo else 0,
            used_memory_bytes=meminfo.used_bytes() if meminfo else 0,
            tree_pids=frozenset(acct.pids()) if gpu else frozenset(),
            gpu=gpu.read() if gpu else {},
        )

    def new_notes(self) -> list[str]:
        """Notes the GPU sensor added since the last call (failures found while sampling)."""
        if self._gpu is None or len(self._gpu.notes) == self._gpu_notes_seen:
            return []
        fresh = self._gpu.notes[self._gpu_notes_seen :]
        self._gpu_notes_seen = len(self._gpu.notes)
        return list(fresh)

    def close(self) -> None:
        for sensor in (self._rapl, self._meminfo, self._gpu, self._procstat):
            if sensor is not None:
                sensor.close()
