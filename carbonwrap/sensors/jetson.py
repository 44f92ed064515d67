"""NVIDIA Jetson boards (no NVML there): the GPU's power from the module's INA3221 monitors.

Sysfs shapes:
- JetPack 5/6, the mainline ina3221 hwmon driver (https://docs.kernel.org/hwmon/ina3221.html):
  bus/i2c/drivers/ina3221/<addr>/hwmon/hwmon*/in<N>_label, in<N>_input (bus voltage, mV),
  curr<N>_input (mA), in<N>_enable, for channels 1-3.
- JetPack 4, NVIDIA's ina3221x iio driver: bus/i2c/drivers/ina3221x/<addr>/iio:device*/
  rail_name_<N>, in_power<N>_input (mW), for channels 0-2 (L4T 28 on TX2 names it iio_device).
Rail labels per module, from the kernel device trees and NVIDIA's Jetson Linux developer guides
("Platform Power and Performance", the on-module power monitor sections):
- AGX Orin (arch/arm64/boot/dts/nvidia/tegra234-p3701.dtsi): VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0
  at 0x40, VDDQ_VDD2_1V8AO at 0x41.
- Orin NX / Orin Nano (tegra234-p3767.dtsi), Xavier NX: VDD_IN, VDD_CPU_GPU_CV, VDD_SOC.
- AGX Xavier: GPU, CPU, SOC at 0x40; CV, VDDRQ, SYS5V at 0x41.
- Nano: POM_5V_IN, POM_5V_GPU, POM_5V_CPU. TX2: VDD_SYS_GPU, VDD_SYS_SOC, VDD_4V0_WIFI at 0x40;
  VDD_IN, VDD_SYS_CPU, VDD_SYS_DDR at 0x41. TX1: VDD_IN, VDD_GPU, VDD_CPU.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import NamedTuple

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.gpu import EMPTY, GpuInfo, GpuSample

METHOD_POWER_INTEGRATED = "power-integrated"  # rail power, integrated by the caller

# Rails that feed the GPU -> what else they feed ("" for the GPU alone).
GPU_RAILS = {
    "GPU": "",
    "VDD_GPU": "",
    "VDD_SYS_GPU": "",
    "POM_5V_GPU": "",  # the GPU regulator's 5 V input: the GPU and its regulator's losses
    "VDD_GPU_SOC": "the SoC",
    "VDD_CPU_GPU_CV": "the CPU cores and the vision accelerators",
}
CPU_RAILS = frozenset(
    {"CPU", "VDD_CPU", "VDD_SYS_CPU", "POM_5V_CPU", "VDD_CPU_CV", "VDD_CPU_GPU_CV"}
)

_HWMON_LABEL = re.compile(r"in([1-3])_label")
_IIO_RAIL = re.compile(r"rail_name_([0-2])")
_IIO_DIR = re.compile(r"iio:device\d+|iio_device")
_MILLI = 1000


class Rail(NamedTuple):
    """One monitored supply: its label and the files its power is read from."""

    label: str
    voltage_path: str  # hwmon: in<N>_input (mV); iio: "" (power read directly)
    current_path: str  # hwmon: curr<N>_input (mA); iio: in_power<N>_input (mW)


def find_rails(sysfs_root: str | os.PathLike[str]) -> list[Rail]:
    """Every enabled INA3221 channel with a label, hwmon driver first, then the iio one."""
    drivers = os.path.join(sysfs_root, "bus", "i2c", "drivers")
    rails = []
    for device in _entries(os.path.join(drivers, "ina3221")):
        for hwmon in _entries(os.path.join(device, "hwmon")):
            for name in sorted(_names(hwmon)):
                match = _HWMON_LABEL.fullmatch(name)
                channel = match.group(1) if match else ""
                if not channel or _read_text(os.path.join(hwmon, f"in{channel}_enable")) == "0":
                    continue
                label = _read_text(os.path.join(hwmon, name))
                voltage = os.path.join(hwmon, f"in{channel}_input")
                rails.append(Rail(label, voltage, os.path.join(hwmon, f"curr{channel}_input")))
    for device in _entries(os.path.join(drivers, "ina3221x")):
        for iio in (p for p in _entries(device) if _IIO_DIR.fullmatch(os.path.basename(p))):
            for name in sorted(_names(iio)):
                match = _IIO_RAIL.fullmatch(name)
                if match:
                    label = _read_text(os.path.join(iio, name))
                    power = os.path.join(iio, f"in_power{match.group(1)}_input")
                    rails.append(Rail(label, "", power))
    return [rail for rail in rails if rail.label and rail.label != "NC"]


def rail_power_w(rail: Rail) -> float:
    """The rail's power now, in W; OSError or ValueError when the driver refuses."""
    if rail.voltage_path:
        millivolts = int(_read_text(rail.voltage_path, strict=True))
        milliamps = int(_read_text(rail.current_path, strict=True))
        return millivolts * milliamps / (_MILLI * _MILLI)
    return int(_read_text(rail.current_path, strict=True)) / _MILLI


