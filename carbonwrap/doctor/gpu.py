"""Doctor checks of NVIDIA GPUs through NVML: the driver, each GPU's energy counter,
per-process utilisation, MIG and accounting mode, and the PID-namespace mismatch.

Without a driver this says so from a few stat calls and never imports pynvml. The GPUs'
answers come from the sensor's own probes (sensors/nvml.py GpuProbe): doctor reports what a
run would find, and asks NVML nothing the sensor has asked already.
NVML API reference: https://docs.nvidia.com/deploy/nvml-api/
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check
from carbonwrap.sensors import SensorUnavailable

if TYPE_CHECKING:
    from carbonwrap.sensors.nvml_probe import GpuProbe

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
    from carbonwrap.sensors.gpu_markers import no_nvidia_driver_reason, nvidia_driver_present

    if nvml is None and not nvidia_driver_present(root):
        return [Check("nvml", MISSING, no_nvidia_driver_reason(), _NO_DRIVER_FIX)]
    from carbonwrap.sensors.nvml import NAMESPACE_HINT, NvmlSensor
    from carbonwrap.sensors.nvml_probe import load_nvml

    try:
        if nvml is None:
            nvml = load_nvml(Path(root))
        sensor = NvmlSensor(nvml, environ, Path(proc_root))
    except SensorUnavailable as exc:
        return [Check("nvml", MISSING, exc.reason)]
    with sensor:  # nvmlShutdown at the end, whatever the probes raise
        measured = {info.index for info in sensor.devices}
        # Notes about one GPU go on its line; the namespace hint gets a line of its own.
        notes = [n for n in sensor.notes if not n.startswith("GPU ") and n != NAMESPACE_HINT]
        detail = f"{len(measured)} of {len(sensor.probes)} GPU(s) measured"
        checks = [Check("nvml", WARN if notes else OK, detail + "".join(f"; {n}" for n in notes))]
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
        for index, probe in sensor.probes.items():
            own = [n for n in sensor.notes if n.startswith(f"GPU {index} ")]
            checks.append(_check_gpu(nvml, index, probe, index in measured, own, environ))
    return checks


def _check_gpu(
    nvml: Any,
    index: int,
    probe: GpuProbe | Exception,
    measured: bool,
    notes: list[str],
    environ: Mapping[str, str],
) -> Check:
    """One GPU, from its probe's answers: each unsupported feature is a part of the detail.
    `probe`: the error NVML gave where it would not open the GPU; `notes`: what the sensor said
    about it when it opened the GPUs."""
    name = f"gpu {index}"
    if isinstance(probe, Exception):
        return _unreadable(nvml, index, probe)
    label = f"{probe.name} {probe.uuid}"
    if not measured:
        visible = environ.get("CUDA_VISIBLE_DEVICES")
        if notes:
            return Check(name, ERROR, f"{label}: not measured: {'; '.join(notes)}")
        why = f"CUDA_VISIBLE_DEVICES={visible!r} hides it" if visible is not None else "unused"
        return Check(name, OK, f"{label}: not measured, {why}")
    try:
        parts, status = _capabilities(probe, index)
    except nvml.NVMLError as exc:  # GpuIsLost since the sensor opened it: nothing else raises
        return _unreadable(nvml, index, exc)
    return Check(name, status, f"{label}: " + "; ".join(parts))


def _unreadable(nvml: Any, index: int, exc: Exception) -> Check:
    """A GPU that NVML would not open or read: lost, not granted to us, or failing."""
    name = f"gpu {index}"
    if isinstance(exc, nvml.NVMLError_GpuIsLost):
        return Check(
            name,
            ERROR,
            "GPU is lost (fell off the bus or needs a reset): no readings from it",
            f"reset it as root (`nvidia-smi --gpu-reset -i {index}`) or reboot",
        )
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return Check(
            name,
            WARN,
            "no permission to open it (a Slurm or container cgroup does not grant it): "
            "not measured",
        )
    return Check(name, ERROR, f"cannot be read ({exc}): not measured")


def _capabilities(probe: GpuProbe, index: int) -> tuple[list[str], str]:
    """What a run gets from this GPU, and the worst status among the parts."""
    parts: list[str] = []
    status = OK
    if probe.module_scope():
        status = WARN
        if probe.instant_power_readable():
            parts.append(
                "Grace superchip: its energy counter includes the CPU, so the GPU's own power "
                "is sampled and integrated instead"
            )
        else:
            parts.append(
                "Grace superchip without GPU-only power: its energy is the whole module's, "
                "CPU included"
            )
    elif probe.supports_total_energy():
        parts.append("energy counter")
    else:
        status = WARN
        error = probe.total_energy_error()
        if error is None:
            parts.append("no energy counter (before Volta): power sampled and integrated")
        else:
            parts.append(f"energy counter unreadable ({error}): power sampled and integrated")
    error = probe.process_utilisation_error()
    if error is None:
        parts.append("per-process utilisation")
    else:
        status = WARN
        parts.append(f"no per-process utilisation ({error}): a shared GPU is split by memory held")
    if probe.mig_enabled():
        status = WARN
        parts.append(
            "MIG mode: energy is the whole board's, shared by its instances; a run's share is "
            "its GPU memory where NVML lists the board's processes (privileged callers only), "
            "else the whole board, an upper bound"
        )
    parts.append(_accounting(probe, index))
    return parts, status


def _accounting(probe: GpuProbe, index: int) -> str:
    """Accounting mode keeps per-process statistics of processes that have exited: without it,
    a process that holds the GPU only between two readings is missed. Off is no failure."""
    error = probe.accounting_error()
    if error is not None:
        return f"accounting mode unknown ({error})"
    if probe.accounting_enabled():
        return "accounting mode on: processes that start and end between two readings count"
    # The mode lives in the driver and is lost when it unloads (NVML "Accounting Statistics":
    # https://docs.nvidia.com/deploy/nvml-api/group__nvmlAccountingStats.html).
    return (
        "accounting mode off: a process that starts and ends between two readings is missed; "
        f"`sudo nvidia-smi -i {index} -am 1` turns it on until the driver unloads (at reboot, "
        f"or when no process holds the GPU unless `sudo nvidia-smi -i {index} -pm 1` keeps it "
        "loaded)"
    )
