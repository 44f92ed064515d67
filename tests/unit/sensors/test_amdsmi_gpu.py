"""AmdSmiSensor against FakeAmdSmi (amdsmi's names, shapes per release, exception classes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from fake_amdsmi import AmdSmiStatus, FakeAmdGpu, FakeAmdSmi, FakeProcess

from carbonwrap.measure.attribution import EnergyModel, Reading
from carbonwrap.measure.gpu_attribution import gpu_interval
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.amdsmi_gpu import (
    INSTALL_HINT,
    NAMESPACE_HINT,
    PERMISSION_HINT,
    AmdSmiSensor,
    Clients,
    amd_driver_present,
    load_amdsmi,
)
from carbonwrap.sensors.gpu import SHARE_ENGINE, GpuInfo, GpuSample

MI300X = "AMD Instinct MI300X"
MI250X = "AMD Instinct MI250X"
MI210 = "AMD Instinct MI210"
OURS, FOREIGN = 4242, 777
RES_UJ = 15.625  # a counter resolution that gives round joules: 64 ticks per mJ


class Clock:
    """The sensor's monotonic clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def mi300x(position: int, energy_j: float = 1000.0, power_w: int = 300) -> FakeAmdGpu:
    return FakeAmdGpu(
        MI300X,
        unique_id=0x5A1E_0000_0000_0000 + position,
        bdf=f"0000:{0x0C + position:02x}:00.0",
        energy=ticks(energy_j),
        resolution_uj=RES_UJ,
        current_w=power_w,
    )


def ticks(energy_j: float) -> int:
    return round(energy_j * 1e6 / RES_UJ)


def set_energy(gpu: FakeAmdGpu, energy_j: float) -> None:
    gpu.energy = ticks(energy_j)


def write_status(proc_root: Path, nspid: str | None) -> Path:
    status = proc_root / "self" / "status"
    status.parent.mkdir(parents=True, exist_ok=True)
    lines = ["Name:\tpython3", "Pid:\t4242"]
    if nspid is not None:
        lines += [f"NSpid:\t{nspid}"]
    status.write_text("\n".join(lines) + "\n")
    return proc_root


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    return write_status(tmp_path / "proc", "4242")


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(
    fake: FakeAmdSmi,
    proc: Path,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
    clients: Clients | None = None,
) -> AmdSmiSensor:
    return AmdSmiSensor(fake, environ or {}, proc, clients, clock=clock)


def unavailable(fake: FakeAmdSmi, proc: Path, environ: Mapping[str, str] | None = None) -> str:
    with pytest.raises(SensorUnavailable) as info:
        make(fake, proc, Clock(), environ)
    return info.value.reason


def step(clock: Clock, sensor: AmdSmiSensor, seconds: float = 1.0) -> dict[int, GpuSample]:
    clock.now += seconds
    return sensor.read()


# -- finding the driver and the library, cheaply --


def test_driver_present_from_a_stat_of_its_markers(tmp_path: Path) -> None:
    assert not amd_driver_present(tmp_path)
    (tmp_path / "sys" / "module" / "amdgpu").mkdir(parents=True)
    assert amd_driver_present(tmp_path)
    container = tmp_path / "container"
    (container / "dev").mkdir(parents=True)
    (container / "dev" / "kfd").write_text("")
    assert amd_driver_present(str(container))


def test_no_driver_is_unavailable_without_importing_amdsmi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # an import would fail differently
    with pytest.raises(SensorUnavailable) as info:
        load_amdsmi(tmp_path)
    assert info.value.reason == ("no AMD GPU driver (none of /sys/module/amdgpu, /dev/kfd exist)")


def driver_root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "sys" / "module" / "amdgpu").mkdir(parents=True)
    return tmp_path / "root"


def test_amdsmi_missing_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)  # what Python does for a missing module
    with pytest.raises(SensorUnavailable) as info:
        load_amdsmi(driver_root(tmp_path))
    assert info.value.reason == INSTALL_HINT
    assert "pip install /opt/rocm/share/amd_smi" in INSTALL_HINT


