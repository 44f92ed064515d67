"""measure/gpus.py: which GPU backends apply, all of them read as one under run-wide indices."""

from __future__ import annotations

from pathlib import Path

import pytest
from drm_tree import i915_fdinfo, make_card, make_proc
from fake_amdsmi import FakeAmdGpu, FakeAmdSmi
from fake_nvml import FakeGpu, FakeNvml

from carbonwrap.measure.gpus import GpuHost, GpuSet, open_gpus, unavailable_reason
from carbonwrap.measure.meters import Meters
from carbonwrap.sensors.gpu import SHARE_ENGINE, GpuInfo, GpuSample

XE_SLOT = "0000:03:00.0"
AMD_SLOT = "0000:0c:00.0"
OURS, FOREIGN = 4242, 777


def xe_card(sysfs: Path) -> None:
    make_card(sysfs, "card1", XE_SLOT, "0x8086", "0xe20b", "xe", {"energy1_input": "5000000"})


def host(tmp_path: Path, **kwargs: object) -> GpuHost:
    environ = {
        "CARBONWRAP_SYSFS_ROOT": str(tmp_path / "sys"),
        "CARBONWRAP_PROC_ROOT": str(tmp_path / "proc"),
    }
    return GpuHost(environ, {}, root=tmp_path, **kwargs)  # type: ignore[arg-type]


def test_a_workstation_with_an_nvidia_gpu_and_an_intel_card(tmp_path: Path) -> None:
    xe_card(tmp_path / "sys")
    make_proc(tmp_path / "proc", {OURS: {5: ("/dev/dri/renderD129", i915_fdinfo(1, XE_SLOT, 0))}})
    nvml = FakeNvml([FakeGpu("NVIDIA RTX 4090", "GPU-aaaa", energy_mj=2_000_000)])
    gpus, failed, absent = open_gpus(host(tmp_path, nvml=nvml))
    assert gpus is not None and failed == []
    assert [(d.index, d.vendor, d.energy_method) for d in gpus.devices] == [
        (0, "nvidia", "nvml-counter"),
        (1, "intel", "hwmon-energy"),
    ]
    assert gpus.name == "nvml+drm"
    assert "drm GPUs are numbered from 1 in carbonwrap's output (their own indices 0)" in gpus.notes
    # the AMD and Jetson backends say why they do not apply
    assert [reason.split(":")[0] for reason in absent] == ["AMD (amdsmi)", "Jetson"]
    samples = gpus.read()
    assert samples[0].energy_j == 2000.0
    assert samples[1].energy_j == 5.0 and samples[1].busy_method == SHARE_ENGINE
    gpus.close()
    assert nvml.calls["nvmlShutdown"] == 1


def test_an_amd_card_is_measured_by_amdsmi_once_not_again_from_sysfs(tmp_path: Path) -> None:
    make_card(
        tmp_path / "sys", "card0", AMD_SLOT, "0x1002", "0x74a1", "amdgpu", {"power1_input": "9"}
    )
    xe_card(tmp_path / "sys")
    make_proc(tmp_path / "proc", {})
    amdsmi = FakeAmdSmi([FakeAmdGpu("AMD Instinct MI300X", unique_id=1, bdf=AMD_SLOT)])
    gpus, failed, _ = open_gpus(host(tmp_path, amdsmi=amdsmi))
    assert gpus is not None and failed == []
    assert [(d.index, d.vendor, d.pci_bus_id, d.energy_method) for d in gpus.devices] == [
        (0, "amd", AMD_SLOT, "amdsmi-counter"),
        (1, "intel", XE_SLOT, "hwmon-energy"),  # the AMD card is skipped by the sysfs sensor
    ]
    gpus.close()


def test_a_cpu_only_host_has_no_gpu_and_says_so_briefly(tmp_path: Path) -> None:
    gpus, failed, absent = open_gpus(host(tmp_path))
    assert gpus is None and failed == []
    assert [reason.split(":")[0] for reason in absent] == [
        "NVIDIA",
        "AMD (amdsmi)",
        "Jetson",
        "Intel/AMD (sysfs)",
    ]
    assert unavailable_reason(failed, absent).startswith("no GPU found")


def test_a_backend_whose_hardware_is_there_but_fails_says_why(tmp_path: Path) -> None:
    nvml = FakeNvml([FakeGpu("A100", "GPU-a")])
    gpus, failed, absent = open_gpus(
        GpuHost({}, {"CUDA_VISIBLE_DEVICES": ""}, nvml=nvml, root=tmp_path)
    )
    assert gpus is None
    assert failed == ["NVIDIA: CUDA_VISIBLE_DEVICES is empty: the command sees no GPU"]
    assert unavailable_reason(failed, absent) == failed[0]


class Backend:
    """A GpuSensor of plain values, for GpuSet's own rules."""

    def __init__(self, name: str, indices: list[int], fail: bool = False) -> None:
        self.name = name
        self.devices = tuple(GpuInfo(i, f"{name} {i}", f"u{i}", "x") for i in indices)
        self.notes: list[str] = [f"{name} opened"]
        self.pid_namespace_mismatch = False
        self.fail = fail
        self.closed = 0

    def read(self) -> dict[int, GpuSample]:
        self.notes.append(f"{self.name} read")
        if self.fail:
            raise OSError(f"{self.name} broke")
        return {d.index: GpuSample(float(d.index), None, {}, {}) for d in self.devices}

    def close(self) -> None:
        self.closed += 1


def test_one_backend_failing_costs_only_its_own_devices() -> None:
    first, second = Backend("a", [0, 1]), Backend("b", [0], fail=True)
    gpus = GpuSet([first, second])
    assert [d.index for d in gpus.devices] == [0, 1, 2]
    assert gpus.read() == {0: GpuSample(0.0, None, {}, {}), 1: GpuSample(1.0, None, {}, {})}
    assert gpus.notes == [
        "b GPUs are numbered from 2 in carbonwrap's output (their own indices 0)",
        "a opened",
        "b opened",
        "a read",
        "b read",
    ]
    second.fail = False
    assert set(gpus.read()) == {0, 1, 2}
    first.fail = True
    with pytest.raises(OSError, match="a broke"):
        GpuSet([first]).read()  # nothing read at all: the caller notes the failure
    gpus.close()
    assert (first.closed, second.closed) == (1, 1)


def test_a_single_backend_keeps_its_own_indices() -> None:
    gpus = GpuSet([Backend("nvml", [2, 3])])  # CUDA_VISIBLE_DEVICES=2,3: GPU 2 stays GPU 2
    assert [d.index for d in gpus.devices] == [2, 3]
    assert set(gpus.read()) == {2, 3}


def test_meters_labels_each_device_with_its_vendor_and_method(tmp_path: Path) -> None:
    xe_card(tmp_path / "sys")
    make_proc(tmp_path / "proc", {})
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 500 kB\n")
    environ = {
        "CARBONWRAP_SYSFS_ROOT": str(tmp_path / "sys"),
        "CARBONWRAP_PROC_ROOT": str(tmp_path / "proc"),
    }
    meters = Meters(environ, {})
    try:
        gpu = meters.components["gpu"]
        assert gpu["method"] == "hwmon-energy"
        assert gpu["devices"] == [
            {
                "index": 0,
                "name": "Intel Arc B580",
                "uuid": XE_SLOT,
                "vendor": "intel",
                "energy_method": "hwmon-energy",
                "mig": False,
            }
        ]
        assert "engine busy time" in gpu["basis"] and "SM-utilisation" not in gpu["basis"]
    finally:
        meters.close()
