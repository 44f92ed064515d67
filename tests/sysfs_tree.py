"""Fake powercap (RAPL) trees of real files, laid out as the kernel lays them out."""

from __future__ import annotations

import os
from pathlib import Path

MAX_RANGE_UJ = 262_143_328_850  # a real package max_energy_range_uj (Xeon)
DRAM_MAX_RANGE_UJ = 65_712_999_613


def write_zone(
    zone_dir: Path, name: str, energy_uj: int | str, max_range_uj: int | str | None
) -> Path:
    """One zone directory with name, energy_uj and (unless None) max_energy_range_uj."""
    zone_dir.mkdir(parents=True)
    (zone_dir / "name").write_text(f"{name}\n")
    (zone_dir / "energy_uj").write_text(f"{energy_uj}\n")
    if max_range_uj is not None:
        (zone_dir / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return zone_dir


def link_into_class(sysfs: Path, zone_dir: Path) -> None:
    """The class/powercap/<zone> symlink the kernel creates for every zone, subzones included."""
    powercap = sysfs / "class" / "powercap"
    powercap.mkdir(parents=True, exist_ok=True)
    (powercap / zone_dir.name).symlink_to(os.path.relpath(zone_dir, powercap))


def make_sysfs(sysfs: Path) -> Path:
    """Two packages (one with core, uncore, dram subzones; one with dram), psys and an mmio zone.

    Zones live under devices/virtual/powercap/ with symlinks in class/powercap/, as on a real
    two-socket Intel server; the subzones are both inside their package and linked at top level.
    """
    devices = sysfs / "devices" / "virtual" / "powercap"
    rapl = devices / "intel-rapl"
    zones = [
        write_zone(rapl / "intel-rapl:0", "package-0", 1_000_000, MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:0" / "intel-rapl:0:0", "core", 500_000, MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:0" / "intel-rapl:0:1", "uncore", 100_000, MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:0" / "intel-rapl:0:2", "dram", 250_000, DRAM_MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:1", "package-1", 2_500_000, MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:1" / "intel-rapl:1:0", "dram", 750_000, DRAM_MAX_RANGE_UJ),
        write_zone(rapl / "intel-rapl:2", "psys", 9_000_000, MAX_RANGE_UJ),
        write_zone(
            devices / "intel-rapl-mmio" / "intel-rapl-mmio:0", "package-0", 1_000_000, MAX_RANGE_UJ
        ),
    ]
    for zone_dir in zones:
        link_into_class(sysfs, zone_dir)
    return sysfs


def zone_file(sysfs: Path, zone_id: str, name: str) -> Path:
    return sysfs / "class" / "powercap" / zone_id / name


AMD_MAX_RANGE_UJ = 65_532_610_987  # max_energy_range_uj of both AMD zones: 32 bits of 15.3 uJ


def make_amd_sysfs(sysfs: Path, sockets: int = 2) -> Path:
    """powercap as the kernel lays it out on an AMD EPYC host (intel_rapl_msr, rapl_msr_priv_amd):
    per socket a "package-N" zone with one "core" subzone, both with the same 32-bit range; no
    dram, psys or uncore zone. Reported layout: e.g. EPYC 7543 (65532610987 in several projects'
    fixtures, and powercap/powercap#3 for the zone tree)."""
    rapl = sysfs / "devices" / "virtual" / "powercap" / "intel-rapl"
    for n in range(sockets):
        package = write_zone(
            rapl / f"intel-rapl:{n}", f"package-{n}", 1_000_000 * (n + 1), AMD_MAX_RANGE_UJ
        )
        core = write_zone(package / f"intel-rapl:{n}:0", "core", 400_000, AMD_MAX_RANGE_UJ)
        link_into_class(sysfs, package)
        link_into_class(sysfs, core)
    return sysfs


def make_amd_energy_hwmon(
    sysfs: Path,
    sockets_uj: list[int],
    cores_uj: list[int],
    name: str = "amd_energy",
    hwmon: str = "hwmon3",
) -> Path:
    """An amd_energy hwmon device (Documentation/hwmon/amd_energy.rst, github.com/amd/amd_energy):
    energyN_input (uJ) and energyN_label, the cores first ("Ecore000"...) then the sockets
    ("Esocket0"...), under devices/platform/amd_energy.0/hwmon/ with the class/hwmon link. Other
    hwmon devices (k10temp) sit beside it, as on a real host."""
    platform = sysfs / "devices" / "platform"
    hwmon_class = sysfs / "class" / "hwmon"
    hwmon_class.mkdir(parents=True, exist_ok=True)
    k10 = platform / "k10temp" / "hwmon" / "hwmon1"
    if not k10.exists():
        k10.mkdir(parents=True)
        (k10 / "name").write_text("k10temp\n")
        (k10 / "temp1_input").write_text("45000\n")
        (hwmon_class / "hwmon1").symlink_to(os.path.relpath(k10, hwmon_class))
    device = platform / f"{name}.0" / "hwmon" / hwmon
    device.mkdir(parents=True)
    (device / "name").write_text(f"{name}\n")
    labels = [f"Ecore{i:03d}" for i in range(len(cores_uj))]
    labels += [f"Esocket{i}" for i in range(len(sockets_uj))]
    values = [*cores_uj, *sockets_uj]
    for index, (label, value) in enumerate(zip(labels, values, strict=True), start=1):
        (device / f"energy{index}_label").write_text(f"{label}\n")
        (device / f"energy{index}_input").write_text(f"{value}\n")
    (hwmon_class / hwmon).symlink_to(os.path.relpath(device, hwmon_class))
    return device


def write_dmi(sysfs: Path, sys_vendor: str, product_name: str) -> Path:
    """class/dmi/id/{sys_vendor,product_name}, as an EC2 Nitro instance shows them."""
    dmi = sysfs / "devices" / "virtual" / "dmi" / "id"
    dmi.mkdir(parents=True)
    (dmi / "sys_vendor").write_text(f"{sys_vendor}\n")
    (dmi / "product_name").write_text(f"{product_name}\n")
    (sysfs / "class" / "dmi").mkdir(parents=True, exist_ok=True)
    (sysfs / "class" / "dmi" / "id").symlink_to(os.path.relpath(dmi, sysfs / "class" / "dmi"))
    return dmi