def device_tree(
    sysfs_root: str | os.PathLike[str], proc_root: str | os.PathLike[str] | None = None
) -> tuple[str, list[str]]:
    """(model, compatible strings) from firmware/devicetree/base, else /proc/device-tree."""
    bases = [os.path.join(sysfs_root, "firmware", "devicetree", "base")]
    if proc_root is not None:
        bases.append(os.path.join(proc_root, "device-tree"))
    for base in bases:
        compatible = _read_text(os.path.join(base, "compatible"))
        if compatible:
            model = _read_text(os.path.join(base, "model")).strip("\0")
            return model, [c for c in compatible.split("\0") if c]
    return "", []


class JetsonSensor:
    """The power of the rail(s) feeding a Jetson's integrated GPU; device-level only."""

    name = "jetson"

    def __init__(
        self,
        sysfs_root: str | os.PathLike[str],
        proc_root: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] = EMPTY,
    ) -> None:
        """`proc_root`: /proc/device-tree where sysfs has no device tree (None: sysfs only);
        `environ`: the command's, for CUDA_VISIBLE_DEVICES."""
        self.notes: list[str] = []
        self.pid_namespace_mismatch = False
        self._noted: set[str] = set()
        model, compatible = device_tree(sysfs_root, proc_root)
        if not any(c.startswith("nvidia,tegra") for c in compatible):
            raise SensorUnavailable(
                "not an NVIDIA Jetson (the device tree names no nvidia,tegra SoC)"
            )
        if (
            environ.get("CUDA_VISIBLE_DEVICES") is not None
            and not environ["CUDA_VISIBLE_DEVICES"].strip()
        ):
            raise SensorUnavailable("CUDA_VISIBLE_DEVICES is empty: the command sees no GPU")
        self.rails = tuple(find_rails(sysfs_root))
        self._gpu_rails = tuple(r for r in self.rails if r.label in GPU_RAILS)
        if not self._gpu_rails:
            found = ", ".join(r.label for r in self.rails) or "none"
            raise SensorUnavailable(
                f"{model or 'this Jetson'}: no INA3221 rail that feeds the GPU (rails: {found}; "
                "is the ina3221 driver loaded?)"
            )
        self.cpu_rails = tuple(r.label for r in self.rails if r.label in CPU_RAILS)
        name = model or "NVIDIA Jetson"
        serial = _read_text(
            os.path.join(sysfs_root, "firmware", "devicetree", "base", "serial-number")
        )
        self.devices: tuple[GpuInfo, ...] = (
            GpuInfo(0, name, serial.strip("\0"), METHOD_POWER_INTEGRATED, vendor="nvidia"),
        )
        labels = "+".join(r.label for r in self._gpu_rails)
        self.notes.append(
            f"{name}: power of rail {labels}, integrated over the sampling interval; Jetson "
            "gives no per-process GPU data, so the GPU is charged whole (device-level)"
        )
        for rail in self._gpu_rails:
            if GPU_RAILS[rail.label]:
                self.notes.append(
                    f"{name}: rail {rail.label} also feeds {GPU_RAILS[rail.label]}, so the GPU "
                    "figure is an upper bound"
                )

    def read(self) -> dict[int, GpuSample]:
        """The GPU rails' power summed; power None (noted once) when a rail cannot be read."""
        power_w: float | None = 0.0
        for rail in self._gpu_rails:
            try:
                power_w = (power_w or 0.0) + rail_power_w(rail)
            except (OSError, ValueError) as exc:
                self._note_once(rail.label, f"rail {rail.label} unreadable ({exc}): no power")
                power_w = None
                break
        return {0: GpuSample(None, power_w, EMPTY, EMPTY, processes_known=False)}

    def read_rails_w(self) -> dict[str, float]:
        """Every readable rail's power in W by label (the CPU rails among them: `cpu_rails`)."""
        powers = {}
        for rail in self.rails:
            try:
                powers[rail.label] = rail_power_w(rail)
            except (OSError, ValueError):
                continue
        return powers

    def close(self) -> None:
        """Nothing is held open between reads."""

    def _note_once(self, key: str, note: str) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(note)


def _entries(directory: str) -> list[str]:
    return [os.path.join(directory, name) for name in sorted(_names(directory))]


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _read_text(path: str, strict: bool = False) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read().strip()
    except OSError:
        if strict:
            raise
        return ""
