"""Log records from the real constructors, written by the real writer, and a fold of every record
to compare the fast reading with."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from carbonwrap.runlog import records as events
from carbonwrap.runlog.reader import RecordReader
from carbonwrap.runlog.summary import Fold, RunSummary
from carbonwrap.runlog.writer import EventLog

T0 = 1_790_000_000.0  # 2026-09-21T14:13:20Z


def start_record(run_id: str = "abc123", **extra: Any) -> dict[str, Any]:
    record = events.start(
        run_id=run_id,
        time_s=T0,
        argv=["python", "train.py"],
        cwd="/home/u",
        host="node1",
        pid=1,
        versions={"carbonwrap": "0.1.0"},
        cpu_accounting="cgroup2",
        components={"cpu": {"method": "rapl"}, "dram": {"method": "estimate"}},
        region={"code": "DK", "kind": "country", "source": "flag", "detail": ""},
        pue=1.25,
        interval_s=1.0,
        log_interval_s=10.0,
        job={},
        tags={},
    )
    record.update(extra)
    return record


def sample_record(t: float, cpu_j: float, dram_j: float, kind: str = "sample") -> dict[str, Any]:
    build = events.end if kind == "end" else events.sample
    extra: dict[str, Any] = {}
    if kind == "end":
        extra = {"exit_code": 0, "signal": None, "leftover_pids": [], "signals_received": []}
    return build(
        time_s=T0 + t,
        elapsed_s=t,
        cpu_s=t / 2,
        energy_j={"cpu": cpu_j, "dram": dram_j},
        device_energy_j={"cpu": 2 * cpu_j, "dram": 2 * dram_j},
        **extra,
    )


def intensity_record(t: float, value: float, kind: str = "latest", window_s: float = 0) -> Any:
    if kind == "measured":
        return events.intensity(
            time_s=T0 + t,
            elapsed_s=t,
            intensity_g_per_kwh=value,
            region="DK",
            source="history",
            kind="measured",
            valid_from_s=T0 + t - window_s,
            valid_to_s=T0 + t,
        )
    return events.intensity(
        time_s=T0 + t, elapsed_s=t, intensity_g_per_kwh=value, region="DK", source=kind, kind=kind
    )


def write(path: Path, lines: list[Any]) -> Path:
    """Records through the real writer; bytes (damage) written between them as they are."""
    log = EventLog(path.parent, path.name)
    for item in lines:
        if isinstance(item, bytes):
            os.write(log._fd, item)  # what a crash, a disk or another program leaves
        else:
            log.write(item)
    log.close()
    return path


def fold_all(path: Path) -> RunSummary:
    fold = Fold()
    reader = RecordReader(path)
    for record in reader:
        fold.add(record)
    summary = fold.summary()
    summary.log_path = str(path)
    summary.bad_lines = reader.bad_lines
    return summary


FLOAT_FIELDS = ("co2e_g", "intensity_mean_g_per_kwh", "intensity_measured_share")


def assert_same(fast: RunSummary | None, full: RunSummary) -> None:
    """Equal field by field; sums priced in another order may differ in the last bits."""
    assert fast is not None
    for name in FLOAT_FIELDS:
        a, b = getattr(fast, name), getattr(full, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (name, a, b)
    rest = set(RunSummary.__match_args__) - set(FLOAT_FIELDS)
    for name in rest:
        assert getattr(fast, name) == getattr(full, name), name
