"""JetsonSensor against fake sysfs trees: the JetPack 5/6 hwmon and JetPack 4 iio layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from drm_tree import make_jetson_hwmon, make_jetson_iio, write_device_tree

from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.gpu_markers import jetson_present
from carbonwrap.sensors.jetson import (
    METHOD_POWER_INTEGRATED,
    JetsonSensor,
    find_rails,
)

AGX_ORIN = ("nvidia,p3737-0000+p3701-0000", "nvidia,p3701-0000", "nvidia,tegra234")


def agx_orin(sysfs: Path) -> Path:
    write_device_tree(sysfs, "NVIDIA Jetson AGX Orin Developer Kit", AGX_ORIN)
    hwmon = make_jetson_hwmon(
        sysfs,
        "1-0040",
        {
            1: ("VDD_GPU_SOC", 5008, 1200),
            2: ("VDD_CPU_CV", 5016, 400),
            3: ("VIN_SYS_5V0", 5000, 800),
        },
    )
    make_jetson_hwmon(sysfs, "1-0041", {2: ("VDDQ_VDD2_1V8AO", 4992, 100)})
    return hwmon


def test_agx_orin_hwmon_gpu_rail_is_volts_times_amps(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    agx_orin(sysfs)
    sensor = JetsonSensor(sysfs, tmp_path / "proc", {})
    info = sensor.devices[0]
    assert (info.index, info.name, info.vendor, info.energy_method) == (
        0,
        "NVIDIA Jetson AGX Orin Developer Kit",
        "nvidia",
        METHOD_POWER_INTEGRATED,
    )
    sample = sensor.read()[0]
    assert sample.power_w == pytest.approx(5.008 * 1.2)
    assert (sample.energy_j, sample.processes_known, dict(sample.processes)) == (None, False, {})
    assert any("device-level" in note for note in sensor.notes)
    assert any("VDD_GPU_SOC also feeds the SoC" in n and "upper bound" in n for n in sensor.notes)
    assert sensor.cpu_rails == ("VDD_CPU_CV",)
    assert sensor.read_rails_w()["VDD_CPU_CV"] == pytest.approx(5.016 * 0.4)


def test_power_follows_the_files(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    hwmon = agx_orin(sysfs)
    sensor = JetsonSensor(sysfs, tmp_path / "proc", {})
    (hwmon / "curr1_input").write_text("3000\n")
    assert sensor.read()[0].power_w == pytest.approx(5.008 * 3.0)


def test_disabled_and_unlabelled_channels_are_not_rails(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    hwmon = agx_orin(sysfs)
    (hwmon / "in3_enable").write_text("0\n")
    assert [rail.label for rail in find_rails(sysfs)] == [
        "VDD_GPU_SOC",
        "VDD_CPU_CV",
        "VDDQ_VDD2_1V8AO",
    ]


def test_nano_jetpack4_iio_rail_in_milliwatts(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    write_device_tree(
        sysfs, "NVIDIA Jetson Nano Developer Kit", ("nvidia,p3450-0000", "nvidia,tegra210")
    )
    make_jetson_iio(
        sysfs, "6-0040", {0: ("POM_5V_IN", 3561), 1: ("POM_5V_GPU", 1240), 2: ("POM_5V_CPU", 620)}
    )
    sensor = JetsonSensor(sysfs, tmp_path / "proc", {})
    assert sensor.read()[0].power_w == pytest.approx(1.24)
    assert not any("upper bound" in note for note in sensor.notes)  # a GPU-only rail
    assert sensor.cpu_rails == ("POM_5V_CPU",)


def test_orin_nx_shared_cpu_gpu_rail_is_said(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    write_device_tree(
        sysfs, "NVIDIA Orin NX Developer Kit", ("nvidia,p3767-0000", "nvidia,tegra234")
    )
    make_jetson_hwmon(
        sysfs,
        "1-0040",
        {1: ("VDD_IN", 5000, 2000), 2: ("VDD_CPU_GPU_CV", 5000, 900), 3: ("VDD_SOC", 5000, 300)},
    )
    sensor = JetsonSensor(sysfs, tmp_path / "proc", {})
    assert sensor.read()[0].power_w == pytest.approx(4.5)
    assert any("CPU cores" in note and "upper bound" in note for note in sensor.notes)


def test_device_tree_from_proc_when_sysfs_has_none(tmp_path: Path) -> None:
    sysfs, proc = tmp_path / "sys", tmp_path / "proc"
    make_jetson_hwmon(sysfs, "1-0040", {1: ("VDD_GPU_SOC", 5000, 1000)})
    tree = proc / "device-tree"
    tree.mkdir(parents=True)
    (tree / "compatible").write_bytes(b"nvidia,p3701-0000\0nvidia,tegra234\0")
    (tree / "model").write_bytes(b"NVIDIA Jetson AGX Orin\0")
    assert JetsonSensor(sysfs, proc, {}).devices[0].name == "NVIDIA Jetson AGX Orin"


def test_unreadable_rail_gives_no_power_and_a_note(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    hwmon = agx_orin(sysfs)
    sensor = JetsonSensor(sysfs, tmp_path / "proc", {})
    (hwmon / "curr1_input").unlink()
    assert sensor.read()[0].power_w is None
    sensor.read()
    assert len([n for n in sensor.notes if "unreadable" in n]) == 1


def test_not_a_jetson(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    write_device_tree(sysfs, "Raspberry Pi 4 Model B", ("raspberrypi,4-model-b", "brcm,bcm2711"))
    with pytest.raises(SensorUnavailable, match="not an NVIDIA Jetson"):
        JetsonSensor(sysfs, tmp_path / "proc", {})
    with pytest.raises(SensorUnavailable, match="not an NVIDIA Jetson"):
        JetsonSensor(tmp_path / "empty", tmp_path / "proc", {})  # x86: no device tree


def test_jetson_without_a_gpu_rail(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    write_device_tree(sysfs, "NVIDIA Jetson AGX Orin", AGX_ORIN)
    with pytest.raises(
        SensorUnavailable, match=r"no INA3221 rail that feeds the GPU \(rails: none"
    ):
        JetsonSensor(sysfs, tmp_path / "proc", {})


def test_empty_cuda_visible_devices(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    agx_orin(sysfs)
    with pytest.raises(SensorUnavailable, match="CUDA_VISIBLE_DEVICES is empty"):
        JetsonSensor(sysfs, tmp_path / "proc", {"CUDA_VISIBLE_DEVICES": ""})


def test_jetson_present_is_two_stat_calls(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    assert not jetson_present(sysfs)
    make_jetson_iio(sysfs, "6-0040", {1: ("POM_5V_GPU", 1000)})
    assert jetson_present(sysfs)
    hwmon_only = tmp_path / "sys2"
    make_jetson_hwmon(hwmon_only, "1-0040", {1: ("VDD_GPU_SOC", 5000, 1000)})
    assert jetson_present(hwmon_only)


def test_defaults_read_sysfs_only(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    agx_orin(sysfs)
    assert JetsonSensor(sysfs).read()[0].power_w == pytest.approx(5.008 * 1.2)
