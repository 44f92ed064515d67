"""Sensors that misbehave in the middle of a run: the run goes on, every other number is still
counted, and the log says what happened.

In process: the real Meters and Sampler over a fake sysfs tree, a fake NVML and a fake CPU
count, driven tick by tick. (Through the CLI: tests/e2e/test_faults_sensors_cli.py.)"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pynvml
import pytest
from fake_nvml import FakeGpu, FakeNvml
from sysfs_tree import MAX_RANGE_UJ, make_sysfs, zone_file

from carbonwrap.measure import meters as meters_module
from carbonwrap.measure.meters import Meters
from carbonwrap.measure.sampler import Sampler


class FakeTree:
    """A TreeAccounting whose CPU time the test sets (and can make fail)."""

    method = "fake"
    approximate = False
    joining = False

    def __init__(self) -> None:
        self.cpu = 0.0
        self.broken: Exception | None = None

    def placement(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()

    def started(self, pid: int) -> None:
        pass

    def cpu_s(self) -> float:
        if self.broken is not None:
            raise self.broken
        return self.cpu

    def pids(self) -> list[int]:
        return [os.getpid()]

    def rss_bytes(self) -> int:
        return 0

    def finish(self) -> list[int]:
        return []


def put_uj(path: Path, value: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, f"{value:020d}\n".encode(), 0)
    os.close(fd)


class Rig:
    """Meters + Sampler over a fake sysfs; `warnings` collects what the run would log."""

    def __init__(self, sysfs: Path, nvml: FakeNvml | None = None) -> None:
        self.tree = FakeTree()
        self.warnings: list[str] = []
        self.meters = Meters({"CARBONWRAP_SYSFS_ROOT": str(sysfs)}, {}, nvml=nvml)

        def read():  # type: ignore[no-untyped-def]
            reading = self.meters.read(self.tree)
            self.warnings.extend(self.meters.new_notes())
            return reading

        self.sampler = Sampler(
            read, self.meters.model, 60, 60, lambda t: None, self.warnings.append
        )

    def tick(self, cpu_s: float = 0.1) -> None:
        self.tree.cpu += cpu_s
        time.sleep(0.01)
        self.sampler.tick()

    def device_cpu_j(self) -> float:
        return self.sampler.snapshot().device_energy_j["cpu"]


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    return make_sysfs(tmp_path / "sys")


def test_a_counter_that_jumps_back_less_than_a_wrap_adds_nothing(sysfs: Path) -> None:
    """Before the fix any decrease was taken as a wrap: +262 kJ (73 Wh) in one interval."""
    package = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    rig = Rig(sysfs)
    put_uj(package, 2_000_000)  # +1 J
    rig.tick()
    put_uj(package, 1_900_000)  # back by 0.1 J: a glitch, not a wrap
    rig.tick()
    put_uj(package, 2_400_000)  # +0.5 J from the new value
    rig.tick()
    assert rig.device_cpu_j() == pytest.approx(1.5)
    assert any("intel-rapl:0 went back" in w for w in rig.warnings), rig.warnings
    assert rig.sampler.snapshot().cpu_s == pytest.approx(0.3)


def test_a_real_wrap_is_still_counted(sysfs: Path) -> None:
    package = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    put_uj(package, MAX_RANGE_UJ - 500_000)
    rig = Rig(sysfs)
    put_uj(package, 300_000)  # wrapped: 0.5 J + 0.3 J
    rig.tick()
    assert rig.device_cpu_j() == pytest.approx(0.8)
    assert not any("went back" in w for w in rig.warnings)


def test_a_stuck_counter_is_said(sysfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meters_module, "RAPL_STUCK_S", 0.2)
    rig = Rig(sysfs)
    for _ in range(4):
        rig.tick()
        time.sleep(0.1)
    stuck = [w for w in rig.warnings if "has not changed" in w]
    assert len(stuck) == 4  # once per zone: two packages, their DRAM
    assert rig.sampler.snapshot().cpu_s == pytest.approx(0.4)


def test_a_counter_file_that_vanishes(sysfs: Path) -> None:
    """A removed sysfs attribute fails reads on the open file (ENODEV); a counter that is a
    /proc/PID file of a process that then exits fails the same way (ESRCH), for real."""
    holder = subprocess.Popen(["sleep", "60"])
    try:
        counter = zone_file(sysfs, "intel-rapl:1", "energy_uj")
        counter.unlink()
        counter.symlink_to(f"/proc/{holder.pid}/oom_score_adj")
        Path(f"/proc/{holder.pid}/oom_score_adj").write_text("100")
        rig = Rig(sysfs)
        Path(f"/proc/{holder.pid}/oom_score_adj").write_text("600")  # +500 µJ
        rig.tick()
        assert rig.device_cpu_j() == pytest.approx(500e-6)
        holder.kill()
        holder.wait()
        for _ in range(3):
            rig.tick()
    finally:
        holder.kill()
        holder.wait()
    failed = [w for w in rig.warnings if w.startswith("RAPL could not be read")]
    assert len(failed) == 1, rig.warnings  # said once, not every interval
    assert rig.sampler.snapshot().cpu_s == pytest.approx(0.4)  # CPU time still counted
    assert rig.device_cpu_j() == pytest.approx(500e-6)


@pytest.mark.parametrize("error", [pynvml.NVMLError_GpuIsLost, pynvml.NVMLError_Unknown])
def test_nvml_errors_mid_run_cost_only_that_gpu(sysfs: Path, error: type) -> None:
    gpus = [FakeGpu("A100", "GPU-a", energy_mj=1_000_000), FakeGpu("A100", "GPU-b", 2_000_000)]
    for gpu in gpus:
        gpu.compute = [(os.getpid(), 1 << 30)]
    rig = Rig(sysfs, FakeNvml(gpus))
    for gpu in gpus:
        gpu.energy_mj = (gpu.energy_mj or 0) + 10_000
    rig.tick()
    gpus[0].fail = {
        name: error()
        for name in ("nvmlDeviceGetTotalEnergyConsumption", "nvmlDeviceGetComputeRunningProcesses")
    }
    for _ in range(3):
        gpus[1].energy_mj = (gpus[1].energy_mj or 0) + 10_000
        rig.tick()
    totals = rig.sampler.snapshot()
    assert totals.gpus[0].energy_j == pytest.approx(10.0)  # up to the fault
    assert totals.gpus[1].energy_j == pytest.approx(40.0)  # the other GPU: every interval
    assert totals.cpu_s == pytest.approx(0.4)
    assert any("GPU 0" in w for w in rig.warnings), rig.warnings


def test_a_failing_cpu_count_keeps_the_rest_going(sysfs: Path) -> None:
    """Before the fix one failing source failed the whole reading: RAPL energy and GPU were
    lost with it until it read again (and for good if it never did)."""
    package = zone_file(sysfs, "intel-rapl:0", "energy_uj")
    rig = Rig(sysfs)
    rig.tick()
    rig.tree.broken = OSError(19, "No such device")  # what a removed cgroup's cpu.stat gives
    put_uj(package, 3_000_000)
    rig.tick()
    rig.tick()
    assert rig.device_cpu_j() == pytest.approx(2.0)
    assert rig.sampler.snapshot().cpu_s == pytest.approx(0.1)
    assert [w for w in rig.warnings if w.startswith("tree CPU time could not be read")]


@pytest.fixture(autouse=True)
def _no_stray_children() -> Iterator[None]:
    yield
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
