"""Doctor checks of the GPUs NVML does not measure: AMD through amdsmi, Intel and AMD cards through
sysfs (hwmon energy or power, DRM fdinfo per process), Jetson power rails — opened exactly as a run
opens them (measure/gpus.py), and read once, so per-process data is tried too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbonwrap.doctor.checks import ERROR, MISSING, OK, WARN, Check
from carbonwrap.measure.gpus import BACKENDS, GpuHost, open_gpus
from carbonwrap.sensors.gpu import GpuInfo, GpuSample

# What each energy method means for a run, as doctor says it.
METHODS = {
    "amdsmi-counter": "energy counter (checked against power during the run: a stuck or absurd "
    "counter is rejected and power integrated)",
    "amdsmi-power": "no energy counter: power sampled and integrated",
    "hwmon-energy": "hwmon energy counter",
    "hwmon-power": "no energy counter: hwmon power sampled and integrated",
    "power-integrated": "INA3221 power rails sampled and integrated",
}
_SHARES = {
    "amdsmi": "per-process engine time (amdsmi, else DRM fdinfo)",
    "drm": "per-process engine time (DRM fdinfo)",
}
_NO_PROCESSES = "no per-process data: the whole device is charged while measured, an upper bound"


def check_other_gpus(
    environ: Mapping[str, str],
    child_env: Mapping[str, str],
    root: str = "/",
    amdsmi: Any = None,
) -> list[Check]:
    """The non-NVIDIA GPUs a command started with `child_env` would have measured; one line
    saying why there are none where there are none."""
    host = GpuHost(environ, child_env, amdsmi=amdsmi, root=Path(root))
    others = tuple(backend for backend in BACKENDS if backend[0] != "NVIDIA")
    gpus, failed, absent = open_gpus(host, others)
    checks = [_failure(reason) for reason in failed]
    if gpus is None:
        if not failed:
            checks.append(Check("other gpus", MISSING, "; ".join(absent)))
        return checks
    try:
        samples = gpus.read()
    except Exception as exc:  # a backend that opens but cannot be read: say it, as a run would
        samples = {}
        checks.append(Check(gpus.name, ERROR, f"opened but could not be read: {exc}"))
    general = [n for n in gpus.notes if not n.startswith("GPU ")]
    if general:
        checks.append(Check(gpus.name, WARN, "; ".join(general)))
    for info in gpus.devices:
        own = [n for n in gpus.notes if n.startswith(f"GPU {info.index} ")]
        backend = gpus.backend_of[info.index]
        checks.append(_device_check(info, samples.get(info.index), own, backend))
    gpus.close()
    return checks


def _failure(reason: str) -> Check:
    """A backend whose hardware is here but that could not be opened: an error, except where
    the command's environment hides its GPUs on purpose (then the run measures none, rightly)."""
    label, _, why = reason.partition(": ")
    hidden = any(name in why for name in ("_VISIBLE_DEVICES", "ZE_AFFINITY_MASK"))
    return Check(label.lower(), WARN if hidden else ERROR, why)


def _device_check(info: GpuInfo, sample: GpuSample | None, notes: list[str], backend: str) -> Check:
    """One GPU: its energy method and where its per-process share comes from."""
    parts = [METHODS.get(info.energy_method, info.energy_method)]
    status = OK if info.energy_method.endswith(("-counter", "-energy")) else WARN
    if sample is None:
        status = ERROR
        parts.append("no reading")
    elif sample.processes_known:
        parts.append(
            next((v for k, v in _SHARES.items() if k in backend.split("+")), "per process")
        )
    else:
        status = WARN
        parts.append(_NO_PROCESSES)
    if notes:
        status = WARN if status == OK else status
        parts.extend(n.split(": ", 1)[-1] for n in notes)
    where = f" {info.pci_bus_id}" if info.pci_bus_id else ""
    return Check(
        f"{info.vendor} gpu {info.index}", status, f"{info.name}{where}: " + "; ".join(parts)
    )
