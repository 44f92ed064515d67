"""DrmSensor against fake sysfs and /proc trees of real files, laid out as the kernel has them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from drm_tree import (
    amdgpu_fdinfo,
    hwmon_file,
    i915_fdinfo,
    make_card,
    make_proc,
    set_fdinfo,
    xe_fdinfo,
)

from carbonwrap.measure.attribution import EnergyModel, Reading
from carbonwrap.measure.gpu_attribution import GPU_ENGINE_SHARE, gpu_interval
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.drm_fdinfo import DrmClients
from carbonwrap.sensors.drm_hwmon import (
    METHOD_HWMON_ENERGY,
    METHOD_HWMON_POWER,
    DrmSensor,
    discover_cards,
)
from carbonwrap.sensors.gpu import SHARE_ENGINE, GpuInfo

XE_SLOT = "0000:03:00.0"
I915_SLOT = "0000:07:00.0"
AMD_SLOT = "0000:0a:00.0"
IGPU_SLOT = "0000:00:02.0"


def xe_card(sysfs: Path, slot: str = XE_SLOT, card: str = "card1", **hwmon: str) -> Path:
    files = hwmon or {"energy1_input": "5000000", "energy2_input": "3000000"}
    return make_card(sysfs, card, slot, "0x8086", "0xe20b", "xe", files, tiles=1)


def amd_card(sysfs: Path, slot: str = AMD_SLOT, card: str = "card2") -> Path:
    files = {"power1_average": "152000000", "power1_cap": "300000000"}
    return make_card(sysfs, card, slot, "0x1002", "0x744c", "amdgpu", files)


def sensor(sysfs: Path, tmp_path: Path, **kwargs: object) -> DrmSensor:
    environ = kwargs.pop("environ", {})
    return DrmSensor(sysfs, tmp_path / "proc", environ, **kwargs)  # type: ignore[arg-type]


def test_xe_card_uses_the_card_counter(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs)
    with sensor(sysfs, tmp_path) as drm:
        assert drm.devices == (
            GpuInfo(
                index=0,
                name="Intel Arc B580",
                uuid=XE_SLOT,
                energy_method=METHOD_HWMON_ENERGY,
                vendor="intel",
                pci_bus_id=XE_SLOT,
            ),
        )  # card1-DP-1 and renderD129 are not cards
        sample = drm.read()[0]
    assert sample.energy_j == 5.0  # energy1_input (card), not energy2_input (package)
    assert sample.power_w is None
    assert drm.name == "drm"


def test_xe_without_card_counter_falls_back_to_package_and_says_so(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs, energy2_input="2500000")
    with sensor(sysfs, tmp_path) as drm:
        assert drm.read()[0].energy_j == 2.5
    assert any("energy2_input" in note and "package" in note for note in drm.notes)


def test_i915_device_hwmon_not_the_gt_one(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    files = {"energy1_input": "1234567", "power1_max": "150000000"}
    make_card(sysfs, "card0", I915_SLOT, "0x8086", "0x56a0", "i915", files, gt_hwmon=True)
    with sensor(sysfs, tmp_path) as drm:
        assert drm.devices[0].name == "Intel Arc A770"
        sample = drm.read()[0]
    assert sample.energy_j == pytest.approx(1.234567)  # not i915_gt0's 7 µJ
    assert sample.power_w is None  # power1_max is a limit, never a reading


def test_amd_card_gives_power_from_power1_average(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    amd_card(sysfs)
    with sensor(sysfs, tmp_path) as drm:
        info = drm.devices[0]
        sample = drm.read()[0]
    assert (info.vendor, info.energy_method, info.name) == (
        "amd",
        METHOD_HWMON_POWER,
        "AMD Radeon RX 7900 XT/XTX",
    )
    assert (sample.energy_j, sample.power_w) == (None, 152.0)
    assert any("power only (power1_average)" in note for note in drm.notes)
    assert not any("APU" in note for note in drm.notes)  # a discrete card: not its business


def test_amd_power1_input_when_no_average(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    make_card(sysfs, "card0", AMD_SLOT, "0x1002", "0x74a1", "amdgpu", {"power1_input": "750000000"})
    with sensor(sysfs, tmp_path) as drm:
        assert drm.devices[0].name == "AMD Instinct MI300X"
        assert drm.read()[0].power_w == 750.0


def test_unknown_device_id_named_by_vendor_and_id(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    make_card(sysfs, "card0", XE_SLOT, "0x8086", "0x56c0", "i915", {"energy1_input": "1"})
    with sensor(sysfs, tmp_path) as drm:
        assert drm.devices[0].name == "Intel GPU 0x56c0"


def test_cards_in_pci_order_other_vendors_and_skip_pci_left_out(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    amd_card(sysfs, card="card0")
    xe_card(sysfs, card="card1")
    make_card(sysfs, "card2", "0000:01:00.0", "0x10de", "0x2330", "nvidia", {})  # NVML's
    make_card(sysfs, "card3", "0000:02:00.0", "0x1a03", "0x2000", "ast")  # a BMC's VGA
    assert [c.card for c in discover_cards(sysfs)] == ["card1", "card0"]  # 03:00.0 < 0a:00.0
    with sensor(sysfs, tmp_path) as drm:
        assert [(d.index, d.pci_bus_id) for d in drm.devices] == [(0, XE_SLOT), (1, AMD_SLOT)]
    with sensor(sysfs, tmp_path, skip_pci=frozenset({AMD_SLOT})) as drm:
        assert [d.pci_bus_id for d in drm.devices] == [XE_SLOT]
        assert list(drm.read()) == [0]


def test_select_amd_decides_which_amd_cards(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    amd_card(sysfs, slot="0000:0a:00.0", card="card0")
    amd_card(sysfs, slot="0000:0b:00.0", card="card1")
    xe_card(sysfs, card="card2")
    offered: list[Sequence[GpuInfo]] = []

    def second_only(infos: Sequence[GpuInfo]) -> list[GpuInfo]:
        offered.append(infos)
        return [info for info in infos if info.index == 1]

    with sensor(sysfs, tmp_path, select_amd=second_only) as drm:
        assert [d.pci_bus_id for d in drm.devices] == [XE_SLOT, "0000:0b:00.0"]
    assert [(i.index, i.pci_bus_id) for i in offered[0]] == [(0, AMD_SLOT), (1, "0000:0b:00.0")]


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("1", ["0000:04:00.0"]),
        ("0.1", [XE_SLOT]),  # a sub-device: its whole card
        ("", [XE_SLOT, "0000:04:00.0"]),  # empty: every device, as compute-runtime reads it
        ("7,1", ["0000:04:00.0"]),  # an unknown entry is skipped, not fatal
    ],
)
def test_ze_affinity_mask_picks_intel_cards(tmp_path: Path, mask: str, expected: list[str]) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs, slot=XE_SLOT, card="card0")
    xe_card(sysfs, slot="0000:04:00.0", card="card1")
    environ = {"ZE_AFFINITY_MASK": mask, "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}
    with sensor(sysfs, tmp_path, environ=environ) as drm:
        assert [d.pci_bus_id for d in drm.devices] == expected
        assert [d.index for d in drm.devices] == list(range(len(expected)))
        if mask == "7,1":
            assert any("'7' names no Intel GPU" in note for note in drm.notes)


def test_mask_leaving_no_card_is_unavailable(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs)
    with pytest.raises(SensorUnavailable, match="ZE_AFFINITY_MASK='5' leaves the command no"):
        sensor(sysfs, tmp_path, environ={"ZE_AFFINITY_MASK": "5"})


def test_no_card_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="no Intel or AMD GPU under"):
        sensor(tmp_path / "sys", tmp_path)


def test_integrated_gpu_without_hwmon_left_out_with_the_reason(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    make_card(sysfs, "card0", IGPU_SLOT, "0x8086", "0xa780", "i915")
    with pytest.raises(SensorUnavailable) as caught:
        sensor(sysfs, tmp_path)
    assert "no Intel or AMD GPU with a readable power sensor" in caught.value.reason
    assert "RAPL's package" in caught.value.reason


def test_counter_going_back_is_passed_on_and_noted_once(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    pci = xe_card(sysfs)
    counter = hwmon_file(pci, "energy1_input")
    with sensor(sysfs, tmp_path) as drm:
        drm.read()
        counter.write_text("1000000\n")  # 5 J -> 1 J: a driver reload
        assert drm.read()[0].energy_j == 1.0  # not unwrapped: attribution rejects it
        counter.write_text("500000\n")
        drm.read()
    went_back = [note for note in drm.notes if "went back" in note]
    assert len(went_back) == 1
    assert "5.000 J to 1.000 J" in went_back[0]


def test_without_clients_device_level(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs)
    with sensor(sysfs, tmp_path) as drm:
        sample = drm.read()[0]
    assert sample.processes_known is False
    assert any("no per-process data" in note for note in drm.notes)


def test_scan_failure_is_device_level_for_that_reading(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs)
    clients = DrmClients(tmp_path / "no-proc")
    with sensor(sysfs, tmp_path, clients=clients) as drm:
        assert drm.read()[0].processes_known is False
    assert any("scan of" in note and "failed" in note for note in drm.notes)


def test_processes_and_engine_busy_per_card(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    xe_card(sysfs, card="card0")
    amd_card(sysfs, card="card1")
    proc = make_proc(
        tmp_path / "proc",
        {
            50: {4: ("/dev/dri/renderD128", xe_fdinfo(3, XE_SLOT, 100, 9000))},
            60: {4: ("/dev/dri/renderD129", amdgpu_fdinfo(9, AMD_SLOT, 1000, vram_kib=1))},
        },
    )
    with sensor(sysfs, tmp_path, clients=DrmClients(proc)) as drm:
        drm.read()
        set_fdinfo(proc, 50, 4, xe_fdinfo(3, XE_SLOT, 400, 9500))
        set_fdinfo(proc, 60, 4, amdgpu_fdinfo(9, AMD_SLOT, 1700, vram_kib=1))
        xe, amd = drm.read().values()
    assert (dict(xe.sm_util), xe.busy_method, xe.processes_known) == (
        {50: 300.0},
        SHARE_ENGINE,
        True,
    )
    assert dict(xe.processes) == {50: (192 + 23992) * 1024}
    assert dict(amd.sm_util) == {60: 700.0}


def test_engine_share_through_gpu_interval(tmp_path: Path) -> None:
    """Two DrmSensor readings, the tree's PIDs and a foreign PID: joules by engine share."""
    sysfs = tmp_path / "sys"
    pci = make_card(sysfs, "card0", I915_SLOT, "0x8086", "0x56a0", "i915", {"energy1_input": "0"})
    render = "/dev/dri/renderD128"
    proc = make_proc(
        tmp_path / "proc",
        {
            10: {5: (render, i915_fdinfo(1, I915_SLOT, render_ns=0))},  # the tree's
            11: {5: (render, i915_fdinfo(2, I915_SLOT, render_ns=0))},  # the tree's
            99: {5: (render, i915_fdinfo(3, I915_SLOT, render_ns=0))},  # someone else's
        },
    )
    with sensor(sysfs, tmp_path, clients=DrmClients(proc)) as drm:
        first = drm.read()
        hwmon_file(pci, "energy1_input").write_text("200000000\n")  # 200 J in 10 s
        set_fdinfo(proc, 10, 5, i915_fdinfo(1, I915_SLOT, render_ns=2_000_000_000))
        set_fdinfo(proc, 11, 5, i915_fdinfo(2, I915_SLOT, render_ns=1_000_000_000, copy_ns=1))
        set_fdinfo(proc, 99, 5, i915_fdinfo(3, I915_SLOT, render_ns=999_999_999))
        second = drm.read()
    tree = frozenset({10, 11, 12})
    prev = Reading(0.0, 0.0, 0.0, tree_pids=tree, gpu=first)
    cur = Reading(10.0, 0.0, 0.0, tree_pids=tree, gpu=second)
    share = gpu_interval(prev, cur, EnergyModel("estimate", "none", gpu=True))[0]
    assert share.method == GPU_ENGINE_SHARE
    assert share.device_energy_j == 200.0
    assert share.energy_j == pytest.approx(200.0 * 3 / 4)  # 3 s of the 4 s busy are the tree's


def test_select_amd_is_offered_the_rocm_uuid_where_the_card_has_one(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    (amd_card(sysfs, card="card0") / "unique_id").write_text("7C0D3B2A1F00E401\n")
    amd_card(sysfs, slot="0000:0b:00.0", card="card1")  # no unique_id (older parts)
    offered: list[str] = []

    def record(infos: Sequence[GpuInfo]) -> list[GpuInfo]:
        offered.extend(info.uuid for info in infos)
        return list(infos)

    with sensor(sysfs, tmp_path, select_amd=record) as drm:
        assert [d.uuid for d in drm.devices] == [AMD_SLOT, "0000:0b:00.0"]  # PCI ids
    assert offered == ["GPU-7c0d3b2a1f00e401", "0000:0b:00.0"]


def test_rocm_mask_leaving_no_amd_card_says_so(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    amd_card(sysfs)
    with pytest.raises(SensorUnavailable, match="HIP_VISIBLE_DEVICES leave the command no AMD"):
        sensor(sysfs, tmp_path, select_amd=lambda infos: [])
