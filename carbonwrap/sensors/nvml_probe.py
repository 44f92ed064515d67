"""One NVIDIA GPU's capability questions, each asked of NVML once, for the sensor and for doctor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.gpu_markers import no_nvidia_driver_reason, nvidia_driver_present

# NVML API reference (every call, its units and its quirks): https://docs.nvidia.com/deploy/nvml-api/

NVML_SUCCESS = 0
# nvmlFieldValue_t.value is a union; nvmlValueType_t (0..6) says which member holds the value.
_VALUE_MEMBER = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
# Superchips whose GPU shares a module with a Grace CPU (C2C link). Their energy counter covers the
# whole module: CPU, memory and GPU (zeus found it on GH200: github.com/ml-energy/zeus pull 172;
# NVML's header gives the power fields a scope, "1 - Module scope ... CPU + GPU", nvml.h at
# NVML_FI_DEV_POWER_AVERAGE). Names are the fallback where nvmlDeviceGetC2cModeInfoV is missing.
_MODULE_NAMES = ("GH200", "GB200", "GB300")


def load_nvml(root: Path = Path("/")) -> Any:
    """The pynvml module, imported only when GPU measurement is wanted and a driver is present."""
    if not nvidia_driver_present(root):
        raise SensorUnavailable(no_nvidia_driver_reason())
    try:
        import pynvml
    except ImportError as exc:
        raise SensorUnavailable(
            "nvidia-ml-py is not installed (pip install nvidia-ml-py); no GPU measurement"
        ) from exc
    return pynvml


class GpuProbe:
    """One GPU opened by NVML index, answering the capability questions that the monitor and
    doctor both ask, as zeus's GPUs answer `supports_get_total_energy_consumption`.

    Each question costs one NVML call, the first time it is asked; the answer is kept, so doctor
    reads what the sensor found instead of asking again. A refusal is an answer; a lost GPU
    (NVMLError_GpuIsLost) is not: it propagates, since nothing more can be read from it.
    """

    __slots__ = (
        "_accounting",
        "_instant_power",
        "_mig",
        "_module",
        "_nvml",
        "_total_energy",
        "_utilisation",
        "handle",
        "index",
        "name",
        "uuid",
    )

    def __init__(self, nvml: Any, index: int) -> None:
        """Open GPU `index`: its handle, name and UUID; NVMLError where NVML refuses one."""
        self._nvml = nvml
        self.index = index
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.name = text(nvml.nvmlDeviceGetName(self.handle))
        self.uuid = text(nvml.nvmlDeviceGetUUID(self.handle))
        self._mig: bool | None = None
        self._total_energy: tuple[bool, Exception | None] | None = None
        self._instant_power: bool | None = None
        self._utilisation: tuple[Exception | None, int] | None = None
        self._accounting: tuple[bool, Exception | None] | None = None
        self._module: bool | None = None

    def mig_enabled(self) -> bool:
        """MIG mode is on: energy and process lists are the whole board's."""
        if self._mig is None:
            modes, error = self._ask(self._nvml.nvmlDeviceGetMigMode)
            # NotSupported, or any other refusal: not a MIG-capable GPU, or none NVML can tell of
            self._mig = error is None and bool(modes[0] == self._nvml.NVML_DEVICE_MIG_ENABLE)
        return self._mig

    def supports_total_energy(self) -> bool:
        """nvmlDeviceGetTotalEnergyConsumption answers (Volta and newer): the counter method."""
        return self._total_energy_answer()[0]

    def total_energy_error(self) -> Exception | None:
        """Why a counter the GPU has could not be read; None where it reads or there is none."""
        return self._total_energy_answer()[1]

    def instant_power_readable(self) -> bool:
        """NVML_FI_DEV_POWER_INSTANT is readable (GetPowerUsage: a 1 s mean on Ampere and newer)."""
        if self._instant_power is None:
            field = self._nvml.NVML_FI_DEV_POWER_INSTANT
            values, error = self._ask(self._nvml.nvmlDeviceGetFieldValues, [field])
            self._instant_power = error is None and field_value(values[0]) is not None
        return self._instant_power

    def process_utilisation_error(self) -> Exception | None:
        """Why per-process utilisation samples are refused; None where they are readable."""
        return self._utilisation_answer()[0]

    def newest_utilisation_us(self) -> int:
        """The newest buffered utilisation sample's timeStamp (µs, NVML's own clock); 0 if none."""
        return self._utilisation_answer()[1]

    def accounting_enabled(self) -> bool:
        """Accounting mode is on: NVML keeps statistics of processes that have exited."""
        return self._accounting_answer()[0]

    def accounting_error(self) -> Exception | None:
        """Why NVML could not say whether accounting mode is on; None where it could."""
        return self._accounting_answer()[1]

    def module_scope(self) -> bool:
        """The GPU shares a superchip module with a Grace CPU (GH200, GB200): its energy counter
        covers the module, CPU included. NVML says so through the C2C link's mode
        (nvmlDeviceGetC2cModeInfoV, as zeus asks); where the call is missing, the name says."""
        if self._module is None:
            call = getattr(self._nvml, "nvmlDeviceGetC2cModeInfoV", None)
            info, error = (None, None) if call is None else self._ask(call)
            if info is not None:
                self._module = bool(info.isC2cEnabled)
            elif isinstance(error, self._nvml.NVMLError_NotSupported):
                self._module = False  # no C2C link: a discrete GPU
            else:  # an older pynvml or driver without the call
                self._module = any(name in self.name for name in _MODULE_NAMES)
        return self._module

    # -- each question asked of NVML once --

    def _ask(self, call: Callable[..., Any], *args: Any) -> tuple[Any, Exception | None]:
        """`call` on this GPU: (its result, None), or (None, NVML's refusal); a lost GPU raises."""
        nvml = self._nvml
        try:
            return call(self.handle, *args), None
        except nvml.NVMLError_GpuIsLost:
            raise
        except nvml.NVMLError as exc:
            return None, exc

    def _total_energy_answer(self) -> tuple[bool, Exception | None]:
        if self._total_energy is None:
            _, error = self._ask(self._nvml.nvmlDeviceGetTotalEnergyConsumption)
            # NotSupported: before Volta the GPU has no counter, which is no fault
            lacks = isinstance(error, self._nvml.NVMLError_NotSupported)
            self._total_energy = (error is None, None if lacks else error)
        return self._total_energy

    def _utilisation_answer(self) -> tuple[Exception | None, int]:
        if self._utilisation is None:
            self._utilisation = self._ask_utilisation()
        return self._utilisation

    def _ask_utilisation(self) -> tuple[Exception | None, int]:
        nvml = self._nvml
        try:
            samples = nvml.nvmlDeviceGetProcessUtilization(self.handle, 0)
        except nvml.NVMLError_NotFound:
            return None, 0  # readable; no sample buffered
        except nvml.NVMLError_GpuIsLost:
            raise
        except nvml.NVMLError as exc:
            # pynvml raises NVMLError(SUCCESS) when the driver has no samples: readable too
            return (None if exc.value == NVML_SUCCESS else exc), 0
        return None, max((s.timeStamp for s in samples), default=0)

    def _accounting_answer(self) -> tuple[bool, Exception | None]:
        if self._accounting is None:
            mode, error = self._ask(self._nvml.nvmlDeviceGetAccountingMode)
            self._accounting = (error is None and mode == self._nvml.NVML_FEATURE_ENABLED, error)
        return self._accounting


def field_value(value: Any) -> float | None:
    """The number in an nvmlFieldValue_t, or None when NVML says it is not valid."""
    if value.nvmlReturn != NVML_SUCCESS or not 0 <= value.valueType < len(_VALUE_MEMBER):
        return None
    return float(getattr(value.value, _VALUE_MEMBER[value.valueType]))


def text(value: str | bytes) -> str:
    """pynvml returns str; older releases returned bytes."""
    return value.decode() if isinstance(value, bytes) else value