def test_amdsmi_without_its_library_says_so_and_prints_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "site" / "amdsmi"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "print('Unable to find libamd_smi.so')\n"
        "raise OSError('libamd_smi.so: cannot open shared object file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    with pytest.raises(SensorUnavailable) as info:
        load_amdsmi(driver_root(tmp_path))
    assert info.value.reason.startswith(
        "the amdsmi Python package cannot use ROCm's libamd_smi.so (libamd_smi.so: cannot open "
        "shared object file; Unable to find libamd_smi.so): install the amdsmi package of your "
        "ROCm release"
    )
    assert capsys.readouterr().out == ""


def test_load_returns_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = type(sys)("amdsmi")
    monkeypatch.setitem(sys.modules, "amdsmi", module)
    assert load_amdsmi(driver_root(tmp_path)) is module


# -- init --


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (AmdSmiStatus.NO_PERM, PERMISSION_HINT),
        (AmdSmiStatus.DRIVER_NOT_LOADED, "amdgpu driver not loaded"),
        (AmdSmiStatus.FAIL_LOAD_MODULE, "the amdsmi Python package cannot use ROCm's"),
        (
            AmdSmiStatus.INIT_ERROR,
            "amdsmi initialisation failed: AMDSMI_STATUS_INIT_ERROR - Initialization error",
        ),
    ],
)
def test_init_failure_is_unavailable_with_the_cause(
    proc: Path, code: AmdSmiStatus, reason: str
) -> None:
    fake = FakeAmdSmi([mi300x(0)], init_error=code)
    assert unavailable(fake, proc).startswith(reason)
    assert fake.calls["amdsmi_shut_down"] == 0  # never initialised


def test_permission_hint_names_the_groups_and_the_devices() -> None:
    for words in ("`render` and `video` groups", "/dev/kfd", "/dev/dri/renderD*", "--device"):
        assert words in PERMISSION_HINT


def test_init_asks_for_amd_gpus_only(proc: Path, clock: Clock) -> None:
    fake = FakeAmdSmi([mi300x(0)])
    with make(fake, proc, clock):
        assert fake.init_flags == [fake.AmdSmiInitFlags.INIT_AMD_GPUS]


def test_no_gpu_listed_is_unavailable_with_the_permission_hint_and_shuts_down(
    proc: Path,
) -> None:
    fake = FakeAmdSmi([])
    reason = unavailable(fake, proc)
    assert reason.startswith("no AMD GPU: the amdgpu driver is loaded but amdsmi lists no GPU")
    assert PERMISSION_HINT in reason
    assert fake.calls["amdsmi_shut_down"] == 1


def test_listing_failure_is_unavailable_and_shuts_down(proc: Path) -> None:
    fake = FakeAmdSmi([mi300x(0)])
    fake.handles_error = AmdSmiStatus.UNKNOWN_ERROR
    assert unavailable(fake, proc) == (
        "amdsmi cannot list the GPUs: AMDSMI_STATUS_UNKNOWN_ERROR - An unknown error occurred"
    )
    assert fake.calls["amdsmi_shut_down"] == 1


# -- devices, counter and power --


def test_devices_are_enumerated_with_name_uuid_bus_id_method(proc: Path, clock: Clock) -> None:
    gpus = [mi300x(0), mi300x(1)]
    gpus[1].energy = None  # no counter: power
    with make(FakeAmdSmi(gpus), proc, clock) as sensor:
        assert sensor.name == "amdsmi"
        assert sensor.devices == (
            GpuInfo(0, MI300X, gpus[0].uuid, "amdsmi-counter", False, "amd", "0000:0c:00.0"),
            GpuInfo(1, MI300X, gpus[1].uuid, "amdsmi-power", False, "amd", "0000:0d:00.0"),
        )
        assert sensor.notes == []
        assert sensor.pid_namespace_mismatch is False


