"""NvmlSensor against FakeNvml (pynvml's names, shapes and error classes) and fake /proc trees."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pynvml
import pytest
from fake_nvml import Accounted, FakeGpu, FakeNvml

from carbonwrap.measure.attribution import EnergyModel, Reading
from carbonwrap.measure.gpu_attribution import GpuShare, gpu_interval
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.gpu import GpuInfo, GpuSample
from carbonwrap.sensors.nvml import NvmlSensor
from carbonwrap.sensors.nvml_probe import GpuProbe, load_nvml

A100 = "NVIDIA A100-SXM4-80GB"
UUID0 = "GPU-8d5f0c3e-7a21-4b3c-9d1e-0f2a3b4c5d6e"
UUID1 = "GPU-8d5fa911-0b2c-4d3e-8f4a-5b6c7d8e9f00"  # shares the prefix GPU-8d5f with UUID0
UUID2 = "GPU-2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901"
MIG0 = "MIG-a1b2c3d4-e5f6-5a7b-8c9d-0e1f2a3b4c5d"
OURS, FOREIGN = 4242, 777


def three_gpus() -> list[FakeGpu]:
    return [
        FakeGpu(A100, UUID0, energy_mj=1_000_000),
        FakeGpu(A100, UUID1, energy_mj=2_500_000),
        FakeGpu(A100, UUID2, energy_mj=4_000_000),
    ]


def write_status(proc_root: Path, nspid: str | None) -> Path:
    """A fake /proc/self/status with the lines around NSpid as Linux writes them."""
    status = proc_root / "self" / "status"
    status.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Name:\tpython3", "Tgid:\t4242", "Ngid:\t0", "Pid:\t4242", "PPid:\t1"]
    if nspid is not None:
        lines += [f"NStgid:\t{nspid}", f"NSpid:\t{nspid}", f"NSpgid:\t{nspid}"]
    lines += ["VmRSS:\t   20480 kB"]
    status.write_text("\n".join(lines) + "\n")
    return proc_root


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    return write_status(tmp_path / "proc", "4242")


def make(fake: FakeNvml, proc: Path, environ: Mapping[str, str] | None = None) -> NvmlSensor:
    return NvmlSensor(fake, environ or {}, proc_root=proc)


def unavailable(fake: FakeNvml, proc: Path, environ: Mapping[str, str] | None = None) -> str:
    with pytest.raises(SensorUnavailable) as info:
        make(fake, proc, environ)
    return info.value.reason


# -- loading and init --


def fake_driver_root(tmp_path: Path) -> Path:
    """A root with /dev/nvidiactl, as a machine with the NVIDIA driver loaded has."""
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "nvidiactl").write_text("")
    return tmp_path


def test_load_nvml_imports_pynvml_where_a_driver_shows(tmp_path: Path) -> None:
    assert load_nvml(fake_driver_root(tmp_path)) is pynvml


def test_no_driver_markers_means_unavailable_without_importing_pynvml(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match=r"^no NVIDIA driver \(none of"):
        load_nvml(tmp_path)


def test_real_nvml_without_a_gpu_is_unavailable_with_a_reason(tmp_path: Path) -> None:
    """On a machine without the driver (CI, this sandbox) the real library says why, clearly."""
    try:
        sensor = NvmlSensor(load_nvml(fake_driver_root(tmp_path)), {})
    except SensorUnavailable as exc:
        print(f"\nreal NVML: unavailable: {exc.reason}")
        assert exc.reason.startswith(("no NVIDIA driver", "NVIDIA driver not loaded", "no NVIDIA"))
    else:  # a GPU machine: the real library must enumerate something
        with sensor:
            assert sensor.devices
            assert set(sensor.read()) <= {d.index for d in sensor.devices}


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (pynvml.NVMLError_LibraryNotFound(), "no NVIDIA driver: libnvidia-ml.so not found"),
        (pynvml.NVMLError_DriverNotLoaded(), "NVIDIA driver not loaded"),
        (pynvml.NVMLError_NoPermission(), "no permission to use the NVIDIA devices"),
        (pynvml.NVMLError_LibRmVersionMismatch(), "NVIDIA driver and libnvidia-ml.so versions"),
        (pynvml.NVMLError_Unknown(), "NVML initialisation failed: Unknown Error"),
    ],
)
def test_init_failure_is_unavailable_with_the_cause(
    proc: Path, error: pynvml.NVMLError, reason: str
) -> None:
    fake = FakeNvml(three_gpus(), init_error=error)
    assert unavailable(fake, proc).startswith(reason)
    assert fake.calls["nvmlShutdown"] == 0  # never initialised, nothing to shut down


def test_library_not_found_says_how_to_fix_it_in_a_container(proc: Path) -> None:
    fake = FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound())
    assert "docker run --gpus all" in unavailable(fake, proc)


def test_zero_devices_is_unavailable_and_shuts_down(proc: Path) -> None:
    fake = FakeNvml([])
    assert unavailable(fake, proc).startswith("no NVIDIA GPU")
    assert fake.calls["nvmlShutdown"] == 1


def test_count_failure_is_unavailable_and_shuts_down(proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    fake.count_error = pynvml.NVMLError_Unknown()
    assert unavailable(fake, proc) == "NVML cannot count the GPUs: Unknown Error"
    assert fake.calls["nvmlShutdown"] == 1


def test_empty_cuda_visible_devices_is_unavailable_without_touching_nvml(proc: Path) -> None:
    for value in ("", "  "):
        fake = FakeNvml(three_gpus())
        reason = unavailable(fake, proc, {"CUDA_VISIBLE_DEVICES": value})
        assert reason == "CUDA_VISIBLE_DEVICES is empty: the command sees no GPU"
        assert fake.calls["nvmlInit"] == 0


# -- enumeration and energy methods --


def test_devices_are_enumerated_with_name_uuid_method(proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    with make(fake, proc) as sensor:
        assert sensor.name == "nvml"
        assert sensor.devices == (
            GpuInfo(0, A100, UUID0, "nvml-counter", False),
            GpuInfo(1, A100, UUID1, "nvml-counter", False),
            GpuInfo(2, A100, UUID2, "nvml-counter", False),
        )
        assert sensor.notes == []
        assert sensor.pid_namespace_mismatch is False


def test_counter_is_read_in_joules(proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    with make(fake, proc) as sensor:
        first = sensor.read()
        fake.gpus[0].energy_mj = 1_005_000  # +5000 mJ
        fake.gpus[2].energy_mj = 4_000_001
        second = sensor.read()
    assert [first[i].energy_j for i in range(3)] == [1000.0, 2500.0, 4000.0]
    assert [second[i].energy_j for i in range(3)] == [1005.0, 2500.0, 4000.001]
    # Power too, for the cross-check (FakeGpu's default nvmlDeviceGetPowerUsage: 100 W)
    assert all(s.power_w == 100.0 for s in (*first.values(), *second.values()))


def test_power_method_where_the_counter_is_unsupported(proc: Path) -> None:
    gpus = three_gpus()
    gpus[1].energy_mj, gpus[1].instant_power_mw = None, 250_500  # instant field readable
    gpus[2].energy_mj, gpus[2].power_mw = None, 75_250  # field unsupported: GetPowerUsage
    fake = FakeNvml(gpus)
    with make(fake, proc) as sensor:
        assert [d.energy_method for d in sensor.devices] == [
            "nvml-counter",
            "nvml-power",
            "nvml-power",
        ]
        fake.calls.clear()
        sample = sensor.read()
    assert (sample[0].energy_j, sample[0].power_w) == (1000.0, 100.0)
    assert (sample[1].energy_j, sample[1].power_w) == (None, 250.5)
    assert (sample[2].energy_j, sample[2].power_w) == (None, 75.25)
    assert fake.calls["nvmlDeviceGetFieldValues"] == 1  # only GPU 1 uses the field
    assert fake.calls["nvmlDeviceGetPowerUsage"] == 2  # GPU 2 falls back, GPU 0's cross-check
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1  # only GPU 0 has a counter


def test_field_values_call_unsupported_means_power_usage(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, energy_mj=None, instant_power_mw=300_000, field_values=False)
    gpu.power_mw = 123_000
    with make(FakeNvml([gpu]), proc) as sensor:
        assert sensor.read()[0].power_w == 123.0


def test_instant_field_turning_invalid_falls_back_to_power_usage_with_a_note(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, energy_mj=None, instant_power_mw=300_000, power_mw=280_000)
    with make(FakeNvml([gpu]), proc) as sensor:
        assert sensor.read()[0].power_w == 300.0
        gpu.instant_power_mw = None
        assert sensor.read()[0].power_w == 280.0
        assert sensor.read()[0].power_w == 280.0
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetFieldValues gave no valid instant power: used "
            "nvmlDeviceGetPowerUsage (a 1 s mean on Ampere and newer) instead"
        ]


def test_energy_counter_error_other_than_unsupported_means_power_with_a_note(
    proc: Path,
) -> None:
    gpu = FakeGpu(A100, UUID0, power_mw=90_000)
    gpu.fail["nvmlDeviceGetTotalEnergyConsumption"] = pynvml.NVMLError_NoPermission()
    with make(FakeNvml([gpu]), proc) as sensor:
        assert sensor.devices[0].energy_method == "nvml-power"
        assert sensor.read()[0].power_w == 90.0
        assert sensor.notes == [
            f"GPU 0 ({A100}): energy counter unreadable (Insufficient Permissions)"
        ]


def test_device_without_permission_is_left_out_with_a_note(proc: Path) -> None:
    gpus = three_gpus()
    gpus[1].accessible = False  # a GPU that Slurm's device cgroup does not grant
    with make(FakeNvml(gpus), proc) as sensor:
        assert [d.index for d in sensor.devices] == [0, 2]
        assert set(sensor.read()) == {0, 2}
        assert sensor.notes == ["GPU 1 cannot be opened (Insufficient Permissions): left out"]


def test_no_accessible_device_is_unavailable_with_the_notes(proc: Path) -> None:
    fake = FakeNvml([FakeGpu(A100, UUID0, accessible=False)])
    reason = unavailable(fake, proc)
    assert reason == (
        "no usable NVIDIA GPU (GPU 0 cannot be opened (Insufficient Permissions): left out)"
    )
    assert fake.calls["nvmlShutdown"] == 1


# -- the capability probe, which doctor reads too --


def test_probe_asks_each_question_of_nvml_once() -> None:
    gpu = FakeGpu(A100, UUID0, energy_mj=None, instant_power_mw=250_000, mig=True)
    gpu.add_util(FOREIGN, 1_000, 50)
    gpu.add_util(OURS, 2_000, 40)
    fake = FakeNvml([gpu])
    probe = GpuProbe(fake, 0)
    assert (probe.index, probe.name, probe.uuid) == (0, A100, UUID0)
    for _ in range(2):
        assert probe.supports_total_energy() is False
        assert probe.total_energy_error() is None  # before Volta: no counter, and no fault
        assert probe.instant_power_readable() is True
        assert probe.mig_enabled() is True
        assert probe.process_utilisation_error() is None
        assert probe.newest_utilisation_us() == 2_000
    for call in (
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetFieldValues",
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetProcessUtilization",
    ):
        assert fake.calls[call] == 1, call


def test_probe_keeps_refusals_as_answers_and_raises_a_lost_gpu() -> None:
    gpu = FakeGpu(A100, UUID0, util=None, field_values=False)
    gpu.fail["nvmlDeviceGetTotalEnergyConsumption"] = pynvml.NVMLError_NoPermission()
    gpu.fail["nvmlDeviceGetMigMode"] = pynvml.NVMLError_GpuIsLost()
    probe = GpuProbe(FakeNvml([gpu]), 0)
    assert probe.supports_total_energy() is False
    assert isinstance(probe.total_energy_error(), pynvml.NVMLError_NoPermission)
    assert probe.instant_power_readable() is False
    assert isinstance(probe.process_utilisation_error(), pynvml.NVMLError_NotSupported)
    assert probe.newest_utilisation_us() == 0
    with pytest.raises(pynvml.NVMLError_GpuIsLost):
        probe.mig_enabled()


@pytest.mark.parametrize("success_error", [False, True])
def test_probe_reads_no_buffered_samples_as_utilisation_readable(success_error: bool) -> None:
    gpu = FakeGpu(A100, UUID0)  # empty buffer: NotFound
    if success_error:  # pynvml's NVMLError(SUCCESS) for the same
        gpu.fail["nvmlDeviceGetProcessUtilization"] = pynvml.NVMLError(pynvml.NVML_SUCCESS)
    probe = GpuProbe(FakeNvml([gpu]), 0)
    assert probe.process_utilisation_error() is None
    assert probe.newest_utilisation_us() == 0


def test_sensor_keeps_a_probe_or_the_open_error_of_every_gpu(proc: Path) -> None:
    gpus = three_gpus()
    gpus[1].accessible = False
    with visible("2", proc, gpus) as sensor:
        probes = sensor.probes
        assert list(probes) == [0, 1, 2]
        assert isinstance(probes[1], pynvml.NVMLError_NoPermission)
        assert isinstance(probes[0], GpuProbe) and probes[0].uuid == UUID0  # hidden, yet opened
        assert [d.index for d in sensor.devices] == [2]


# -- processes --


def test_processes_are_merged_by_pid(proc: Path) -> None:
    gpus = three_gpus()
    gpus[0].compute = [(OURS, 2_000_000_000), (FOREIGN, 500_000_000), (9001, None)]
    gpus[0].graphics = [(OURS, 2_000_000_000), (31, 64_000_000)]
    gpus[1].graphics = [(55, None)]
    with make(FakeNvml(gpus), proc) as sensor:
        sample = sensor.read()
    assert sample[0].processes == {
        OURS: 2_000_000_000,
        FOREIGN: 500_000_000,
        9001: 0,  # NVML could not tell
        31: 64_000_000,
    }
    assert sample[1].processes == {55: 0}
    assert sample[2].processes == {}


def test_graphics_list_unsupported_is_empty_noted_once_and_not_asked_again(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, compute=[(OURS, 1024)], graphics=None)
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        fake.calls.clear()
        for _ in range(3):
            assert sensor.read()[0].processes == {OURS: 1024}
        assert fake.calls["nvmlDeviceGetGraphicsRunningProcesses"] == 1
        assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 3
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetGraphicsRunningProcesses refused (Not Supported): "
            "no processes from it"
        ]


def test_driver_without_v3_process_calls_uses_v2(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, compute=[(OURS, 4096)], graphics=[(FOREIGN, 8)])
    fake = FakeNvml([gpu])
    fake.v3_missing = True  # pynvml raises NVMLLibraryMismatchError, not an NVMLError
    with make(fake, proc) as sensor:
        assert sensor.read()[0].processes == {OURS: 4096, FOREIGN: 8}
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 1
    assert fake.calls["nvmlDeviceGetGraphicsRunningProcesses_v2"] == 1


# -- utilisation --


def test_samples_buffered_before_init_are_not_counted(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0)
    gpu.add_util(FOREIGN, 1_000_000, 90)  # before the run
    gpu.add_util(FOREIGN, 1_166_000, 80)
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        assert fake.util_since == [(0, 0)]  # the priming call reads the whole buffer once
        assert sensor.read()[0].sm_util == {}  # NotFound: nothing since
        gpu.add_util(OURS, 1_333_000, 40)
        gpu.add_util(FOREIGN, 1_333_000, 10)
        gpu.add_util(OURS, 1_500_000, 60)
        assert sensor.read()[0].sm_util == {OURS: 100.0, FOREIGN: 10.0}
        gpu.add_util(OURS, 1_666_000, 55)
        assert sensor.read()[0].sm_util == {OURS: 55.0}  # only the new sample
        assert sensor.read()[0].sm_util == {}
    assert fake.util_since == [
        (0, 0),
        (0, 1_166_000),
        (0, 1_166_000),
        (0, 1_500_000),
        (0, 1_666_000),
    ]


def test_empty_buffer_at_init_starts_from_zero(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0)
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        gpu.add_util(OURS, 5, 30)
        gpu.add_util(OURS, 7, 20)
        assert sensor.read()[0].sm_util == {OURS: 50.0}
    assert fake.util_since == [(0, 0), (0, 0)]


def test_utilisation_timestamps_are_kept_per_device(proc: Path) -> None:
    gpus = three_gpus()[:2]
    fake = FakeNvml(gpus)
    with make(fake, proc) as sensor:
        gpus[0].add_util(OURS, 2_000, 70)
        gpus[1].add_util(FOREIGN, 9_000, 20)
        sample = sensor.read()
        assert (sample[0].sm_util, sample[1].sm_util) == ({OURS: 70.0}, {FOREIGN: 20.0})
        fake.util_since.clear()
        sensor.read()
    assert fake.util_since == [(0, 2_000), (1, 9_000)]


def test_samples_not_newer_than_last_seen_are_never_counted_twice(proc: Path) -> None:
    """Defence against a driver that ignores lastSeenTimeStamp: a repeated sample is dropped."""

    class SloppyNvml(FakeNvml):
        def nvmlDeviceGetProcessUtilization(self, handle: object, time_stamp: int) -> list[object]:
            return super().nvmlDeviceGetProcessUtilization(handle, 0)  # type: ignore[arg-type]

    gpu = FakeGpu(A100, UUID0)
    with make(SloppyNvml([gpu]), proc) as sensor:
        gpu.add_util(OURS, 10, 30)
        assert sensor.read()[0].sm_util == {OURS: 30.0}
        gpu.add_util(OURS, 20, 40)
        assert sensor.read()[0].sm_util == {OURS: 40.0}


def test_nvml_success_raised_as_error_means_no_samples(proc: Path) -> None:
    """pynvml raises NVMLError(NVML_SUCCESS) when the size query succeeds: an empty window."""
    gpu = FakeGpu(A100, UUID0)
    gpu.fail["nvmlDeviceGetProcessUtilization"] = pynvml.NVMLError(pynvml.NVML_SUCCESS)
    with make(FakeNvml([gpu]), proc) as sensor:
        assert sensor.read()[0].sm_util == {}
        assert sensor.notes == []


def test_utilisation_unsupported_is_noted_and_not_asked_again(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, util=None)
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        for _ in range(3):
            assert sensor.read()[0].sm_util == {}
        assert fake.calls["nvmlDeviceGetProcessUtilization"] == 1  # the priming call only
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetProcessUtilization refused (Not Supported): "
            "no per-process samples"
        ]


def test_one_read_costs_five_nvml_calls_per_counter_device(proc: Path) -> None:
    """The counter's cross-check against power costs one call per device and reading."""
    fake = FakeNvml(three_gpus())
    with make(fake, proc) as sensor:
        fake.calls.clear()
        sensor.read()
        assert fake.calls == {
            "nvmlDeviceGetTotalEnergyConsumption": 3,
            "nvmlDeviceGetPowerUsage": 3,
            "nvmlDeviceGetComputeRunningProcesses": 3,
            "nvmlDeviceGetGraphicsRunningProcesses": 3,
            "nvmlDeviceGetProcessUtilization": 3,
        }


