"""doctor on AMD hosts without readable RAPL: the amd_energy counters a run would use."""

from __future__ import annotations

from pathlib import Path

from sysfs_tree import make_amd_energy_hwmon

from carbonwrap.doctor.checks import MISSING, OK
from carbonwrap.doctor.host import check_rapl

EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7763 64-Core Processor\n"


def proc(tmp_path: Path, cpuinfo: str = EPYC) -> str:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(cpuinfo)
    return str(tmp_path / "proc")


def test_amd_energy_replaces_the_cpu_estimate(tmp_path: Path) -> None:
    make_amd_energy_hwmon(tmp_path / "sys", sockets_uj=[5_000_000, 6_000_000], cores_uj=[1])
    checks = check_rapl(str(tmp_path / "sys"), proc(tmp_path))
    assert [(c.name, c.status) for c in checks] == [
        ("rapl", MISSING),
        ("amd_energy", OK),
        ("dram estimate", OK),
    ]
    assert checks[1].detail.startswith("2 socket counter(s) readable under ")


def test_without_amd_energy_the_estimate_stays_and_says_where_to_get_the_driver(
    tmp_path: Path,
) -> None:
    checks = check_rapl(str(tmp_path / "sys"), proc(tmp_path))
    assert [(c.name, c.status) for c in checks][1] == ("amd_energy", MISSING)
    assert "github.com/amd/amd_energy" in checks[1].detail
    assert checks[2].name == "cpu estimate" and "EPYC 7763" in checks[2].detail


def test_intel_hosts_are_not_asked_about_amd_energy(tmp_path: Path) -> None:
    intel = "vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\n"
    checks = check_rapl(str(tmp_path / "sys"), proc(tmp_path, intel))
    assert [c.name for c in checks] == ["rapl", "cpu estimate"]
