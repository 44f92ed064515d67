"""Doctor checks of NVIDIA GPUs through NVML: the driver, each GPU's energy counter,
per-process utilisation, MIG and accounting mode, and the PID-namespace mismatch.

Without a driver this says so from a few stat calls and never imports pynvml.
NVML API reference: https://docs.nvidia.com/deploy/nvml-api/
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check
from carbonwrap.sensors import SensorUnavailable

_NVML_SUCCESS = 0
_NO_DRIVER_FIX = (
    "none needed without an NVIDIA GPU; with one, install the NVIDIA driver (in a container: "
    "start it with the NVIDIA container toolkit, e.g. `docker run --gpus all`)"
)
_NAMESPACE_FIX = (
    "run the container in the host PID namespace (`docker run --pid=host`, Kubernetes "
    "`hostPID: true`) or run carbonwrap outside the container"
)


def check_gpus(
    nvml: Any, environ: Mapping[str, str], proc_root: str, root: str = "/"
) -> list[Check]:
    """The GPUs a command started with `environ` would have measured. `nvml` None: the real
    pynvml, loaded only where a driver shows under `root`."""
    from carbonwrap.sensors.nvidia_driver import driver_present, no_driver_reason

    if nvml is None and not driver_present(root):
        return [Check("nvml", MISSING, no_driver_reason(), _NO_DRIVER_FIX)]
    from carbonwrap.sensors.nvml import NAMESPACE_HINT, NvmlSensor, load_nvml

    try:
        if nvml is None:
            nvml = load_nvml(Path(root))
        sensor = NvmlSensor(nvml, environ, Path(proc_root))
    except SensorUnavailable as exc:
        return [Check("nvml", MISSING, exc.reason)]
    with sensor:  # nvmlShutdown at the end, whatever the probes raise
        measured = {info.index: info for info in sensor.devices}
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError:  # it answered a moment ago: list the GPUs the sensor opened
            count = max(measured) + 1
        # Notes about one GPU go on its line; the namespace hint gets a line of its own.
        notes = [n for n in sensor.notes if not n.startswith("GPU ") and n != NAMESPACE_HINT]
        detail = f"{len(measured)} of {count} GPU(s) measured" + "".join(f"; {n}" for n in notes)
        checks = [Check("nvml", WARN if notes else OK, detail)]
        if sensor.pid_namespace_mismatch:
            checks.append(
                Check(
                    "gpu pids",
                    WARN,
                    "carbonwrap runs in its own PID namespace but NVML reports host PIDs: GPU "
                    "energy is given per device, not attributed to the command",
                    _NAMESPACE_FIX,
                )
            )
        for index in range(count):
            own = [n for n in sensor.notes if n.startswith(f"GPU {index} ")]
            checks.append(_check_gpu(nvml, index, index in measured, own, environ))
    return checks


def _check_gpu(
    nvml: Any, index: int, measured: bool, notes: list[str], environ: Mapping[str, str]
) -> Check:
    """One GPU, probed call by call: each unsupported feature is a part of the detail. `notes`:
    what the sensor said about it when it opened the GPUs."""
    name = f"gpu {index}"
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        label = f"{_text(nvml.nvmlDeviceGetName(handle))} {_text(nvml.nvmlDeviceGetUUID(handle))}"
        if not measured:
            visible = environ.get("CUDA_VISIBLE_DEVICES")
            if notes:
                return Check(name, ERROR, f"{label}: not measured: {'; '.join(notes)}")
            why = f"CUDA_VISIBLE_DEVICES={visible!r} hides it" if visible is not None else "unused"
            return Check(name, OK, f"{label}: not measured, {why}")
        parts, status = _probe(nvml, handle, index)
    except nvml.NVMLError_GpuIsLost:
        return Check(
            name,
            ERROR,
            "GPU is lost (fell off the bus or needs a reset): no readings from it",
            f"reset it as root (`nvidia-smi --gpu-reset -i {index}`) or reboot",
        )
    except nvml.NVMLError_NoPermission:
        return Check(
            name,
            WARN,
            "no permission to open it (a Slurm or container cgroup does not grant it): "
            "not measured",
        )
    except nvml.NVMLError as exc:
        return Check(name, ERROR, f"cannot be read ({exc}): not measured")
    return Check(name, status, f"{label}: " + "; ".join(parts))


def _probe(nvml: Any, handle: Any, index: int) -> tuple[list[str], str]:
    """What a run would get from this GPU, and the worst status among the parts."""
    from carbonwrap.sensors.nvml import mig_enabled

    parts: list[str] = []
    status = OK
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        parts.append("energy counter")
    except nvml.NVMLError_NotSupported:
        status = WARN
        parts.append("no energy counter (before Volta): power sampled and integrated")
    except nvml.NVMLError as exc:
        if isinstance(exc, nvml.NVMLError_GpuIsLost):
            raise
        status = WARN
        parts.append(f"energy counter unreadable ({exc}): power sampled and integrated")
    try:
        nvml.nvmlDeviceGetProcessUtilization(handle, 0)
        parts.append("per-process utilisation")
    except nvml.NVMLError_NotFound:
        parts.append("per-process utilisation")  # supported: no samples in the buffer now
    except nvml.NVMLError as exc:
        if isinstance(exc, nvml.NVMLError_GpuIsLost):
            raise
        if exc.value == _NVML_SUCCESS:  # pynvml's way of saying "no samples"
            parts.append("per-process utilisation")
        else:
            status = WARN
            parts.append(
                f"no per-process utilisation ({exc}): a shared GPU is split by memory held"
            )
    if mig_enabled(nvml, handle):
        status = WARN
        parts.append(
            "MIG mode: energy is the whole board's, shared by its instances; no per-process "
            "attribution within the board"
        )
    parts.append(_accounting(nvml, handle, index))
    return parts, status


def _accounting(nvml: Any, handle: Any, index: int) -> str:
    """Accounting mode keeps per-process statistics of processes that have exited."""
    try:
        mode = nvml.nvmlDeviceGetAccountingMode(handle)
    except nvml.NVMLError as exc:
        if isinstance(exc, nvml.NVMLError_GpuIsLost):
            raise
        return f"accounting mode unknown ({exc})"
    if mode == nvml.NVML_FEATURE_ENABLED:
        return "accounting mode on"
    return (
        f"accounting mode off (`sudo nvidia-smi -i {index} -am 1` keeps statistics of exited "
        "processes; carbonwrap does not read them yet)"
    )


def _text(value: str | bytes) -> str:
    """pynvml returns str; older releases returned bytes."""
    return value.decode() if isinstance(value, bytes) else value
