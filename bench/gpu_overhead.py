"""CPU cost of GPU sampling on the Python side: one sampler tick with N fake GPUs.

The fake NVML (tests/fake_nvml.py) answers instantly, so this measures carbonwrap's own work per
tick (sensor bookkeeping, attribution, totals) — not the driver's time per NVML call, which only
a real GPU can show (bench/gpu_check.py). Prints µs per tick and the share of one core at the
default 1 s interval.

    PYTHONPATH=.:tests python3 bench/gpu_overhead.py [--gpus 8] [--processes 6] [--ticks 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

from fake_nvml import FakeGpu, FakeNvml  # noqa: E402

from carbonwrap.measure.meters import Meters  # noqa: E402
from carbonwrap.measure.proctree import ProcessTreeAccounting  # noqa: E402
from carbonwrap.measure.sampler import Sampler  # noqa: E402


class StaticTree(ProcessTreeAccounting):
    """The tree as a fixed PID set, so the tick measures GPU work, not /proc walking."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__()
        self._pids = pids

    def cpu_s(self) -> float:
        return 0.0

    def pids(self) -> list[int]:
        return self._pids


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--processes", type=int, default=6, help="per GPU, half of them ours")
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args()
    gpus = [FakeGpu(f"Fake GPU {i}", f"GPU-{i:08x}", energy_mj=0) for i in range(args.gpus)]
    ours = list(range(1000, 1000 + args.processes // 2))
    for gpu in gpus:
        gpu.compute = [(pid, 1 << 30) for pid in range(1000, 1000 + args.processes)]
    nvml = FakeNvml(gpus)
    acct = StaticTree(ours)
    with tempfile.TemporaryDirectory() as sysfs:
        meters = Meters({"CARBONWRAP_SYSFS_ROOT": sysfs}, {}, nvml=nvml)
        sampler = Sampler(lambda: meters.read(acct), meters.model, 1, 10, print, print)
        stamp = 10**15
        start_cpu = time.process_time()
        for _ in range(args.ticks):
            stamp += 1_000_000
            for gpu in gpus:
                gpu.energy_mj = (gpu.energy_mj or 0) + 300_000
                gpu.util = [(pid, stamp, 40) for pid in range(1000, 1000 + args.processes)]
            sampler.tick()
        per_tick_us = (time.process_time() - start_cpu) / args.ticks * 1e6
        meters.close()
    print(f"machine: {os.uname().sysname} {os.uname().release} · {os.cpu_count()} CPUs")
    print(
        f"{args.gpus} fake GPUs × {args.processes} processes: {per_tick_us:.0f} µs CPU per tick "
        f"(whole reading incl. /proc/stat), {per_tick_us / 1e6 * 100:.3f} % of one core at 1 s"
    )


if __name__ == "__main__":
    main()
