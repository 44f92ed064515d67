"""GPU energy through the whole pipeline: a fake NVML passed into the meters, a real child in a
real cgroup (or the process-tree fallback), the sampler, the log records, the fold, the reports."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from fake_nvml import FakeGpu, FakeNvml

from carbonwrap.measure.accounting import TreeAccounting, open_accounting
from carbonwrap.measure.meters import Meters
from carbonwrap.measure.sampler import Sampler
from carbonwrap.render.final import render_text, report_view
from carbonwrap.render.json import run_document
from carbonwrap.run.child import Child
from carbonwrap.run.context import gpu_totals as _gpus
from carbonwrap.runlog import records as events
from carbonwrap.runlog.summary import Fold

FOREIGN_PID = 4_000_000  # above pid_max: can never be one of ours
GB = 1_000_000_000


@pytest.fixture
def acct() -> TreeAccounting:
    accounting, _ = open_accounting("auto", f"test-{os.getpid()}")
    return accounting


def test_gpu_energy_attributed_through_the_pipeline(tmp_path: Path, acct: TreeAccounting) -> None:
    h100 = FakeGpu("NVIDIA H100 80GB HBM3", "GPU-aaaa", energy_mj=1_000_000)
    idle = FakeGpu("NVIDIA H100 80GB HBM3", "GPU-bbbb", energy_mj=5_000_000)
    nvml = FakeNvml([h100, idle])
    meters = Meters({"CARBONWRAP_SYSFS_ROOT": str(tmp_path)}, {}, nvml=nvml)
    assert meters.components["gpu"]["method"] == "nvml-counter"
    assert [d["uuid"] for d in meters.components["gpu"]["devices"]] == ["GPU-aaaa", "GPU-bbbb"]
    sampler = Sampler(lambda: meters.read(acct), meters.model, 60, 60, lambda t: None, print)
    child = Child(["sleep", "30"], dict(os.environ), acct.placement())
    acct.started(child.pid)
    try:
        # Interval 1: we and a foreign process share GPU 0; SM samples 60 % vs 20 %.
        h100.compute = [(child.pid, 1 * GB), (FOREIGN_PID, 3 * GB)]
        h100.add_util(child.pid, 10**15 + 1, 60)
        h100.add_util(FOREIGN_PID, 10**15 + 2, 20)
        h100.energy_mj += 100_000
        idle.energy_mj += 40_000  # not ours: never charged, not even as device energy
        sampler.tick()
        # Interval 2: the foreign process left during it (held a context at its start), no
        # samples: memory share, 1 of 4 GB.
        h100.compute = [(child.pid, 1 * GB)]
        h100.energy_mj += 50_000
        sampler.tick()
        # Interval 3: only we hold a context: the whole device, idle included.
        h100.energy_mj += 50_000
        sampler.tick()
        # Interval 4: the foreign process is back, no samples: memory share again.
        h100.compute = [(child.pid, 1 * GB), (FOREIGN_PID, 3 * GB)]
        h100.energy_mj += 80_000
        sampler.tick()
    finally:
        child.restore_signals()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        acct.finish()
        meters.close()
    totals = sampler.snapshot()
    gpu0, gpu1 = totals.gpus[0], totals.gpus[1]
    assert gpu0.energy_j == pytest.approx(75 + 12.5 + 50 + 20)
    assert gpu0.device_energy_j == pytest.approx(100 + 50 + 50 + 80)
    assert gpu0.methods == {"sm-share": 1, "memory-share": 2, "sole-user": 1}
    assert gpu1.energy_j == 0 and gpu1.device_energy_j == 0
    assert totals.energy_j["gpu"] == pytest.approx(157.5)

    # The records carry it, the fold reads it back, the reports show it.
    fold = Fold()
    fold.add(
        events.start(
            run_id="r", time_s=0, argv=["train"], cwd="/", host="h", pid=1, versions={},
            cpu_accounting=acct.method, components=meters.components,
            region={"code": "WORLD"}, pue=1.0, interval_s=1, log_interval_s=10, job={}, tags={},
        )
    )  # fmt: skip
    fold.add(
        events.intensity(
            time_s=0, elapsed_s=0, intensity_g_per_kwh=400.0, region="WORLD", source="t"
        )
    )
    fold.add(
        events.end(
            time_s=1, elapsed_s=totals.elapsed_s, exit_code=0, signal=None, cpu_s=totals.cpu_s,
            energy_j=totals.energy_j, device_energy_j=totals.device_energy_j,
            leftover_pids=[], signals_received=[], gpus=_gpus(totals),
        )
    )  # fmt: skip
    summary = fold.summary()
    doc = run_document(summary)
    by_index = {g["index"]: g for g in doc["gpus"]}
    assert by_index[0]["uuid"] == "GPU-aaaa"
    assert by_index[0]["energy_kwh"] * 3.6e6 == pytest.approx(157.5)
    assert by_index[0]["device_energy_kwh"] * 3.6e6 == pytest.approx(280)
    assert by_index[1]["attribution_methods"] == {"not-in-use": 4}
    assert doc["energy_kwh"]["gpu"] * 3.6e6 == pytest.approx(157.5)
    text = render_text(report_view(summary))
    assert "GPU 0 NVIDIA H100 80GB HBM3" in text
    assert "GPU 1" in text and "not used by the command" in text


def test_no_gpu_here_reports_unavailable_with_reason(tmp_path: Path) -> None:
    meters = Meters({"CARBONWRAP_SYSFS_ROOT": str(tmp_path)}, {})
    try:
        method = meters.components["gpu"]["method"]
    finally:
        meters.close()
    assert method.startswith("unavailable: ")
    assert len(method) > len("unavailable: ") + 10