# -- CUDA_VISIBLE_DEVICES --


def visible(value: str, proc: Path, gpus: list[FakeGpu] | None = None) -> NvmlSensor:
    return make(FakeNvml(gpus or three_gpus()), proc, {"CUDA_VISIBLE_DEVICES": value})


@pytest.mark.parametrize(
    ("value", "indices"),
    [
        ("0,2", [0, 2]),
        ("2,0", [2, 0]),  # CUDA's order
        (" 1 ", [1]),
        ("1,1,2", [1, 2]),
        (UUID2, [2]),
        ("GPU-8d5f0", [0]),  # unique prefix
        ("GPU-2b3c,0", [2, 0]),
        ("0,2,-1,1", [0, 2]),  # CUDA stops at the first invalid entry
        ("1,7,0", [1]),  # index out of range
        ("2,GPU-8d5f,0", [2]),  # ambiguous prefix: invalid
        ("0,GPU-ffff", [0]),  # unknown UUID
        ("0,,1", [0]),  # empty entry
        ("0,8d5f0c3e-7a21", [0]),  # a UUID needs its GPU- prefix
        ("0,MIG-GPU-ffffffff-0000/1/0,1", [0]),  # legacy MIG id of a GPU not here
    ],
)
def test_cuda_visible_devices_selects(value: str, indices: list[int], proc: Path) -> None:
    with visible(value, proc) as sensor:
        assert [d.index for d in sensor.devices] == indices
        assert sorted(sensor.read()) == sorted(indices)