@pytest.mark.parametrize("api", ["6.0", "6.2", "6.4", "7.0"])
def test_counter_is_accumulator_times_resolution_in_joules(
    proc: Path, clock: Clock, api: str
) -> None:
    gpu = mi300x(0, energy_j=1000.0, power_w=300)
    with make(FakeAmdSmi([gpu], api=api), proc, clock) as sensor:
        set_energy(gpu, 1300.0)
        first = step(clock, sensor)[0]
        set_energy(gpu, 1600.5)
        second = step(clock, sensor)[0]
    assert (first.energy_j, first.power_w) == (1300.0, 300.0)
    assert (second.energy_j, second.power_w) == (1600.5, 300.0)
    assert first.busy_method == SHARE_ENGINE


def test_power_is_in_every_sample_beside_the_counter(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        for power_w in (150, 610, 95):
            gpu.current_w = power_w
            set_energy(gpu, 1000.0 + power_w)
            assert step(clock, sensor)[0].power_w == float(power_w)


@pytest.mark.parametrize("api", ["6.0", "6.2", "7.0"])
def test_power_falls_back_to_the_average_where_current_is_not_available(
    proc: Path, clock: Clock, api: str
) -> None:
    gpu = FakeAmdGpu(MI210, 0x1234, "0000:03:00.0", device_id=0x740F, energy=None)
    gpu.current_w, gpu.average_w = None, 87  # "N/A" (0xFFFF before 6.2), as on an MI210
    with make(FakeAmdSmi([gpu], api=api), proc, clock) as sensor:
        assert sensor.devices[0].energy_method == "amdsmi-power"
        sample = step(clock, sensor)[0]
        assert (sample.energy_j, sample.power_w) == (None, 87.0)
        assert sensor.notes == []


def test_power_not_available_at_all_is_none_and_noted_once(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    gpu.current_w = None
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        assert [step(clock, sensor)[0].power_w for _ in range(3)] == [None, None, None]
        assert sensor.notes == [f"GPU 0 ({MI300X}): amdsmi_get_power_info gave no power (N/A)"]


def test_a_stuck_counter_is_rejected_and_power_serves(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0, energy_j=5000.0, power_w=310)
    fake = FakeAmdSmi([gpu])
    with make(fake, proc, clock) as sensor:
        samples = [step(clock, sensor)[0] for _ in range(8)]
        assert [s.energy_j for s in samples] == [None] * 8
        assert [s.power_w for s in samples] == [310.0] * 8
        assert sensor.notes == [
            f"GPU 0 ({MI300X}): energy counter rejected: unchanged for 5 s while drawing "
            "310 W; power integrated instead"
        ]
        fake.calls.clear()
        set_energy(gpu, 9000.0)
        assert step(clock, sensor)[0].energy_j is None
        assert fake.calls["amdsmi_get_energy_count"] == 0  # not asked again


def test_an_absurd_counter_jump_is_rejected_at_once(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0, energy_j=1000.0, power_w=300)
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        set_energy(gpu, 1300.0)
        assert step(clock, sensor)[0].energy_j == 1300.0
        set_energy(gpu, 41_300.0)  # 40 kJ in a second at 300 W
        jumped = step(clock, sensor)[0]
        assert (jumped.energy_j, jumped.power_w) == (None, 300.0)
        assert sensor.notes == [
            f"GPU 0 ({MI300X}): energy counter rejected: rose 40000 J in 1.0 s while drawing "
            "300 W (more than 3 times the power readings); power integrated instead"
        ]


def test_counter_error_is_confined_to_its_reading_and_noted_once(proc: Path, clock: Clock) -> None:
    gpus = [mi300x(0), mi300x(1)]
    with make(FakeAmdSmi(gpus), proc, clock) as sensor:
        gpus[0].fail["amdsmi_get_energy_count"] = AmdSmiStatus.UNKNOWN_ERROR
        gpus[1].fail["amdsmi_get_power_info"] = AmdSmiStatus.TIMEOUT
        for energy_j in (1100.0, 1200.0):
            set_energy(gpus[0], energy_j)
            set_energy(gpus[1], energy_j)
            samples = step(clock, sensor)
            assert (samples[0].energy_j, samples[0].power_w) == (None, 300.0)
            assert (samples[1].energy_j, samples[1].power_w) == (energy_j, None)
        assert sensor.notes == [
            f"GPU 0 ({MI300X}): amdsmi_get_energy_count failed (AMDSMI_STATUS_UNKNOWN_ERROR - "
            "An unknown error occurred): that reading is missing when it fails",
            f"GPU 1 ({MI300X}): amdsmi_get_power_info failed (AMDSMI_STATUS_TIMEOUT - Timeout "
            "in API call): that reading is missing when it fails",
        ]
        del gpus[0].fail["amdsmi_get_energy_count"]
        set_energy(gpus[0], 1300.0)
        assert step(clock, sensor)[0].energy_j == 1300.0  # recovers


def test_a_device_that_disappears_is_noted_and_dropped(proc: Path, clock: Clock) -> None:
    gpus = [mi300x(0), mi300x(1)]
    fake = FakeAmdSmi(gpus)
    with make(fake, proc, clock) as sensor:
        gpus[1].gone = True
        assert set(step(clock, sensor)) == {0}
        fake.calls.clear()
        assert set(step(clock, sensor)) == {0}
        assert fake.calls["amdsmi_get_power_info"] == 1  # GPU 1 not asked again
        assert sensor.notes == [
            f"GPU 1 ({MI300X}) is gone (AMDSMI_STATUS_NOT_FOUND - Device Not found): no "
            "further readings from it"
        ]


def test_a_gpu_that_cannot_be_opened_is_left_out(proc: Path, clock: Clock) -> None:
    gpus = [mi300x(0), mi300x(1)]
    gpus[0].fail["amdsmi_get_gpu_asic_info"] = AmdSmiStatus.NO_PERM
    with make(FakeAmdSmi(gpus), proc, clock) as sensor:
        assert [d.index for d in sensor.devices] == [1]
        assert sensor.notes == [
            "GPU 0 cannot be opened (AMDSMI_STATUS_NO_PERM - Permission Denied): left out"
        ]


# -- processes and engine busy time --


@pytest.mark.parametrize("api", ["6.0", "6.2"])
def test_processes_in_both_list_shapes_without_the_caller(
    proc: Path, clock: Clock, api: str
) -> None:
    gpu = mi300x(0)
    gpu.processes = [FakeProcess(OURS, vram=2 << 30, gtt=1 << 20), FakeProcess(FOREIGN, vram=1)]
    fake = FakeAmdSmi([gpu], api=api)
    with make(fake, proc, clock) as sensor:
        sample = step(clock, sensor)[0]
    assert sample.processes == {OURS: 2 << 30, FOREIGN: 1}  # VRAM, not GTT; not our own PID
    assert os.getpid() not in sample.processes
    assert sample.processes_known is True
    assert fake.calls["amdsmi_get_gpu_process_info"] == (4 if api == "6.0" else 0)


def test_engine_busy_counts_from_open_and_per_interval(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    ours, foreign = FakeProcess(OURS, gfx_ns=7_000_000_000), FakeProcess(FOREIGN, gfx_ns=500)
    gpu.processes = [ours, foreign]
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        ours.gfx_ns += 300_000_000  # history before open is not charged
        ours.enc_ns += 20_000_000
        foreign.gfx_ns += 100_000_000
        first = step(clock, sensor)[0]
        late = FakeProcess(5151, gfx_ns=40_000_000)  # began since the last reading
        gpu.processes.append(late)
        ours.gfx_ns += 50_000_000
        second = step(clock, sensor)[0]
    assert first.sm_util == {OURS: 320_000_000.0, FOREIGN: 100_000_000.0}
    assert second.sm_util == {OURS: 50_000_000.0, 5151: 40_000_000.0}
    assert second.busy_method == SHARE_ENGINE


def test_refused_process_list_uses_the_clients_reader(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    gpu.fail["amdsmi_get_gpu_process_list"] = AmdSmiStatus.NOT_SUPPORTED
    asked: list[str] = []

    def clients(bus_id: str) -> tuple[Mapping[int, int], Mapping[int, float]] | None:
        asked.append(bus_id)
        return {OURS: 10, FOREIGN: 20}, {OURS: 5.0}

    fake = FakeAmdSmi([gpu])
    with make(fake, proc, clock, clients=clients) as sensor:
        samples = [step(clock, sensor)[0] for _ in range(2)]
        assert all(s.processes == {OURS: 10, FOREIGN: 20} for s in samples)
        assert all(s.sm_util == {OURS: 5.0} and s.processes_known for s in samples)
        assert asked == ["0000:0c:00.0"] * 3  # at open, then at each read
        assert fake.calls["amdsmi_get_gpu_process_list"] == 1  # refused once: not asked again
        assert sensor.notes == [
            f"GPU 0 ({MI300X}): amdsmi_get_gpu_process_list refused (AMDSMI_STATUS_NOT_SUPPORTED "
            "- Feature not supported): processes from DRM fdinfo instead"
        ]


def test_no_process_list_anywhere_is_the_whole_device(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    gpu.fail["amdsmi_get_gpu_process_list"] = AmdSmiStatus.NO_PERM
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        sample = step(clock, sensor)[0]
        assert (sample.processes, sample.sm_util, sample.processes_known) == ({}, {}, False)
        assert sensor.notes == [
            f"GPU 0 ({MI300X}): amdsmi_get_gpu_process_list refused (AMDSMI_STATUS_NO_PERM - "
            "Permission Denied): no process list: the whole device is charged (device-level, an "
            "upper bound)"
        ]
    with make(FakeAmdSmi([gpu]), proc, clock, clients=lambda bus_id: None) as sensor:
        assert step(clock, sensor)[0].processes_known is False
        assert sensor.notes[-1] == (
            f"GPU 0 ({MI300X}): DRM fdinfo gives no processes either: the whole device is "
            "charged (device-level, an upper bound)"
        )


def test_a_failed_process_list_falls_back_for_that_reading_only(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0)
    gpu.processes = [FakeProcess(OURS, vram=5)]
    fake = FakeAmdSmi([gpu])
    with make(fake, proc, clock) as sensor:
        gpu.fail["amdsmi_get_gpu_process_list"] = AmdSmiStatus.RETRY
        assert step(clock, sensor)[0].processes_known is False
        del gpu.fail["amdsmi_get_gpu_process_list"]
        assert step(clock, sensor)[0].processes == {OURS: 5}
        assert len(sensor.notes) == 1 and "failed (AMDSMI_STATUS_RETRY" in sensor.notes[0]


# -- MI250X: two dies, one package --


def mi250x_node() -> list[FakeAmdGpu]:
    """Two MI250X packages: dies 0+1 and 2+3; the first die of each reports the package."""
    dies = []
    for die in range(4):
        primary = die % 2 == 0
        gpu = FakeAmdGpu(
            MI250X,
            unique_id=0x7A0A_0000_0000_0000 + die,
            bdf=f"0000:{0xC1 + die * 4:02x}:00.0",
            device_id=0x740C,
            board_serial=f"PCB046982-00{die // 2}",
            energy=ticks(20_000.0) if primary else 0,
            resolution_uj=RES_UJ,
            current_w=None,
            average_w=400 if primary else 0,
        )
        dies.append(gpu)
    return dies


def test_two_dies_of_a_package_are_one_device(proc: Path, clock: Clock) -> None:
    dies = mi250x_node()
    with make(FakeAmdSmi(dies), proc, clock) as sensor:
        assert [(d.index, d.name, d.energy_method) for d in sensor.devices] == [
            (0, f"{MI250X} (2 dies)", "amdsmi-counter"),
            (2, f"{MI250X} (2 dies)", "amdsmi-counter"),
        ]
        assert sensor.devices[0].pci_bus_id == "0000:c1:00.0"
        assert sensor.notes == [
            f"GPUs 0 and 1 ({MI250X}) are the dies of one package, whose power and energy are "
            "reported on one die only: measured as one device, GPU 0, shared by the processes "
            "of both dies",
            f"GPUs 2 and 3 ({MI250X}) are the dies of one package, whose power and energy are "
            "reported on one die only: measured as one device, GPU 2, shared by the processes "
            "of both dies",
        ]
        dies[1].processes = [FakeProcess(OURS, vram=100, gfx_ns=900)]
        dies[0].processes = [FakeProcess(FOREIGN, vram=300, gfx_ns=100)]
        set_energy(dies[0], 20_400.0)
        sample = step(clock, sensor)[0]
    assert (sample.energy_j, sample.power_w) == (20_400.0, 400.0)
    assert sample.processes == {OURS: 100, FOREIGN: 300}
    assert sample.sm_util == {OURS: 900.0, FOREIGN: 100.0}


def test_only_the_second_die_visible_still_measures_its_package(proc: Path, clock: Clock) -> None:
    dies = mi250x_node()
    environ = {"ROCR_VISIBLE_DEVICES": "1"}
    with make(FakeAmdSmi(dies), proc, clock, environ) as sensor:
        assert [d.index for d in sensor.devices] == [0]
        assert sensor.notes[-1].endswith("of both dies (the command sees GPU 1 only)")
        dies[1].processes = [FakeProcess(OURS, gfx_ns=500)]
        set_energy(dies[0], 20_400.0)
        sample = step(clock, sensor)[0]
    assert (sample.energy_j, sample.power_w, sample.processes) == (20_400.0, 400.0, {OURS: 0})


def test_dies_without_a_board_serial_pair_in_order(proc: Path, clock: Clock) -> None:
    dies = mi250x_node()[:3]
    for die in dies:
        die.board_serial = ""
    with make(FakeAmdSmi(dies), proc, clock) as sensor:
        assert [(d.index, d.name) for d in sensor.devices] == [
            (0, f"{MI250X} (2 dies)"),
            (2, MI250X),
        ]
        assert sensor.notes[:2] == [
            "two-die GPUs without a board serial to pair them by: taken in amdsmi's order as "
            "packages 0+1",
            "GPU 2 is one die of a two-die package whose other die is not listed here: if it is "
            "the secondary die its power and energy read 0 (the package's are reported on the "
            "other die)",
        ]


def test_tree_on_the_second_die_gets_the_package_energy(proc: Path, clock: Clock) -> None:
    """Through the attribution: the tree uses die 1 only, a foreign process die 0."""
    dies = mi250x_node()[:2]
    ours = FakeProcess(OURS, vram=1 << 30, gfx_ns=0)
    foreign = FakeProcess(FOREIGN, vram=1 << 30, gfx_ns=0)
    dies[1].processes, dies[0].processes = [ours], [foreign]
    with make(FakeAmdSmi(dies), proc, clock, {"HIP_VISIBLE_DEVICES": "1"}) as sensor:
        set_energy(dies[0], 20_400.0)
        before = step(clock, sensor)
        ours.gfx_ns += 750_000_000
        foreign.gfx_ns += 250_000_000
        set_energy(dies[0], 20_800.0)
        clock.now += 1.0
        after = sensor.read()
    model = EnergyModel("estimate", "none", gpu=True)
    prev = Reading(clock.now - 1.0, 0.0, 0.0, tree_pids=frozenset({OURS}), gpu=before)
    cur = Reading(clock.now, 0.0, 0.0, tree_pids=frozenset({OURS}), gpu=after)
    share = gpu_interval(prev, cur, model)[0]
    assert share.device_energy_j == pytest.approx(400.0)
    assert share.energy_j == pytest.approx(300.0)  # 3/4 of the engine time
    assert share.method == "engine-share"


def test_tree_with_a_foreign_process_gets_its_engine_share(proc: Path, clock: Clock) -> None:
    gpu = mi300x(0, energy_j=1000.0, power_w=500)
    ours = FakeProcess(OURS, vram=4 << 30)
    foreign = FakeProcess(FOREIGN, vram=4 << 30)
    gpu.processes = [ours, foreign]
    with make(FakeAmdSmi([gpu]), proc, clock) as sensor:
        set_energy(gpu, 1500.0)
        first = step(clock, sensor)
        ours.gfx_ns += 600_000_000
        foreign.gfx_ns += 200_000_000
        set_energy(gpu, 2000.0)
        second = step(clock, sensor)
    model = EnergyModel("estimate", "none", gpu=True)
    pids = frozenset({OURS, OURS + 1})
    prev = Reading(clock.now - 1.0, 0.0, 0.0, tree_pids=pids, gpu=first)
    cur = Reading(clock.now, 0.0, 0.0, tree_pids=pids, gpu=second)
    assert gpu_interval(prev, cur, model) == {0: (375.0, 500.0, "engine-share")}


# -- visible devices --


def test_rocr_and_hip_narrow_the_devices(proc: Path, clock: Clock) -> None:
    gpus = [mi300x(i) for i in range(4)]
    uuid = f"GPU-{gpus[3].unique_id:016X}"  # ROCr's form, from the asic serial
    environ = {"ROCR_VISIBLE_DEVICES": f"2,{uuid}", "HIP_VISIBLE_DEVICES": "1"}
    with make(FakeAmdSmi(gpus), proc, clock, environ) as sensor:
        assert [d.index for d in sensor.devices] == [3]
        assert set(step(clock, sensor)) == {3}


@pytest.mark.parametrize("api", ["6.0", "6.2"])
def test_rocr_uuid_prefix_in_either_asic_serial_form(proc: Path, clock: Clock, api: str) -> None:
    gpus = [mi300x(0), mi300x(1)]
    gpus[1].unique_id = 0x7A0A_B6E1_D0BD_2B1E
    environ = {"ROCR_VISIBLE_DEVICES": "GPU-7a0ab6"}
    with make(FakeAmdSmi(gpus, api=api), proc, clock, environ) as sensor:
        assert [d.index for d in sensor.devices] == [1]


@pytest.mark.parametrize(
    "name", ["ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"]
)
def test_an_empty_variable_is_unavailable_without_touching_amdsmi(proc: Path, name: str) -> None:
    fake = FakeAmdSmi([mi300x(0)])
    assert unavailable(fake, proc, {name: ""}) == f"{name} is empty: the command sees no GPU"
    assert fake.calls["amdsmi_init"] == 0


def test_a_variable_naming_no_gpu_is_unavailable_and_says_why(proc: Path) -> None:
    fake = FakeAmdSmi([mi300x(0)])
    reason = unavailable(fake, proc, {"HIP_VISIBLE_DEVICES": "3"})
    assert reason == (
        "no usable AMD GPU (HIP_VISIBLE_DEVICES entry '3' names no GPU among those ROCr shows: "
        "HIP ignores it and every entry after it)"
    )
    assert fake.calls["amdsmi_shut_down"] == 1


# -- PID namespace, close --


@pytest.mark.parametrize(
    ("nspid", "mismatch"), [("4242", False), ("4242\t17", True), (None, False)]
)
def test_nested_pid_namespace(
    tmp_path: Path, clock: Clock, nspid: str | None, mismatch: bool
) -> None:
    proc = write_status(tmp_path / "proc", nspid)
    with make(FakeAmdSmi([mi300x(0)]), proc, clock) as sensor:
        assert sensor.pid_namespace_mismatch is mismatch
        assert (NAMESPACE_HINT in sensor.notes) is mismatch


def test_close_shuts_down_once_and_reads_after_close_fail(proc: Path, clock: Clock) -> None:
    fake = FakeAmdSmi([mi300x(0)])
    sensor = make(fake, proc, clock)
    sensor.close()
    sensor.close()
    assert fake.calls["amdsmi_shut_down"] == 1
    with pytest.raises(SensorUnavailable, match="after close"):
        sensor.read()
