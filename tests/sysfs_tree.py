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
