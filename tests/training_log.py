"""A training run's log as the real writer writes it: RAPL CPU and DRAM, one GPU, grid intensity
changing every 30 minutes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from carbonwrap.runlog import records as events
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def write_log(
    directory: Path,
    run_id: str,
    *,
    t0: float = T0,
    samples: int = 720,
    step_s: float = 10.0,
    argv: list[str] | None = None,
    host: str = "gpu-node-07",
    tags: dict[str, str] | None = None,
    measured: bool = True,
    end: bool = True,
) -> Path:
    """A training run as the real writer logs it: RAPL CPU and DRAM, one NVML GPU whose power
    dips during evaluation every 20 minutes, grid intensity changing every 30 minutes and (with
    `measured`) measured history for the first hour arriving at the end."""
    log = EventLog(str(directory), f"carbonwrap-{run_id}.jsonl")
    gpu = {"index": 0, "name": "NVIDIA A100-SXM4-40GB", "uuid": "GPU-1",
           "energy_method": "nvml-counter", "mig": False}  # fmt: skip
    log.write(
        events.start(
            run_id=run_id, time_s=t0, argv=argv or ["python", "train.py", "--epochs", "3"],
            cwd="/home/ada/project", host=host, pid=4242, versions={"carbonwrap": "0.1.0"},
            cpu_accounting="cgroup2",
            components={
                "cpu": {"method": "rapl", "basis": "1 package zone(s); share = tree CPU time / "
                        "all CPUs' busy time"},
                "dram": {"method": "rapl", "basis": "dram zone(s); same CPU-time share"},
                "gpu": {"method": "nvml-counter", "basis": "per GPU and interval: sole user",
                        "devices": [gpu]},
            },
            region={"code": "DK-DK1", "kind": "zone", "source": "flag", "detail": ""},
            pue=1.2, interval_s=1.0, log_interval_s=step_s, job={}, tags=tags or {},
        )
    )  # fmt: skip
    energy = {"cpu": 0.0, "dram": 0.0, "gpu": 0.0}
    values = (180.0, 150.0, 120.0, 160.0)
    for i in range(samples + 1):
        t = i * step_s
        if t % 1800 == 0 and (t // 1800) < len(values) * 10:
            log.write(
                events.intensity(
                    time_s=t0 + t, elapsed_s=t, intensity_g_per_kwh=values[int(t // 1800) % 4],
                    region="DK-DK1", source="Energi Data Service", kind="latest",
                )
            )  # fmt: skip
        if i == 0:
            continue
        evaluating = (t % 1200) < 120
        energy["cpu"] += step_s * (18.0 if evaluating else 42.0 + 3 * math.sin(t / 300))
        energy["dram"] += step_s * 5.5
        energy["gpu"] += step_s * (85.0 if evaluating else 265.0 + 10 * math.sin(t / 97))
        last = end and i == samples
        build = events.end if last else events.sample
        extra: dict[str, Any] = {}
        if last:
            extra = {"exit_code": 0, "signal": None, "leftover_pids": [], "signals_received": []}
        log.write(
            build(
                time_s=t0 + t, elapsed_s=t, cpu_s=t * 0.9, energy_j=dict(energy),
                device_energy_j={k: 1.4 * v for k, v in energy.items()},
                gpus={0: {"energy_j": energy["gpu"], "device_energy_j": energy["gpu"],
                          "methods": {"sole-user": i}}},
                **extra,
            )
        )  # fmt: skip
        if measured and i == samples:
            log.write(
                events.intensity(
                    time_s=t0 + t, elapsed_s=t, intensity_g_per_kwh=140.0, region="DK-DK1",
                    source="Energi Data Service history", kind="measured", valid_from_s=t0,
                    valid_to_s=t0 + 3600,
                )
            )  # fmt: skip
    log.close()
    return Path(log.path)
