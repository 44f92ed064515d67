"""The final report as a JSON document for scripts (schema carbonwrap.run/2), its numbers
rounded to what was measured."""

from __future__ import annotations

from carbonwrap.runlog.ledger import J_PER_KWH
from carbonwrap.runlog.summary import COMPONENTS, RunSummary

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from typing import Any

    from carbonwrap.report.model import JobFigures

# /2: `status` is how the command ended (ok, failed, killed, stopped, incomplete); whether the
# log is complete is `log_complete` (/1's status said only that: "complete"/"incomplete").
RUN_SCHEMA = "carbonwrap.run/2"
OUTCOMES = ("ok", "failed", "killed", "stopped", "incomplete")

# Significant digits kept. Energy and CO2e: 6, far finer than any sensor's accuracy and the
# log's µJ counters, yet no float noise (2001.0252001388889 kWh is 2001.03). Intensities: 5
# (472.94 g/kWh, as tables and providers give them). Times are rounded to the log's
# resolution instead: elapsed ms, CPU µs.
DIGITS = 6
INTENSITY_DIGITS = 5


def sig(value: float | None, digits: int = DIGITS) -> float | None:
    """`value` to `digits` significant digits; None stays None."""
    if value is None or value == 0:
        return value
    return float(f"{value:.{digits}g}")


def seconds(value: float | None, places: int = 3) -> float | None:
    """A time to the log's resolution (elapsed: ms; CPU time: `places` 6, µs)."""
    return None if value is None else round(value, places)


def rounded(value: Any, key: str = "") -> Any:
    """Every float of a (nested) document rounded by its key: `*_s` to ms, `*_g_per_kwh` to
    5 significant digits, others to 6; ints, text, booleans and None as they are."""
    if isinstance(value, float):
        if key.endswith("_s"):
            return seconds(value)
        return sig(value, INTENSITY_DIGITS if key.endswith("_g_per_kwh") else DIGITS)
    if isinstance(value, dict):
        return {k: rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, key) for v in value]
    return value


def _kwh(joules: float | None) -> float | None:
    return None if joules is None else sig(joules / J_PER_KWH)


def run_document(s: RunSummary) -> dict[str, Any]:
    """Energies in kWh before PUE (`null` = not measured, see `methods`); CO2e in kg. Numbers
    rounded to what was measured (`sig`, `seconds`)."""
    energy: dict[str, float | None] = {}
    device: dict[str, float | None] = {}
    methods: dict[str, str] = {}
    for name in COMPONENTS:
        component = s.components.get(name)
        energy[name] = _kwh(component.energy_j) if component else None
        device[name] = _kwh(component.device_energy_j) if component else None
        methods[name] = component.method if component else "unavailable: not recorded"
    energy["total"] = _kwh(s.energy_j)
    device["total"] = _kwh(s.device_energy_j)
    document: dict[str, Any] = {
        "schema": RUN_SCHEMA,
        "run_id": s.run_id,
        "command": s.command,
        "exit_code": s.exit_code,
        "signal": s.signal,
        "status": s.status,
        "log_complete": s.complete,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "duration_s": seconds(s.duration_s),
        "host": s.host,
        "cpu_seconds": seconds(s.cpu_s, 6),
        "cpu_accounting": s.cpu_accounting,
        "energy_kwh": energy,
        "device_energy_kwh": device,
        "methods": methods,
        "bases": {name: c.basis for name, c in s.components.items() if c.basis},
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "uuid": g.uuid,
                "vendor": g.vendor,
                "energy_method": g.energy_method,
                "mig": g.mig,
                "energy_kwh": _kwh(g.energy_j),
                "device_energy_kwh": _kwh(g.device_energy_j),
                "attribution_methods": g.methods,
            }
            for g in sorted(s.gpus.values(), key=lambda g: g.index)
        ],
        "pue": sig(s.pue),
        "intensity": {
            "mean_g_per_kwh": sig(s.intensity_mean_g_per_kwh, INTENSITY_DIGITS),
            "min_g_per_kwh": sig(s.intensity_min_g_per_kwh, INTENSITY_DIGITS),
            "max_g_per_kwh": sig(s.intensity_max_g_per_kwh, INTENSITY_DIGITS),
            "source": "; ".join(s.intensity_sources),
            "signals": s.intensity_signals,
            "measured_share": sig(s.intensity_measured_share),
            "region": s.region.get("code"),
            "region_source": s.region.get("source"),
        },
        "co2e_kg": sig(s.co2e_g / 1000),
        "leftover_pids": s.leftover_pids,
        "notes": s.notes,
        "tags": s.tags,
        "job": s.job,
        "log_path": s.log_path,
    }
    if s.node_role:  # in a job: whether its log holds the node's whole-device figures
        document["node_role"] = s.node_role
    if s.kind != "command":  # a block measured in-process (`carbonwrap.track`): "block"
        document["kind"] = s.kind
    if s.escaped_pids:  # only runs whose processes left their cgroup
        document["escaped_pids"] = s.escaped_pids
    if s.schedule is not None:  # only runs that asked for a carbon-aware start
        document["schedule"] = rounded(s.schedule)
    if s.predictions or s.budget is not None:  # only runs that reported progress or had --budget
        from carbonwrap.render.prediction import budget_document, prediction_document

        document["prediction"] = rounded(prediction_document(s))
        document["budget"] = rounded(budget_document(s))
    per_unit = s.per_unit
    if per_unit is not None:  # only runs that reported progress in a unit (epoch, step, …)
        document["per_unit"] = rounded(per_unit)
    if s.stopped is not None:
        document["stopped"] = s.stopped
    if s.command_cut is not None:  # the log holds only the command's beginning
        document["command_cut"] = s.command_cut  # {arguments, bytes} left out
    return document


def job_document(job: JobFigures) -> dict[str, Any]:
    """A job group's extent for `report --json` (its energies are the group's totals; the
    device energy there is each node's once, from its leader's log): nodes, tasks, leaders,
    the Slurm job (step) id and cluster, and Slurm's own ConsumedEnergyRaw in kWh (null where
    sacct was absent, failed or has none)."""
    return {
        "nodes": job.nodes,
        "tasks": job.tasks,
        "leaders": job.leaders,
        "slurm_job_id": job.slurm_job_id or None,
        "cluster": job.cluster or None,
        "sacct_energy_kwh": _kwh(job.sacct_energy_j),
    }
