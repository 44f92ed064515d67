"""A fake NVML for tests without a GPU: pynvml's function names, return shapes and error classes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pynvml

# Real pynvml return types, so the sensor reads exactly the attributes it reads on a GPU.
FieldValue = pynvml.c_nvmlFieldValue_t
UtilSample = pynvml.c_nvmlProcessUtilizationSample_t
AccountingStats = pynvml.c_nvmlAccountingStats_t
C2cModeInfo = pynvml.c_nvmlC2cModeInfo_v1_t


@dataclass
class Accounted:
    """One process in a GPU's accounting buffer (nvmlAccountingStats_t's fields)."""

    pid: int
    running: bool = False  # isRunning
    max_memory: int = 1 << 30  # maxMemoryUsage, B
    start_us: int = 1_700_000_000_000_000  # startTime: CPU timestamp, µs
    time_ms: int = 2_000  # active context time; 0 while running
    gpu_util: int = 80  # gpuUtilization, % of its lifetime


@dataclass
class FakeGpu:
    """One physical GPU; tests change its fields between reads."""

    name: str
    uuid: str
    energy_mj: int | None = 0  # None: counter not supported (before Volta)
    power_mw: int = 100_000  # nvmlDeviceGetPowerUsage
    instant_power_mw: int | None = None  # NVML_FI_DEV_POWER_INSTANT; None: field not supported
    field_values: bool = True  # False: nvmlDeviceGetFieldValues itself raises NotSupported
    compute: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, memory B)
    graphics: list[tuple[int, int | None]] | None = field(default_factory=list)  # None: unsupp.
    util: list[tuple[int, int, int]] | None = field(default_factory=list)  # (pid, µs, smUtil)
    mig: bool | None = None  # None: not MIG capable; False/True: MIG mode disabled/enabled
    mig_uuids: tuple[str, ...] = ()  # MIG devices on this board
    accessible: bool = True  # False: handle by index raises NoPermission (cgroup-hidden GPU)
    c2c: bool | None = None  # nvmlDeviceGetC2cModeInfoV's isC2cEnabled; None: NotSupported
    accounting: bool = False  # accounting mode
    accounted: list[Accounted] = field(default_factory=list)  # its buffer, oldest first
    lost: bool = False  # every call raises GpuIsLost
    fail: dict[str, pynvml.NVMLError] = field(default_factory=dict)  # call name -> error

    def add_util(self, pid: int, time_us: int, sm_util: int) -> None:
        assert self.util is not None
        self.util.append((pid, time_us, sm_util))


@dataclass(frozen=True)
class FakeHandle:
    index: int
    mig_uuid: str | None = None


class FakeNvml:
    """The subset of pynvml that NvmlSensor calls; counts every call in `calls`."""

    def __init__(self, gpus: list[FakeGpu], init_error: pynvml.NVMLError | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.count_error: pynvml.NVMLError | None = None
        self.v3_missing = False  # driver without the _v3 process calls
        self.calls: Counter[str] = Counter()
        self.util_since: list[tuple[int, int]] = []  # (gpu index, lastSeenTimeStamp) per call

    def __getattr__(self, name: str) -> Any:
        # Error classes and constants are pynvml's own, so `except nvml.NVMLError_NotFound`
        # in the sensor catches exactly what it catches on a GPU. Functions are not forwarded.
        if name.startswith(("NVMLError", "NVML_", "NVMLLibraryMismatchError")):
            return getattr(pynvml, name)
        raise AttributeError(name)

    def _gpu(self, call: str, handle: FakeHandle) -> FakeGpu:
        self.calls[call] += 1
        gpu = self.gpus[handle.index]
        if gpu.lost:
            raise pynvml.NVMLError_GpuIsLost()
        if call in gpu.fail:
            raise gpu.fail[call]
        return gpu

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1

    def nvmlDeviceGetCount(self) -> int:
        self.calls["nvmlDeviceGetCount"] += 1
        if self.count_error is not None:
            raise self.count_error
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self.calls["nvmlDeviceGetHandleByIndex"] += 1
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError_InvalidArgument()
        if not self.gpus[index].accessible:
            raise pynvml.NVMLError_NoPermission()
        return FakeHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeHandle:
        self.calls["nvmlDeviceGetHandleByUUID"] += 1
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return FakeHandle(index)
            if uuid in gpu.mig_uuids:
                return FakeHandle(index, mig_uuid=uuid)
        raise pynvml.NVMLError_NotFound()

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: FakeHandle) -> FakeHandle:
        self._gpu("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle)
        if handle.mig_uuid is None:
            raise pynvml.NVMLError_InvalidArgument()
        return FakeHandle(handle.index)

    def nvmlDeviceGetName(self, handle: FakeHandle) -> str:
        return self._gpu("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(self, handle: FakeHandle) -> str:
        gpu = self._gpu("nvmlDeviceGetUUID", handle)
        return handle.mig_uuid or gpu.uuid

    def nvmlDeviceGetMigMode(self, handle: FakeHandle) -> list[int]:
        gpu = self._gpu("nvmlDeviceGetMigMode", handle)
        if gpu.mig is None:
            raise pynvml.NVMLError_NotSupported()
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if gpu.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: FakeHandle) -> int:
        gpu = self._gpu("nvmlDeviceGetTotalEnergyConsumption", handle)
        if gpu.energy_mj is None:
            raise pynvml.NVMLError_NotSupported()
        return gpu.energy_mj

    def nvmlDeviceGetC2cModeInfoV(self, handle: FakeHandle) -> Any:
        gpu = self._gpu("nvmlDeviceGetC2cModeInfoV", handle)
        if gpu.c2c is None:
            raise pynvml.NVMLError_NotSupported()
        return C2cModeInfo(isC2cEnabled=int(gpu.c2c))

    def nvmlDeviceGetAccountingMode(self, handle: FakeHandle) -> int:
        gpu = self._gpu("nvmlDeviceGetAccountingMode", handle)
        return pynvml.NVML_FEATURE_ENABLED if gpu.accounting else pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetAccountingPids(self, handle: FakeHandle) -> list[int]:
        gpu = self._gpu("nvmlDeviceGetAccountingPids", handle)
        if not gpu.accounting:
            raise pynvml.NVMLError_NotSupported()  # what the driver says with the mode off
        return [entry.pid for entry in gpu.accounted]

    def nvmlDeviceGetAccountingStats(self, handle: FakeHandle, pid: int) -> Any:
        gpu = self._gpu("nvmlDeviceGetAccountingStats", handle)
        # On a PID collision NVML reports the latest process: the last entry.
        for entry in reversed(gpu.accounted):
            if entry.pid == pid:
                return AccountingStats(
                    gpuUtilization=entry.gpu_util,
                    memoryUtilization=10,
                    maxMemoryUsage=entry.max_memory,
                    time=0 if entry.running else entry.time_ms,
                    startTime=entry.start_us,
                    isRunning=int(entry.running),
                )
        raise pynvml.NVMLError_NotFound()

    def nvmlDeviceGetPowerUsage(self, handle: FakeHandle) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetFieldValues(self, handle: FakeHandle, field_ids: list[int]) -> Any:
        gpu = self._gpu("nvmlDeviceGetFieldValues", handle)
        if not gpu.field_values:
            raise pynvml.NVMLError_NotSupported()
        values = (FieldValue * len(field_ids))()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId = field_id
            if field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and gpu.instant_power_mw is not None:
                value.nvmlReturn = pynvml.NVML_SUCCESS
                value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                value.value.uiVal = gpu.instant_power_mw
            else:
                value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def _processes(self, call: str, handle: FakeHandle, graphics: bool) -> list[Any]:
        gpu = self._gpu(call, handle)
        found = gpu.graphics if graphics else gpu.compute
        if found is None:
            raise pynvml.NVMLError_NotSupported()
        return [
            pynvml.nvmlFriendlyObject(
                {
                    "pid": pid,
                    "usedGpuMemory": memory,
                    "gpuInstanceId": 0xFFFFFFFF,
                    "computeInstanceId": 0xFFFFFFFF,
                }
            )
            for pid, memory in found
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        if self.v3_missing:
            self.calls["nvmlDeviceGetComputeRunningProcesses"] += 1
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called ...")
        return self._processes("nvmlDeviceGetComputeRunningProcesses", handle, graphics=False)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: FakeHandle) -> list[Any]:
        if self.v3_missing:
            self.calls["nvmlDeviceGetGraphicsRunningProcesses"] += 1
            raise pynvml.NVMLLibraryMismatchError("Unversioned function called ...")
        return self._processes("nvmlDeviceGetGraphicsRunningProcesses", handle, graphics=True)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: FakeHandle) -> list[Any]:
        return self._processes("nvmlDeviceGetComputeRunningProcesses_v2", handle, graphics=False)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, handle: FakeHandle) -> list[Any]:
        return self._processes("nvmlDeviceGetGraphicsRunningProcesses_v2", handle, graphics=True)

    def nvmlDeviceGetProcessUtilization(self, handle: FakeHandle, time_stamp: int) -> list[Any]:
        gpu = self._gpu("nvmlDeviceGetProcessUtilization", handle)
        self.util_since.append((handle.index, time_stamp))
        if gpu.util is None:
            raise pynvml.NVMLError_NotSupported()
        newer = [s for s in gpu.util if s[1] > time_stamp]
        if not newer:
            raise pynvml.NVMLError_NotFound()  # what the driver says for an empty window
        return [
            UtilSample(pid=pid, timeStamp=stamp, smUtil=sm, memUtil=0, encUtil=0, decUtil=0)
            for pid, stamp, sm in newer
        ]
