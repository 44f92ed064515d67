"""The final report as a JSON document for scripts (schema carbonwrap.run/1)."""

from __future__ import annotations

from typing import Any

from carbonwrap.runlog.ledger import J_PER_KWH
from carbonwrap.runlog.summary import COMPONENTS, RunSummary

RUN_SCHEMA = "carbonwrap.run/1"


def _kwh(joules: float | None) -> float | None:
    return None if joules is None else joules / J_PER_KWH


def run_document(s: RunSummary) -> dict[str, Any]:
    """Energies in kWh before PUE (`null` = not measured, see `methods`); CO2e in kg."""
    energy: dict[str, float | None] = {}
    device: dict[str, float | None] = {}
    methods: dict[str, str] = {}
    for name in COMPONENTS:
        component = s.components.get(name)
        energy[name] = _kwh(component.energy_j) if component else None
        device[name] = _kwh(component.device_energy_j) if component else None
        methods[name] = component.method if component else "unavailable: not recorded"
    energy["total"] = s.energy_j / J_PER_KWH
    device["total"] = s.device_energy_j / J_PER_KWH
    document: dict[str, Any] = {
        "schema": RUN_SCHEMA,
        "run_id": s.run_id,
        "command": s.command,
        "exit_code": s.exit_code,
        "signal": s.signal,
        "status": s.status,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "duration_s": s.duration_s,
        "host": s.host,
        "cpu_seconds": s.cpu_s,
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
                "energy_method": g.energy_method,
                "mig": g.mig,
                "energy_kwh": g.energy_j / J_PER_KWH,
                "device_energy_kwh": g.device_energy_j / J_PER_KWH,
                "attribution_methods": g.methods,
            }
            for g in sorted(s.gpus.values(), key=lambda g: g.index)
        ],
        "pue": s.pue,
        "intensity": {
            "mean_g_per_kwh": s.intensity_mean_g_per_kwh,
            "min_g_per_kwh": s.intensity_min_g_per_kwh,
            "max_g_per_kwh": s.intensity_max_g_per_kwh,
            "source": "; ".join(s.intensity_sources),
            "signals": s.intensity_signals,
            "measured_share": s.intensity_measured_share,
            "region": s.region.get("code"),
            "region_source": s.region.get("source"),
        },
        "co2e_kg": s.co2e_g / 1000,
        "leftover_pids": s.leftover_pids,
        "notes": s.notes,
        "tags": s.tags,
        "job": s.job,
        "log_path": s.log_path,
    }
    if s.escaped_pids:  # only runs whose processes left their cgroup
        document["escaped_pids"] = s.escaped_pids
    if s.schedule is not None:  # only runs that asked for a carbon-aware start
        document["schedule"] = s.schedule
    if s.predictions or s.budget is not None:  # only runs that reported progress or had --budget
        from carbonwrap.render.prediction import budget_document, prediction_document

        document["prediction"] = prediction_document(s)
        document["budget"] = budget_document(s)
    if s.stopped is not None:
        document["stopped"] = s.stopped
    if s.command_cut is not None:  # the log holds only the command's beginning
        document["command_cut"] = s.command_cut  # {arguments, bytes} left out
    return document
