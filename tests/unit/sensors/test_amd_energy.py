"""AmdEnergySensor against fake hwmon trees laid out as the amd_energy driver lays them out."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import call_as_nobody
from sysfs_tree import make_amd_energy_hwmon

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.amd_energy import MAX_ENERGY_RANGE_J, AmdEnergySensor

SOCKETS_UJ = [120_000_000, 80_000_000]
CORES_UJ = [1_000_000, 2_000_000, 3_000_000, 4_000_000]


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    root = tmp_path / "sys"
    make_amd_energy_hwmon(root, SOCKETS_UJ, CORES_UJ)
    return root


def test_socket_counters_are_package_zones_shaped_as_rapl(sysfs: Path) -> None:
    with AmdEnergySensor(sysfs) as sensor:
        assert sensor.name == "amd_energy"
        assert [(z.zone_id, z.name, z.kind) for z in sensor.zones] == [
            ("amd_energy:socket0", "Esocket0", "package"),
            ("amd_energy:socket1", "Esocket1", "package"),
        ]
        assert sensor.skipped == ()
        assert all(z.max_energy_range_j == MAX_ENERGY_RANGE_J for z in sensor.zones)
        assert sensor.read() == {"amd_energy:socket0": 120.0, "amd_energy:socket1": 80.0}


def test_the_driver_is_found_among_other_hwmon_devices(sysfs: Path) -> None:
    with AmdEnergySensor(sysfs) as sensor:
        assert sensor.hwmon_dir == str(sysfs / "class" / "hwmon" / "hwmon3")


def test_core_counters_are_exposed_per_core(sysfs: Path) -> None:
    with AmdEnergySensor(sysfs) as sensor:
        assert sensor.read_cores() == {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}


def test_read_sees_new_values_on_the_same_open_files(sysfs: Path) -> None:
    device = sysfs / "class" / "hwmon" / "hwmon3"
    with AmdEnergySensor(sysfs) as sensor:
        first = sensor.read()
        (device / "energy5_input").write_text("125500000\n")  # Esocket0: channels 1-4 are cores
        second = sensor.read()
    assert first["amd_energy:socket0"] == 120.0
    assert second["amd_energy:socket0"] == 125.5
    assert second["amd_energy:socket1"] == 80.0


def test_wrap_at_the_drivers_range_counts_through_attribution(sysfs: Path) -> None:
    from carbonwrap.measure.attribution import counter_delta

    device = sysfs / "class" / "hwmon" / "hwmon3"
    top_uj = 2**48
    with AmdEnergySensor(sysfs) as sensor:
        (device / "energy5_input").write_text(f"{top_uj - 3_000_000}\n")  # 3 J before the wrap
        before = sensor.read()["amd_energy:socket0"]
        (device / "energy5_input").write_text("2000000\n")
        after = sensor.read()["amd_energy:socket0"]
    assert counter_delta(before, after, MAX_ENERGY_RANGE_J, 2000.0) == pytest.approx(5.0)


def test_zenergy_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    make_amd_energy_hwmon(root, [5_000_000], [1_000_000], name="zenergy", hwmon="hwmon4")
    with AmdEnergySensor(root) as sensor:
        assert sensor.read() == {"amd_energy:socket0": 5.0}


def test_no_driver_says_where_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "class" / "hwmon").mkdir(parents=True)
    with pytest.raises(SensorUnavailable) as info:
        AmdEnergySensor(tmp_path)
    assert "no amd_energy hwmon device" in info.value.reason
    assert "5.13" in info.value.reason
    assert "github.com/amd/amd_energy" in info.value.reason


def test_no_socket_counter_is_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    make_amd_energy_hwmon(root, [], [1_000_000])
    with pytest.raises(SensorUnavailable, match="no Esocket energy counters"):
        AmdEnergySensor(root)


def test_garbled_counter_is_unavailable_not_zero(sysfs: Path) -> None:
    (sysfs / "class" / "hwmon" / "hwmon3" / "energy6_input").write_text("garbage\n")
    with pytest.raises(SensorUnavailable, match=r"cannot read .*energy6_input"):
        AmdEnergySensor(sysfs)


def test_close_releases_fds_and_is_idempotent(sysfs: Path) -> None:
    open_before = len(os.listdir("/proc/self/fd"))
    sensor = AmdEnergySensor(sysfs)
    sensor.read_cores()
    assert len(os.listdir("/proc/self/fd")) == open_before + 2 + 4
    sensor.close()
    sensor.close()
    assert len(os.listdir("/proc/self/fd")) == open_before
    with pytest.raises(SensorUnavailable, match="after close"):
        sensor.read()


@pytest.fixture
def world_readable_sysfs() -> Iterator[Path]:
    """A fake tree an unprivileged user can traverse (pytest's tmp_path is root-only)."""
    base = Path(tempfile.mkdtemp(prefix="carbonwrap-amd-energy-"))
    try:
        base.chmod(0o755)
        make_amd_energy_hwmon(base / "sys", SOCKETS_UJ, CORES_UJ)
        yield base / "sys"
    finally:
        shutil.rmtree(base)


def construct_unprivileged(sysfs: Path) -> str:
    """Build the sensor as uid nobody when the tests run as root (root reads mode 000 anyway)."""

    def construct() -> str:
        try:
            AmdEnergySensor(sysfs).close()
        except SensorUnavailable as exc:
            return exc.reason
        return "ok"

    return construct() if os.geteuid() != 0 else str(call_as_nobody(construct))


def test_root_only_counter_names_the_cause_and_the_fixes(world_readable_sysfs: Path) -> None:
    device = world_readable_sysfs / "class" / "hwmon" / "hwmon3"
    (device / "energy5_input").chmod(0o000)  # the driver uses 0440 root:root
    reason = construct_unprivileged(world_readable_sysfs)
    assert reason.startswith(f"cannot read {device}/energy5_input: permission denied")
    assert "CVE-2020-12912" in reason
    assert "Run as root" in reason
    assert "zenergy" in reason


def test_readable_counters_work_unprivileged(world_readable_sysfs: Path) -> None:
    assert construct_unprivileged(world_readable_sysfs) == "ok"
