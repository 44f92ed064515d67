"""The log's records: start, sample, intensity, progress, warning, end. Units are in the key
names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

LOG_SCHEMA = "carbonwrap.log/1"
Record = dict[str, Any]

# Job metadata worth keeping: schedulers and launchers that tie ranks of one job together.
JOB_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_PROCID",
    "SLURM_NODEID",
    "SLURM_CLUSTER_NAME",
    "PBS_JOBID",
    "LSB_JOBID",
    "TORCHELASTIC_RUN_ID",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_RANK",
    "PMI_SIZE",
    "PMIX_NAMESPACE",  # Open MPI 5: one per job
    "OMPI_MCA_ess_base_jobid",  # Open MPI 4
)


def utc_iso(timestamp_s: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-27T06:29:42.123Z."""
    moment = dt.datetime.fromtimestamp(timestamp_s, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: object) -> float | None:
    """Epoch seconds of an ISO 8601 time as `utc_iso` writes it; None for anything else."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def job_metadata(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in JOB_VARIABLES if name in environ}


def start(
    *,
    run_id: str,
    time_s: float,
    argv: Sequence[str] | None,
    cwd: str,
    host: str,
    pid: int,
    versions: Mapping[str, str],
    cpu_accounting: str,
    components: Mapping[str, Mapping[str, Any]],
    region: Mapping[str, str],
    pue: float,
    interval_s: float,
    log_interval_s: float,
    job: Mapping[str, str],
    tags: Mapping[str, str],
    schedule: Mapping[str, Any] | None = None,
) -> Record:
    """`schedule`: the carbon-aware start (`schedule.decide`), only for runs that asked."""
    record: Record = {
        "type": "start",
        "schema": LOG_SCHEMA,
        "run_id": run_id,
        "time": utc_iso(time_s),
        "argv": list(argv) if argv is not None else None,
        "cwd": cwd,
        "host": host,
        "pid": pid,
        "versions": dict(versions),
        "cpu_accounting": cpu_accounting,
        "components": {name: dict(info) for name, info in components.items()},
        "region": dict(region),
        "pue": pue,
        "interval_s": interval_s,
        "log_interval_s": log_interval_s,
        "job": dict(job),
        "tags": dict(tags),
    }
    if schedule is not None:
        record["schedule"] = dict(schedule)
    return record


def sample(
    *,
    time_s: float,
    elapsed_s: float,
    cpu_s: float,
    energy_j: Mapping[str, float],
    device_energy_j: Mapping[str, float],
    gpus: Mapping[int, Mapping[str, Any]] | None = None,
) -> Record:
    """Cumulative totals since the start: a log cut anywhere still sums correctly.

    `gpus`: device index -> {energy_j, device_energy_j, methods: {method: intervals}}.
    """
    record: Record = {
        "type": "sample",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "cpu_s": round(cpu_s, 6),
        "energy_j": {k: round(v, 6) for k, v in energy_j.items()},
        "device_energy_j": {k: round(v, 6) for k, v in device_energy_j.items()},
    }
    if gpus:
        record["gpus"] = {
            str(index): {
                "energy_j": round(gpu["energy_j"], 6),
                "device_energy_j": round(gpu["device_energy_j"], 6),
                "methods": dict(gpu["methods"]),
            }
            for index, gpu in gpus.items()
        }
    return record


def intensity(
    *,
    time_s: float,
    elapsed_s: float,
    intensity_g_per_kwh: float,
    region: str,
    source: str,
    signal: str = "average",
    kind: str = "static",
    valid_from_s: float | None = None,
    valid_to_s: float | None = None,
    reason: str | None = None,
) -> Record:
    """An intensity value. Kinds static, latest and forecast are in force from this record on,
    until the next one; kind measured revises the past window [valid_from, valid_to)."""
    record: Record = {
        "type": "intensity",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "intensity_g_per_kwh": intensity_g_per_kwh,
        "region": region,
        "source": source,
        "signal": signal,
        "kind": kind,
    }
    if valid_from_s is not None and valid_to_s is not None:
        record["valid_from"] = utc_iso(valid_from_s)
        record["valid_to"] = utc_iso(valid_to_s)
    if reason is not None:
        record["reason"] = reason
    return record


def progress(
    *,
    time_s: float,
    elapsed_s: float,
    done: float,
    total: float | None,
    unit: str,
    source: str,
) -> Record:
    """How far the command says it is: `done` of `total` `unit`s ("epoch", "step", or
    "fraction" with total 1.0; total None when unknown), from `source` ("channel": the
    CARBONWRAP_PROGRESS channel; "output": recognised in the command's output)."""
    return {
        "type": "progress",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "done": done,
        "total": total,
        "unit": unit,
        "source": source,
    }


def warning(*, time_s: float, elapsed_s: float, message: str) -> Record:
    return {
        "type": "warning",
        "time": utc_iso(time_s),
        "elapsed_s": round(elapsed_s, 3),
        "message": message,
    }


def end(
    *,
    time_s: float,
    elapsed_s: float,
    exit_code: int,
    signal: str | None,
    cpu_s: float,
    energy_j: Mapping[str, float],
    device_energy_j: Mapping[str, float],
    leftover_pids: Sequence[int],
    signals_received: Sequence[str],
    gpus: Mapping[int, Mapping[str, Any]] | None = None,
) -> Record:
    record = sample(
        time_s=time_s,
        elapsed_s=elapsed_s,
        cpu_s=cpu_s,
        energy_j=energy_j,
        device_energy_j=device_energy_j,
        gpus=gpus,
    )
    record.update(
        type="end",
        exit_code=exit_code,
        signal=signal,
        leftover_pids=list(leftover_pids),
        signals_received=list(signals_received),
    )
    return record
