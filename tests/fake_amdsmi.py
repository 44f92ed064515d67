"""A fake amdsmi for tests without an AMD GPU: the Python interface's function names, return
shapes (dicts, "N/A" strings) and exception classes, per release.

Modelled on ROCm/amdsmi py-interface/amdsmi_interface.py and amdsmi_exception.py (tags
rocm-6.0.0, rocm-6.2.0, amd-staging 2024) and the amdsmi_power_info_t reference of ROCm 7.0
(https://rocm.docs.amd.com/projects/amdsmi/en/docs-7.0.0/). `api` picks the shapes:
- "6.0": amdsmi_get_gpu_process_list returns process handles (the PIDs, as ctypes c_uint32)
  to pass to amdsmi_get_gpu_process_info; energy {"power", ...}; an unsupported power reads
  0xFFFF (the Python layer did not yet turn it into "N/A").
- "6.2": the process list is a list of dicts; energy {"power", ...}; "N/A" strings.
- "6.4": energy has "energy_accumulator" and, deprecated, "power" too.
- "7.0": energy without "power" (assumed: deprecated in 6.4); power info has "socket_power".
"""

from __future__ import annotations

import ctypes
import os
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class AmdSmiStatus(IntEnum):
    """amdsmi_status_t (include/amd_smi/amdsmi.h), as amdsmi_interface.AmdSmiStatus has it."""

    SUCCESS = 0
    INVAL = 1
    NOT_SUPPORTED = 2
    FAIL_LOAD_MODULE = 4
    FAIL_LOAD_SYMBOL = 5
    TIMEOUT = 8
    RETRY = 9
    NO_PERM = 10
    FILE_ERROR = 14
    INIT_ERROR = 18
    NOT_FOUND = 31
    NOT_INIT = 32
    DRIVER_NOT_LOADED = 34
    FILE_NOT_FOUND = 52
    UNKNOWN_ERROR = 0xFFFFFFFF


_ERR_INFO = {
    AmdSmiStatus.INVAL: "AMDSMI_STATUS_INVAL - Invalid parameters",
    AmdSmiStatus.NOT_SUPPORTED: "AMDSMI_STATUS_NOT_SUPPORTED - Feature not supported",
    AmdSmiStatus.FAIL_LOAD_MODULE: "AMDSMI_STATUS_FAIL_LOAD_MODULE - Fail to load lib",
    AmdSmiStatus.FAIL_LOAD_SYMBOL: "AMDSMI_STATUS_FAIL_LOAD_SYMBOL - Fail to load symbol",
    AmdSmiStatus.TIMEOUT: "AMDSMI_STATUS_TIMEOUT - Timeout in API call",
    AmdSmiStatus.RETRY: "AMDSMI_STATUS_RETRY - Retry operation",
    AmdSmiStatus.NO_PERM: "AMDSMI_STATUS_NO_PERM - Permission Denied",
    AmdSmiStatus.FILE_ERROR: "AMDSMI_STATUS_FILE_ERROR - Error opening file",
    AmdSmiStatus.INIT_ERROR: "AMDSMI_STATUS_INIT_ERROR - Initialization error",
    AmdSmiStatus.NOT_FOUND: "AMDSMI_STATUS_NOT_FOUND - Device Not found",
    AmdSmiStatus.NOT_INIT: "AMDSMI_STATUS_NOT_INIT - Device not initialized",
    AmdSmiStatus.DRIVER_NOT_LOADED: "AMDSMI_STATUS_DRIVER_NOT_LOADED - Driver not loaded",
    AmdSmiStatus.FILE_NOT_FOUND: "AMDSMI_STATUS_FILE_NOT_FOUND - File or directory not found",
}


class AmdSmiException(Exception):
    """Base smi exception class"""


class AmdSmiLibraryException(AmdSmiException):
    """An amdsmi_status_t other than SUCCESS: `err_code` and `err_info`, as the real one."""

    def __init__(self, err_code: int) -> None:
        err_code = abs(err_code)
        super().__init__(err_code)
        self.err_code = err_code
        self.err_info = _ERR_INFO.get(
            err_code, "AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
        )

    def __str__(self) -> str:
        return f"Error code:\n\t{self.err_code} | {self.err_info}"

    def get_error_info(self) -> str:
        return self.err_info

    def get_error_code(self) -> int:
        return self.err_code


class AmdSmiRetryException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AmdSmiStatus.RETRY)


class AmdSmiTimeoutException(AmdSmiLibraryException):
    def __init__(self) -> None:
        super().__init__(AmdSmiStatus.TIMEOUT)


