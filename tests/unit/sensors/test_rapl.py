"""RaplSensor against fake powercap trees of real files laid out as the kernel lays them out."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import call_as_nobody
from sysfs_tree import (
    AMD_MAX_RANGE_UJ,
    MAX_RANGE_UJ,
    link_into_class,
    make_amd_sysfs,
    make_sysfs,
    write_zone,
    zone_file,
)

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.rapl import RaplSensor, dram_missing_note, sysfs_root_from_env


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys")


def test_discovery_picks_packages_and_their_dram_only(sysfs: Path) -> None:
    with RaplSensor(sysfs) as sensor:
        found = [(z.zone_id, z.name, z.kind) for z in sensor.zones]
        assert found == [
            ("intel-rapl:0", "package-0", "package"),
            ("intel-rapl:0:2", "dram", "dram"),
            ("intel-rapl:1", "package-1", "package"),
            ("intel-rapl:1:0", "dram", "dram"),
        ]
        assert sensor.skipped == ()
        assert sensor.name == "rapl"


def test_max_energy_range_is_in_joules(sysfs: Path) -> None:
    with RaplSensor(sysfs) as sensor:
        ranges = {z.zone_id: z.max_energy_range_j for z in sensor.zones}
    assert ranges["intel-rapl:0"] == pytest.approx(262_143.328850)
    assert ranges["intel-rapl:0:2"] == pytest.approx(65_712.999613)


def test_read_converts_microjoules_to_joules(sysfs: Path) -> None:
    with RaplSensor(sysfs) as sensor:
        assert sensor.read() == {
            "intel-rapl:0": 1.0,
            "intel-rapl:0:2": 0.25,
            "intel-rapl:1": 2.5,
            "intel-rapl:1:0": 0.75,
        }


def test_read_sees_new_values_on_the_same_open_files(sysfs: Path) -> None:
    with RaplSensor(sysfs) as sensor:
        first = sensor.read()
        zone_file(sysfs, "intel-rapl:0", "energy_uj").write_text("3500000\n")
        zone_file(sysfs, "intel-rapl:0:2", "energy_uj").write_text("12\n")
        second = sensor.read()
    assert first["intel-rapl:0"] == 1.0
    assert second["intel-rapl:0"] == 3.5
    assert second["intel-rapl:0:2"] == 0.000012
    assert second["intel-rapl:1"] == first["intel-rapl:1"]


def test_read_returns_raw_values_across_a_wrap(sysfs: Path) -> None:
    """The sensor never unwraps: a counter that wrapped simply reads lower."""
    with RaplSensor(sysfs) as sensor:
        zone_file(sysfs, "intel-rapl:0", "energy_uj").write_text(f"{MAX_RANGE_UJ - 1}\n")
        before = sensor.read()["intel-rapl:0"]
        zone_file(sysfs, "intel-rapl:0", "energy_uj").write_text("5\n")
        after = sensor.read()["intel-rapl:0"]
    assert before == pytest.approx(262_143.328849)
    assert after == 0.000005


def test_close_releases_fds_and_is_idempotent(sysfs: Path) -> None:
    open_before = len(os.listdir("/proc/self/fd"))
    sensor = RaplSensor(sysfs)
    assert len(os.listdir("/proc/self/fd")) == open_before + 4
    sensor.close()
    sensor.close()
    assert len(os.listdir("/proc/self/fd")) == open_before
    with pytest.raises(SensorUnavailable, match="after close"):
        sensor.read()


def test_missing_powercap_directory(tmp_path: Path) -> None:
    (tmp_path / "class").mkdir()
    with pytest.raises(SensorUnavailable) as info:
        RaplSensor(tmp_path)
    assert info.value.reason.startswith(f"no RAPL package zones under {tmp_path}/class/powercap")
    assert "a VM" in info.value.reason


def test_only_psys_and_mmio_zones_are_not_enough(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    devices = sysfs / "devices" / "virtual" / "powercap"
    link_into_class(sysfs, write_zone(devices / "intel-rapl" / "intel-rapl:0", "psys", 1, 10))
    mmio = devices / "intel-rapl-mmio" / "intel-rapl-mmio:0"
    link_into_class(sysfs, write_zone(mmio, "package-0", 1, 10))
    with pytest.raises(SensorUnavailable, match="no RAPL package zones"):
        RaplSensor(sysfs)


@pytest.mark.parametrize("bad_range", [None, "", "garbled", "0", "-5"])
def test_dram_zone_with_bad_max_range_is_skipped(sysfs: Path, bad_range: str | None) -> None:
    range_file = zone_file(sysfs, "intel-rapl:0:2", "max_energy_range_uj")
    if bad_range is None:
        range_file.unlink()
    else:
        range_file.write_text(bad_range)
    with RaplSensor(sysfs) as sensor:
        assert [z.zone_id for z in sensor.zones] == [
            "intel-rapl:0",
            "intel-rapl:1",
            "intel-rapl:1:0",
        ]
        assert len(sensor.skipped) == 1
        assert sensor.skipped[0].startswith("intel-rapl:0:2: max_energy_range_uj missing")
        assert "intel-rapl:0:2" not in sensor.read()


def test_no_usable_package_zone_is_unavailable_and_says_why(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    zone = sysfs / "devices" / "virtual" / "powercap" / "intel-rapl" / "intel-rapl:0"
    link_into_class(sysfs, write_zone(zone, "package-0", 1, "not a number"))
    with pytest.raises(SensorUnavailable) as info:
        RaplSensor(sysfs)
    assert "no RAPL package zones" in info.value.reason
    assert "intel-rapl:0: max_energy_range_uj missing or invalid ('not a number')" in (
        info.value.reason
    )


@pytest.fixture
def world_readable_sysfs() -> Iterator[Path]:
    """A fake tree that an unprivileged user can traverse (pytest's tmp_path is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="carbonwrap-rapl-"))
    try:
        base.chmod(0o755)
        yield make_sysfs(base / "sys")
    finally:
        shutil.rmtree(base)


def construct_unprivileged(sysfs: Path) -> str:
    """Build a RaplSensor without root's file-permission override; return its reason or "ok".

    Root reads a mode-000 file regardless, so when the tests run as root the constructor runs
    in a forked child that first drops to uid/gid nobody. The kernel then refuses the open for
    real: no mocked open, no injected opener.
    """

    def construct() -> str:
        try:
            RaplSensor(sysfs).close()
        except SensorUnavailable as exc:
            return exc.reason
        return "ok"

    return construct() if os.geteuid() != 0 else str(call_as_nobody(construct))


def test_root_only_counter_names_the_cause_and_the_fix(world_readable_sysfs: Path) -> None:
    sysfs = world_readable_sysfs
    # The kernel uses 0400 root; 000 also locks out a non-root test user who owns the file.
    zone_file(sysfs, "intel-rapl:1", "energy_uj").chmod(0o000)
    reason = construct_unprivileged(sysfs)
    powercap = sysfs / "class" / "powercap"
    assert reason.startswith(f"cannot read {powercap}/intel-rapl:1/energy_uj: permission denied")
    assert "CVE-2020-8694" in reason
    assert "Run as root" in reason
    assert f"sudo chmod o+r {powercap}/intel-rapl:*/energy_uj" in reason
    assert 'SUBSYSTEM=="powercap"' in reason
    assert 'RUN+="/bin/chmod o+r /sys%p/energy_uj"' in reason


def test_readable_counter_works_unprivileged(world_readable_sysfs: Path) -> None:
    """Control for the test above: the same tree and child, with the counters left readable."""
    assert construct_unprivileged(world_readable_sysfs) == "ok"


def test_counter_that_is_a_directory_is_unavailable_not_zero(sysfs: Path) -> None:
    counter = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    counter.unlink()
    counter.mkdir()
    with pytest.raises(SensorUnavailable) as info:
        RaplSensor(sysfs)
    assert info.value.reason.startswith(f"cannot read {counter}")
    assert "Is a directory" in info.value.reason


def test_dangling_counter_symlink_is_unavailable(sysfs: Path) -> None:
    counter = zone_file(sysfs, "intel-rapl:1:0", "energy_uj")
    counter.unlink()
    counter.symlink_to("nowhere")
    with pytest.raises(SensorUnavailable, match=r"cannot open .*energy_uj: No such file"):
        RaplSensor(sysfs)


def test_garbled_counter_is_unavailable(sysfs: Path) -> None:
    zone_file(sysfs, "intel-rapl:0", "energy_uj").write_text("garbage\n")
    with pytest.raises(SensorUnavailable, match=r"cannot read .*intel-rapl:0/energy_uj"):
        RaplSensor(sysfs)


def test_counter_garbled_after_start_raises_on_read(sysfs: Path) -> None:
    with RaplSensor(sysfs) as sensor:
        zone_file(sysfs, "intel-rapl:1", "energy_uj").write_text("\n")
        with pytest.raises(SensorUnavailable, match="RAPL counter read failed"):
            sensor.read()


def test_sysfs_root_from_env() -> None:
    assert sysfs_root_from_env({}) == "/sys"
    assert sysfs_root_from_env({"CARBONWRAP_SYSFS_ROOT": ""}) == "/sys"
    assert sysfs_root_from_env({"CARBONWRAP_SYSFS_ROOT": "/tmp/fake"}) == "/tmp/fake"


def test_env_root_selects_the_fake_tree(sysfs: Path) -> None:
    root = sysfs_root_from_env({"CARBONWRAP_SYSFS_ROOT": str(sysfs)})
    with RaplSensor(root) as sensor:
        assert sensor.read()["intel-rapl:1"] == 2.5


def test_many_packages_sort_numerically(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    rapl = sysfs / "devices" / "virtual" / "powercap" / "intel-rapl"
    for n in (10, 2, 0):
        link_into_class(sysfs, write_zone(rapl / f"intel-rapl:{n}", f"package-{n}", n, 100))
    with RaplSensor(sysfs) as sensor:
        assert [z.zone_id for z in sensor.zones] == [
            "intel-rapl:0",
            "intel-rapl:2",
            "intel-rapl:10",
        ]


def test_counter_wrap_through_the_sensor_and_attribution(sysfs: Path) -> None:
    """The sensor's raw counters and its max range feed the pure arithmetic across a wrap."""
    from carbonwrap.measure.attribution import EnergyModel, Reading, interval_energy

    with RaplSensor(sysfs) as sensor:
        model = EnergyModel(
            cpu_method="rapl",
            dram_method="rapl",
            zone_kind={z.zone_id: z.kind for z in sensor.zones},
            zone_max_j={z.zone_id: z.max_energy_range_j for z in sensor.zones},
        )
        package = zone_file(sysfs, "intel-rapl:0", "energy_uj")
        package.write_text(f"{MAX_RANGE_UJ - 2_000_000}\n")  # 2 J before the wrap
        before = Reading(0.0, 0.0, 0.0, sensor.read())
        package.write_text("3000000\n")  # wrapped, then 3 J more
        after = Reading(1.0, 1.0, 2.0, sensor.read())
    result = interval_energy(before, after, model)
    assert result["cpu"].device_energy_j == pytest.approx(5.0, abs=1e-6)
    assert result["cpu"].energy_j == pytest.approx(2.5, abs=1e-6)  # tree: 1 of 2 busy CPU-s


def test_amd_epyc_tree_gives_one_package_zone_per_socket_and_no_dram(tmp_path: Path) -> None:
    """AMD Zen: package-N with a "core" subzone, nothing else; the core zone is part of the
    package counter (and one core only), so it is never read."""
    sysfs = make_amd_sysfs(tmp_path / "sys", sockets=2)
    with RaplSensor(sysfs) as sensor:
        assert [(z.zone_id, z.name, z.kind) for z in sensor.zones] == [
            ("intel-rapl:0", "package-0", "package"),
            ("intel-rapl:1", "package-1", "package"),
        ]
        assert all(z.max_energy_range_j == pytest.approx(65_532.610987) for z in sensor.zones)
        assert sensor.read() == {"intel-rapl:0": 1.0, "intel-rapl:1": 2.0}


def test_amd_counter_wrap_at_its_32_bit_range(tmp_path: Path) -> None:
    from carbonwrap.measure.attribution import counter_delta

    sysfs = make_amd_sysfs(tmp_path / "sys", sockets=1)
    with RaplSensor(sysfs) as sensor:
        counter = zone_file(sysfs, "intel-rapl:0", "energy_uj")
        counter.write_text(f"{AMD_MAX_RANGE_UJ - 1_000_000}\n")  # 1 J before the wrap
        before = sensor.read()["intel-rapl:0"]
        counter.write_text("4000000\n")  # wrapped, then 4 J more
        after = sensor.read()["intel-rapl:0"]
        zone = sensor.zones[0]
    assert counter_delta(before, after, zone.max_energy_range_j, 2000.0) == pytest.approx(5.0)


@pytest.mark.parametrize("vendor", ["AuthenticAMD", "HygonGenuine"])
def test_dram_note_says_amd_has_no_dram_domain(vendor: str) -> None:
    assert dram_missing_note(vendor) == (
        "AMD Zen CPUs have no DRAM RAPL domain: DRAM energy is estimated from resident memory"
    )


@pytest.mark.parametrize("vendor", ["GenuineIntel", ""])
def test_dram_note_elsewhere_says_the_zone_is_missing(vendor: str) -> None:
    assert dram_missing_note(vendor) == (
        "RAPL has no dram zone here; DRAM estimated from resident memory"
    )
