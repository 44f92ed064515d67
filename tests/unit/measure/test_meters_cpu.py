"""Meters on AMD hosts: RAPL without a DRAM domain said as such, amd_energy where powercap is not
readable, the estimate only on hosts with neither."""

from __future__ import annotations

from pathlib import Path

import pytest
from sysfs_tree import make_amd_energy_hwmon, make_amd_sysfs

from carbonwrap.measure.meters import Meters

EPYC_CPUINFO = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"
)
XEON_CPUINFO = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\n"
    "model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n"
)


def host(tmp_path: Path, cpuinfo: str) -> dict[str, str]:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(cpuinfo)
    (proc / "stat").write_text("cpu  1 0 1 100 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    return {"CARBONWRAP_SYSFS_ROOT": str(tmp_path / "sys"), "CARBONWRAP_PROC_ROOT": str(proc)}


def test_amd_rapl_says_zen_has_no_dram_domain(tmp_path: Path) -> None:
    environ = host(tmp_path, EPYC_CPUINFO)
    make_amd_sysfs(tmp_path / "sys")
    meters = Meters(environ, {})
    try:
        assert meters.components["cpu"]["method"] == "rapl"
        assert meters.components["dram"]["method"] == "estimate"
        assert (
            "AMD Zen CPUs have no DRAM RAPL domain: DRAM energy is estimated from resident memory"
            in meters.notes
        )
    finally:
        meters.close()


def test_amd_energy_serves_where_powercap_is_absent(tmp_path: Path) -> None:
    environ = host(tmp_path, EPYC_CPUINFO)
    make_amd_energy_hwmon(tmp_path / "sys", sockets_uj=[5_000_000], cores_uj=[1_000, 2_000])
    meters = Meters(environ, {})
    try:
        cpu = meters.components["cpu"]
        assert cpu["method"] == "rapl"
        assert cpu["basis"].startswith("1 amd_energy package zone(s)")
        assert any(
            n.startswith("RAPL unavailable, CPU energy from amd_energy") for n in meters.notes
        )
    finally:
        meters.close()


def test_an_intel_vm_without_rapl_gets_the_estimate_of_its_model(tmp_path: Path) -> None:
    environ = host(tmp_path, XEON_CPUINFO)
    make_amd_energy_hwmon(tmp_path / "sys", sockets_uj=[5_000_000], cores_uj=[1_000])
    meters = Meters(environ, {})  # an amd_energy tree is not looked at on an Intel host
    try:
        assert meters.components["cpu"]["method"] == "estimate"
        assert "Gold 6248" in meters.components["cpu"]["basis"]
        assert not any("amd_energy" in n for n in meters.notes)
    finally:
        meters.close()


def test_cpuinfo_is_read_once_where_both_its_vendor_and_model_are_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AMD VM without RAPL asks cpuinfo for the vendor (amd_energy?) and the model (the
    estimate): one read, each CPU's block costing the kernel an interrupt of that CPU."""
    from carbonwrap.sensors import cpu_estimate

    environ = host(tmp_path, EPYC_CPUINFO)
    reads: list[str] = []
    real = cpu_estimate.cpuinfo_fields

    def counted(proc_root: str) -> dict[str, str]:
        reads.append(proc_root)
        return real(proc_root)

    monkeypatch.setattr(cpu_estimate, "cpuinfo_fields", counted)
    meters = Meters(environ, {})
    try:
        assert meters.components["cpu"]["method"] == "estimate"
        assert "EPYC 7763" in meters.components["cpu"]["basis"]
        assert any("amd_energy unavailable too" in n for n in meters.notes)  # it was asked
        assert len(reads) == 1
    finally:
        meters.close()