class AmdSmiParameterException(AmdSmiException):
    def __init__(self, received: Any, expected: type) -> None:
        super().__init__()
        self.err_code = None
        self.err_msg = (
            f"Invalid parameter:\nActual type: {type(received)}\nExpected type: {expected}"
        )

    def __str__(self) -> str:
        return self.err_msg


class AmdSmiInitFlags(IntEnum):
    INIT_ALL_PROCESSORS = 0xFFFFFFFF
    INIT_AMD_CPUS = 1 << 0
    INIT_AMD_GPUS = 1 << 1
    INIT_NON_AMD_CPUS = 1 << 2
    INIT_NON_AMD_GPUS = 1 << 3


@dataclass
class FakeProcess:
    """One process with the GPU open: VRAM (bytes), cumulative engine time (ns)."""

    pid: int
    vram: int = 0
    gfx_ns: int = 0
    enc_ns: int = 0
    gtt: int = 0


@dataclass
class FakeAmdGpu:
    """One GPU (or one die of an MI250) as amdsmi lists it; tests change fields between reads."""

    name: str  # market_name
    unique_id: int  # the 64-bit id sysfs unique_id gives: asic_serial, ROCr's UUID
    bdf: str
    device_id: int = 0x74A1  # MI300X
    board_serial: str = ""  # "" reads as "N/A"
    energy: int | None = 0  # accumulator ticks; None: the counter is not supported
    resolution_uj: float = 15.3
    current_w: int | None = 300  # current_socket_power; None: not supported
    average_w: int | None = None  # average_socket_power; None: not supported
    processes: list[FakeProcess] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # call name -> err_code it raises
    gone: bool = False  # every call raises NOT_FOUND

    @property
    def uuid(self) -> str:
        """amdsmi_get_gpu_device_uuid's form (src/amd_smi/amd_smi_uuid.cc), serial inside."""
        serial = self.unique_id
        low = ((serial >> 56) & 0xFF) << 24 | 0xFF << 16 | self.device_id
        return (
            f"{low:08x}-0000-1000-80{(serial >> 48) & 0xFF:02x}-"
            f"{(serial >> 32) & 0xFFFF:04x}{serial & 0xFFFFFFFF:08x}"
        )


class FakeProcessorHandle:
    """amdsmi_wrapper.amdsmi_processor_handle: an opaque pointer."""

    def __init__(self, index: int) -> None:
        self.index = index