def test_invalid_entry_is_noted(proc: Path) -> None:
    with visible("0,2,-1,1", proc) as sensor:
        assert sensor.notes == [
            "CUDA_VISIBLE_DEVICES entry '-1' names no GPU here: CUDA ignores it and every "
            "entry after it"
        ]


@pytest.mark.parametrize("value", ["-1", "NoDevFiles", "GPU-8d5f", "3"])
def test_cuda_visible_devices_naming_no_gpu_is_unavailable(value: str, proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    reason = unavailable(fake, proc, {"CUDA_VISIBLE_DEVICES": value})
    assert reason.startswith(f"CUDA_VISIBLE_DEVICES={value!r} leaves the command no usable GPU")
    assert f"entry {value!r} names no GPU here" in reason
    assert fake.calls["nvmlShutdown"] == 1


def test_leading_empty_entry_is_unavailable_without_a_note(proc: Path) -> None:
    reason = unavailable(FakeNvml(three_gpus()), proc, {"CUDA_VISIBLE_DEVICES": ",0"})
    assert reason == "CUDA_VISIBLE_DEVICES=',0' leaves the command no usable GPU"


def test_mig_id_maps_to_its_parent_board(proc: Path) -> None:
    gpus = three_gpus()
    gpus[1].mig, gpus[1].mig_uuids = True, (MIG0, "MIG-ffff0000-1111-5222-8333-444455556666")
    with visible(f"{MIG0},MIG-ffff0000-1111-5222-8333-444455556666,2", proc, gpus) as sensor:
        assert sensor.devices == (
            GpuInfo(1, A100, UUID1, "nvml-counter", True),
            GpuInfo(2, A100, UUID2, "nvml-counter", False),
        )
        assert sensor.notes[0] == (
            f"CUDA_VISIBLE_DEVICES entry {MIG0} is a MIG instance of GPU 1: measured as the "
            "whole board"
        )
        mig_note = next(n for n in sensor.notes if "is in MIG mode" in n)
        assert mig_note.startswith(f"GPU 1 ({A100}) is in MIG mode: its energy is the whole board")
        assert "no per-process utilisation on MIG-enabled GPUs" in mig_note
        assert "upper bound" in mig_note
        assert sensor.read()[1].energy_j == 2500.0


def test_legacy_mig_id_names_its_parent_uuid(proc: Path) -> None:
    gpus = three_gpus()
    gpus[2].mig = True
    with visible(f"MIG-{UUID2}/1/0", proc, gpus) as sensor:
        assert [(d.index, d.mig) for d in sensor.devices] == [(2, True)]


def test_unknown_mig_id_stops_the_list(proc: Path) -> None:
    with visible(f"0,{MIG0},1", proc) as sensor:
        assert [d.index for d in sensor.devices] == [0]


def test_indices_on_mixed_models_warn_about_cuda_order(proc: Path) -> None:
    gpus = three_gpus()
    gpus[2].name = "NVIDIA RTX A4000"
    fake = FakeNvml(gpus)
    with make(fake, proc, {"CUDA_VISIBLE_DEVICES": "0,2"}) as sensor:
        assert any("CUDA_DEVICE_ORDER=PCI_BUS_ID" in n for n in sensor.notes)
    environ = {"CUDA_VISIBLE_DEVICES": "0,2", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    with make(FakeNvml(gpus), proc, environ) as sensor:
        assert sensor.notes == []
    with make(FakeNvml(gpus), proc, {"CUDA_VISIBLE_DEVICES": UUID2}) as sensor:
        assert sensor.notes == []


def test_mig_mode_unsupported_or_disabled_is_not_mig(proc: Path) -> None:
    gpus = three_gpus()
    gpus[0].mig = False
    with make(FakeNvml(gpus), proc) as sensor:
        assert [d.mig for d in sensor.devices] == [False, False, False]


def test_mig_mode_query_error_is_not_mig_and_keeps_the_device(proc: Path) -> None:
    gpus = three_gpus()
    gpus[0].fail["nvmlDeviceGetMigMode"] = pynvml.NVMLError_Unknown()
    with make(FakeNvml(gpus), proc) as sensor:
        assert [(d.index, d.mig) for d in sensor.devices] == [(0, False), (1, False), (2, False)]


def test_mig_board_whose_utilisation_is_unsupported(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, mig=True, util=None, compute=[(OURS, 10)])
    gpu.fail["nvmlDeviceGetGraphicsRunningProcesses"] = pynvml.NVMLError_NoPermission()
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        sample, _ = sensor.read(), sensor.read()
        assert sensor.devices[0].mig is True
        assert sample[0].processes == {OURS: 10}
        assert sample[0].sm_util == {}
        assert fake.calls["nvmlDeviceGetGraphicsRunningProcesses"] == 1
        assert fake.calls["nvmlDeviceGetProcessUtilization"] == 1
        assert sensor.notes[1:] == [
            f"GPU 0 ({A100}): nvmlDeviceGetProcessUtilization refused (Not Supported): "
            "no per-process samples",
            f"GPU 0 ({A100}): nvmlDeviceGetGraphicsRunningProcesses refused "
            "(Insufficient Permissions): no processes from it",
        ]


# -- PID namespace --


@pytest.mark.parametrize(
    ("nspid", "mismatch"),
    [("4242", False), ("4242\t17", True), ("4242\t17\t1", True), (None, False)],
)
def test_nspid_detects_a_nested_pid_namespace(
    tmp_path: Path, nspid: str | None, mismatch: bool
) -> None:
    proc = write_status(tmp_path / "proc", nspid)
    with make(FakeNvml(three_gpus()), proc) as sensor:
        assert sensor.pid_namespace_mismatch is mismatch
        hint = [n for n in sensor.notes if "PID namespace" in n]
        assert len(hint) == int(mismatch)
    if mismatch:
        assert "NVML reports host PIDs" in hint[0]
        assert "docker run --pid=host" in hint[0]
        assert "hostPID: true" in hint[0]
        assert "outside the container" in hint[0]


def test_missing_proc_is_the_host_namespace(tmp_path: Path) -> None:
    with make(FakeNvml(three_gpus()), tmp_path / "no-proc") as sensor:
        assert sensor.pid_namespace_mismatch is False


# -- failures during reads --


def test_error_on_one_device_leaves_the_others_intact_and_is_noted_once(proc: Path) -> None:
    gpus = three_gpus()
    gpus[0].compute = [(OURS, 100)]
    gpus[1].compute = [(FOREIGN, 200)]
    fake = FakeNvml(gpus)
    with make(fake, proc) as sensor:
        gpus[0].fail["nvmlDeviceGetTotalEnergyConsumption"] = pynvml.NVMLError_Unknown()
        gpus[1].fail["nvmlDeviceGetComputeRunningProcesses"] = pynvml.NVMLError_Timeout()
        first, second = sensor.read(), sensor.read()
        for sample in (first, second):
            assert sample[0] == GpuSample(None, 100.0, {OURS: 100}, {})
            assert sample[1] == GpuSample(2500.0, 100.0, {}, {})
            assert sample[2].energy_j == 4000.0
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetTotalEnergyConsumption failed (Unknown Error): "
            "that reading is missing when it fails",
            f"GPU 1 ({A100}): nvmlDeviceGetComputeRunningProcesses failed (Timeout): "
            "that reading is missing when it fails",
        ]
        del gpus[0].fail["nvmlDeviceGetTotalEnergyConsumption"]
        assert sensor.read()[0].energy_j == 1000.0  # recovers


def test_utilisation_and_power_errors_are_isolated(proc: Path) -> None:
    gpus = three_gpus()[:2]
    gpus[0].energy_mj = None
    gpus[0].fail["nvmlDeviceGetPowerUsage"] = pynvml.NVMLError_Unknown()
    gpus[1].fail["nvmlDeviceGetProcessUtilization"] = pynvml.NVMLError_Unknown()
    with make(FakeNvml(gpus), proc) as sensor:
        gpus[0].add_util(OURS, 50, 25)
        sample = sensor.read()
        assert (sample[0].power_w, sample[0].sm_util) == (None, {OURS: 25.0})
        assert (sample[1].energy_j, sample[1].sm_util) == (2500.0, {})
        assert len(sensor.notes) == 2


def test_lost_gpu_stops_being_read(proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    with make(fake, proc) as sensor:
        fake.gpus[1].lost = True
        assert set(sensor.read()) == {0, 2}
        fake.calls.clear()
        assert set(sensor.read()) == {0, 2}
        assert sensor.notes == [
            f"GPU 1 ({A100}) is lost (fell off the bus or needs a reset): no further readings "
            "from it"
        ]
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2  # GPU 1 not asked again


@pytest.mark.parametrize(
    "call",
    [
        "nvmlDeviceGetGraphicsRunningProcesses",
        "nvmlDeviceGetProcessUtilization",
        "nvmlDeviceGetPowerUsage",
    ],
)
def test_lost_in_any_call_ends_the_device(proc: Path, call: str) -> None:
    gpus = three_gpus()[:2]
    gpus[0].energy_mj = None
    with make(FakeNvml(gpus), proc) as sensor:
        gpus[0].fail[call] = pynvml.NVMLError_GpuIsLost()
        assert set(sensor.read()) == {1}
        del gpus[0].fail[call]
        assert set(sensor.read()) == {1}


def test_gpu_lost_at_init_is_left_out(proc: Path) -> None:
    gpus = three_gpus()
    gpus[0].fail["nvmlDeviceGetMigMode"] = pynvml.NVMLError_GpuIsLost()
    with make(FakeNvml(gpus), proc) as sensor:
        assert [d.index for d in sensor.devices] == [1, 2]
        assert sensor.notes == [f"GPU 0 ({A100}) cannot be read (GPU is lost): left out"]


# -- close --


def test_close_shuts_down_once_and_reads_after_close_fail(proc: Path) -> None:
    fake = FakeNvml(three_gpus())
    sensor = make(fake, proc)
    sensor.close()
    sensor.close()
    assert fake.calls["nvmlShutdown"] == 1
    with pytest.raises(SensorUnavailable, match="after close"):
        sensor.read()


def test_shutdown_error_is_swallowed(proc: Path) -> None:
    class FailingShutdown(FakeNvml):
        def nvmlShutdown(self) -> None:
            super().nvmlShutdown()
            raise pynvml.NVMLError_Uninitialized()

    fake = FailingShutdown(three_gpus())
    with make(fake, proc):
        pass
    assert fake.calls["nvmlShutdown"] == 1


# -- paths the tests above do not reach --


def test_load_nvml_without_nvidia_ml_py(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what Python does for a missing module
    with pytest.raises(SensorUnavailable, match=r"^nvidia-ml-py is not installed"):
        load_nvml(fake_driver_root(tmp_path))


def test_field_values_error_during_reads_falls_back_to_power_usage(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, energy_mj=None, instant_power_mw=300_000, power_mw=280_000)
    with make(FakeNvml([gpu]), proc) as sensor:
        gpu.fail["nvmlDeviceGetFieldValues"] = pynvml.NVMLError_Unknown()
        assert sensor.read()[0].power_w == 280.0
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetFieldValues failed (Unknown Error): that reading is "
            "missing when it fails"
        ]


@pytest.mark.parametrize(
    "call", ["nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetFieldValues"]
)
def test_gpu_lost_during_the_energy_probe_is_left_out(proc: Path, call: str) -> None:
    gpus = three_gpus()
    gpus[1].energy_mj = None if call == "nvmlDeviceGetFieldValues" else 1
    gpus[1].fail[call] = pynvml.NVMLError_GpuIsLost()
    with make(FakeNvml(gpus), proc) as sensor:
        assert [d.index for d in sensor.devices] == [0, 2]
        assert sensor.notes == [f"GPU 1 ({A100}) cannot be read (GPU is lost): left out"]


def test_process_probe_error_keeps_the_v3_calls(proc: Path) -> None:
    gpus = three_gpus()[:2]
    gpus[0].fail["nvmlDeviceGetComputeRunningProcesses"] = pynvml.NVMLError_Unknown()
    gpus[1].compute = [(OURS, 1)]
    fake = FakeNvml(gpus)
    with make(fake, proc) as sensor:
        assert sensor.read()[1].processes == {OURS: 1}
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses_v2"] == 0


# -- a MIG board without the privilege to list its processes --


def board_energy(
    fake: FakeNvml,
    sensor: NvmlSensor,
    tree: frozenset[int],
    between: Callable[[], object] = lambda: None,
) -> GpuShare:
    """One interval of 500 J on GPU 0, attributed as a run would (attribution.gpu_interval);
    `between` runs between its two readings."""
    model = EnergyModel(cpu_method="estimate", dram_method="estimate", gpu=True)
    before = Reading(0.0, 0.0, 0.0, tree_pids=tree, gpu=sensor.read())
    between()
    fake.gpus[0].energy_mj = (fake.gpus[0].energy_mj or 0) + 500_000
    after = Reading(10.0, 0.0, 0.0, tree_pids=tree, gpu=sensor.read())
    return gpu_interval(before, after, model)[0]


def test_mig_board_without_privilege_is_charged_whole_as_the_stated_upper_bound(
    proc: Path,
) -> None:
    """Before: processes_known stayed True with an empty list, so the board's energy was 0 J,
    "not used by the command"."""
    gpu = FakeGpu(A100, UUID0, mig=True, util=None, compute=[(OURS, 10)])
    gpu.fail["nvmlDeviceGetComputeRunningProcesses"] = pynvml.NVMLError_NoPermission()
    gpu.fail["nvmlDeviceGetGraphicsRunningProcesses"] = pynvml.NVMLError_NoPermission()
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        assert board_energy(fake, sensor, frozenset({OURS})) == GpuShare(
            500.0, 500.0, "device-level"
        )
        assert sensor.read()[0].processes_known is False
        assert (
            f"GPU 0 ({A100}) is in MIG mode and NVML lists its processes only to privileged "
            "callers (Insufficient Permissions): the run is charged the whole board's energy, an "
            "upper bound (as root, carbonwrap splits the board by the GPU memory each process "
            "holds)"
        ) in sensor.notes


def test_mig_board_with_privilege_is_split_as_before(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0, mig=True, util=None, compute=[(OURS, 1), (FOREIGN, 3)])
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        assert board_energy(fake, sensor, frozenset({OURS})) == GpuShare(
            125.0, 500.0, "memory-share"
        )
        assert sensor.read()[0].processes_known is True


def test_compute_list_refused_on_a_whole_gpu_is_device_level_too(proc: Path) -> None:
    gpu = FakeGpu(A100, UUID0)
    gpu.fail["nvmlDeviceGetComputeRunningProcesses"] = pynvml.NVMLError_NotSupported()
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        assert board_energy(fake, sensor, frozenset({OURS})).method == "device-level"
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetComputeRunningProcesses refused (Not Supported): the "
            "run's processes cannot be told apart on this GPU, so the run is charged the whole "
            "device's energy, an upper bound"
        ]


# -- Grace superchips: a counter that holds the CPU too --

GH200 = "NVIDIA GH200 480GB"


def test_grace_hopper_uses_gpu_only_power_instead_of_the_module_counter(proc: Path) -> None:
    gpu = FakeGpu(GH200, UUID0, energy_mj=9_000_000, instant_power_mw=450_000, c2c=True)
    fake = FakeNvml([gpu, FakeGpu(A100, UUID1, c2c=False)])
    with make(fake, proc) as sensor:
        assert [d.energy_method for d in sensor.devices] == ["nvml-power", "nvml-counter"]
        assert sensor.module_scope == frozenset()  # nothing counts the CPU
        sample = sensor.read()[0]
        assert (sample.energy_j, sample.power_w) == (None, 450.0)
        assert sensor.notes == [
            f"GPU 0 ({GH200}) shares a superchip module with a Grace CPU, whose energy its "
            "counter includes: the GPU's own power (NVML_POWER_SCOPE_GPU) is sampled and "
            "integrated instead, so the CPU is not counted twice"
        ]


@pytest.mark.parametrize("c2c_call_missing", [False, True])
def test_grace_hopper_without_gpu_only_power_says_its_counter_covers_the_module(
    proc: Path, c2c_call_missing: bool
) -> None:
    gpu = FakeGpu(GH200, UUID0, energy_mj=9_000_000, c2c=True)  # the instant field unreadable
    if c2c_call_missing:  # an older driver: the name says
        gpu.fail["nvmlDeviceGetC2cModeInfoV"] = pynvml.NVMLError_FunctionNotFound()
    with make(FakeNvml([gpu]), proc) as sensor:
        assert sensor.devices[0].energy_method == "nvml-counter"
        assert sensor.devices[0].module_scope is True
        assert sensor.module_scope == frozenset({0})
        assert sensor.notes == [
            f"GPU 0 ({GH200}) shares a superchip module with a Grace CPU and NVML gives no "
            "GPU-only power here: its energy is the whole module's (CPU, memory and GPU)"
        ]


def test_a_discrete_gpu_is_not_a_module(proc: Path) -> None:
    probe = GpuProbe(FakeNvml([FakeGpu("NVIDIA H100 80GB HBM3", UUID0)]), 0)  # NotSupported
    assert probe.module_scope() is False


# -- processes that start and end between two readings: NVML accounting mode --

SHORT = 5151


def accounting_gpu(*accounted: Accounted) -> FakeGpu:
    return FakeGpu(A100, UUID0, accounting=True, accounted=list(accounted))


def test_processes_only_accounting_saw_are_reported_once_when_ended(proc: Path) -> None:
    gpu = accounting_gpu(Accounted(111, running=False), Accounted(222, running=True))
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:  # 111 and 222 were there before the run: never reported
        assert sensor.read()[0].ended == {}
        gpu.accounted.append(Accounted(SHORT, max_memory=3 << 30))  # started and ended unseen
        gpu.accounted.append(Accounted(OURS, running=True))  # running, not listed yet
        gpu.accounted.append(Accounted(FOREIGN))  # listed at a reading: the lists counted it
        gpu.compute = [(FOREIGN, 1)]
        sample = sensor.read()[0]
        assert sample.ended == {SHORT: 3 << 30}
        gpu.accounted[3] = Accounted(OURS, running=False, max_memory=0)
        gpu.compute = []
        assert sensor.read()[0].ended == {OURS: 0}
        fake.calls.clear()
        assert sensor.read()[0].ended == {}  # nothing new: no stats asked
        assert fake.calls["nvmlDeviceGetAccountingStats"] == 0
        assert fake.calls["nvmlDeviceGetAccountingPids"] == 1


def test_accounting_off_costs_no_call_and_a_refusal_stops_asking(proc: Path) -> None:
    fake = FakeNvml([FakeGpu(A100, UUID0)])
    with make(fake, proc) as sensor:
        sensor.read()
        assert fake.calls["nvmlDeviceGetAccountingPids"] == 0
    gpu = accounting_gpu()
    fake = FakeNvml([gpu])
    with make(fake, proc) as sensor:
        gpu.fail["nvmlDeviceGetAccountingPids"] = pynvml.NVMLError_NoPermission()
        sensor.read(), sensor.read()
        assert fake.calls["nvmlDeviceGetAccountingPids"] == 2  # the priming call and one
        assert sensor.notes == [
            f"GPU 0 ({A100}): nvmlDeviceGetAccountingPids refused (Insufficient Permissions)"
        ]


def test_a_short_process_of_the_run_is_credited_through_accounting(proc: Path) -> None:
    """Before: a job that held the GPU only between two readings cost the run 0 J."""
    gpu = accounting_gpu()
    fake = FakeNvml([gpu])

    def short_job() -> None:  # started and ended between the two readings
        gpu.accounted.append(Accounted(SHORT))
        gpu.add_util(SHORT, 10**15, 90)

    with make(fake, proc) as sensor:
        share = board_energy(fake, sensor, frozenset({OURS}), short_job)
        assert share == GpuShare(500.0, 500.0, "accounting")