class FakeAmdSmi:
    """The subset of amdsmi that AmdSmiSensor calls; counts every call in `calls`."""

    AmdSmiException = AmdSmiException
    AmdSmiLibraryException = AmdSmiLibraryException
    AmdSmiRetryException = AmdSmiRetryException
    AmdSmiTimeoutException = AmdSmiTimeoutException
    AmdSmiParameterException = AmdSmiParameterException
    AmdSmiInitFlags = AmdSmiInitFlags

    def __init__(
        self, gpus: list[FakeAmdGpu], api: str = "6.2", init_error: int | None = None
    ) -> None:
        self.gpus = gpus
        self.api = api
        self.init_error = init_error
        self.handles_error: int | None = None
        self.lists_caller = True  # the caller has every GPU open (libdrm) after init
        self.initialised = False
        self.init_flags: list[int] = []
        self.calls: Counter[str] = Counter()

    def _gpu(self, call: str, handle: Any) -> FakeAmdGpu:
        self.calls[call] += 1
        if not self.initialised:
            raise AmdSmiLibraryException(AmdSmiStatus.NOT_INIT)
        if not isinstance(handle, FakeProcessorHandle):
            raise AmdSmiParameterException(handle, FakeProcessorHandle)
        gpu = self.gpus[handle.index]
        if gpu.gone:
            raise AmdSmiLibraryException(AmdSmiStatus.NOT_FOUND)
        if call in gpu.fail:
            raise AmdSmiLibraryException(gpu.fail[call])
        return gpu

    def _na(self, value: int | None) -> int | str:
        if value is not None:
            return value
        return 0xFFFF if self.api == "6.0" else "N/A"

    def amdsmi_init(self, flag: int = AmdSmiInitFlags.INIT_AMD_GPUS) -> None:
        self.calls["amdsmi_init"] += 1
        self.init_flags.append(flag)
        if self.init_error is not None:
            raise AmdSmiLibraryException(self.init_error)
        self.initialised = True

    def amdsmi_shut_down(self) -> None:
        self.calls["amdsmi_shut_down"] += 1
        self.initialised = False

    def amdsmi_get_processor_handles(self) -> list[FakeProcessorHandle]:
        self.calls["amdsmi_get_processor_handles"] += 1
        if self.handles_error is not None:
            raise AmdSmiLibraryException(self.handles_error)
        return [FakeProcessorHandle(i) for i in range(len(self.gpus))]

    def amdsmi_get_gpu_device_uuid(self, handle: Any) -> str:
        return self._gpu("amdsmi_get_gpu_device_uuid", handle).uuid

    def amdsmi_get_gpu_device_bdf(self, handle: Any) -> str:
        return self._gpu("amdsmi_get_gpu_device_bdf", handle).bdf

    def amdsmi_get_gpu_asic_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_asic_info", handle)
        if self.api == "6.0":  # raw values, the serial as sysfs unique_id prints it
            device_id: int | str = gpu.device_id
            serial = f"{gpu.unique_id:016x}"
        else:
            device_id, serial = hex(gpu.device_id), f"0x{gpu.unique_id:016X}"
        return {
            "market_name": gpu.name or "N/A",
            "vendor_id": 0x1002 if self.api == "6.0" else "0x1002",
            "vendor_name": "Advanced Micro Devices Inc. [AMD/ATI]",
            "subvendor_id": "0x1002",
            "device_id": device_id,
            "rev_id": "0x00",
            "asic_serial": serial,
            "oam_id": "N/A",
        }

    def amdsmi_get_gpu_board_info(self, handle: Any) -> dict[str, str]:
        gpu = self._gpu("amdsmi_get_gpu_board_info", handle)
        return {
            "model_number": "102-D65209-00",
            "product_serial": gpu.board_serial or "N/A",
            "fru_id": "N/A",
            "product_name": gpu.name,
            "manufacturer_name": "AMD",
        }

    def amdsmi_get_energy_count(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_energy_count", handle)
        if gpu.energy is None:
            raise AmdSmiLibraryException(AmdSmiStatus.NOT_SUPPORTED)
        result: dict[str, Any] = {}
        if self.api in ("6.0", "6.2", "6.4"):
            result["power"] = gpu.energy
        if self.api in ("6.4", "7.0"):
            result["energy_accumulator"] = gpu.energy
        result["counter_resolution"] = gpu.resolution_uj
        result["timestamp"] = 1_712_024_507_665 + self.calls["amdsmi_get_energy_count"]
        return result

    def amdsmi_get_power_info(self, handle: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_power_info", handle)
        info: dict[str, Any] = {}
        if self.api == "7.0":
            socket = gpu.current_w if gpu.current_w is not None else gpu.average_w
            info["socket_power"] = self._na(socket)
        info.update(
            current_socket_power=self._na(gpu.current_w),
            average_socket_power=self._na(gpu.average_w),
            gfx_voltage=self._na(None),
            soc_voltage=self._na(None),
            mem_voltage=self._na(None),
            power_limit=750,
        )
        return info

    def _listed(self, gpu: FakeAmdGpu) -> list[FakeProcess]:
        caller = [FakeProcess(os.getpid(), gtt=4096)] if self.lists_caller else []
        return [*gpu.processes, *caller]

    def amdsmi_get_gpu_process_list(self, handle: Any) -> list[Any]:
        gpu = self._gpu("amdsmi_get_gpu_process_list", handle)
        listed = self._listed(gpu)
        if self.api == "6.0":
            return [ctypes.c_uint32(p.pid) for p in listed]
        return [_process_dict(p) for p in listed]

    def amdsmi_get_gpu_process_info(self, handle: Any, process: Any) -> dict[str, Any]:
        gpu = self._gpu("amdsmi_get_gpu_process_info", handle)
        if self.api != "6.0":
            raise AttributeError("amdsmi_get_gpu_process_info")  # removed in ROCm 6.2
        if not isinstance(process, ctypes.c_uint32):
            raise AmdSmiParameterException(process, ctypes.c_uint32)
        for p in self._listed(gpu):
            if p.pid == process.value:
                return _process_dict(p)
        raise AmdSmiLibraryException(AmdSmiStatus.INVAL)  # it exited since the list was made


def _process_dict(p: FakeProcess) -> dict[str, Any]:
    return {
        "name": f"proc{p.pid}",
        "pid": p.pid,
        "mem": p.vram + p.gtt,
        "engine_usage": {"gfx": p.gfx_ns, "enc": p.enc_ns},
        "memory_usage": {"gtt_mem": p.gtt, "cpu_mem": 0, "vram_mem": p.vram},
    }
