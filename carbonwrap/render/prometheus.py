"""A run's state so far → Prometheus text exposition format (0.0.4), as node_exporter's textfile
collector reads it.

The classic text format, not OpenMetrics: node_exporter parses textfiles with expfmt's
TextParser, which knows no `# EOF`, `# UNIT` or exemplars, and it skips a whole file whose
samples carry timestamps. See https://prometheus.io/docs/instrumenting/exposition_formats/ and
node_exporter's collector/textfile.go.

HELP and TYPE lines are part of the interface: node_exporter fails the scrape of a family whose
HELP differs between two .prom files (two runs, two carbonwrap versions), so change them only
with care. Every family keeps the same label names in every file for the same reason.

Every series carries the run's job: `job_key` (`records.job_key`: cluster, job id, array task,
step), `user` and `partition` (Slurm's SLURM_JOB_USER and SLURM_JOB_PARTITION), empty outside a
job, so that a cluster's monitoring sums a job over its nodes (`sum by (job_key)
(carbonwrap_energy_joules_total)`; the device series only from each node's leader). Not `job`:
Prometheus gives every scraped series its own `job` label (the scrape job) and would rename
ours to `exported_job`.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class ComponentPoint(NamedTuple):
    """One component (cpu, dram, gpu). Units: joules, watts. None: not measured / not known."""

    name: str
    method: str
    energy_j: float | None
    device_energy_j: float | None
    power_w: float | None  # mean since the previous write; None at the first write, after the end


class PromSnapshot(NamedTuple):
    """What the file says. Units: seconds (start time: Unix epoch), grams, g/kWh."""

    run_id: str
    host: str
    program: str  # the command's program name only: its arguments may hold secrets
    version: str
    cpu_accounting: str
    start_time_s: float | None
    elapsed_s: float
    cpu_s: float
    components: list[ComponentPoint]
    pue: float
    co2e_g: float
    # value (g/kWh), region, source, signal; None before any intensity is known
    intensity: tuple[float, str, str, str] | None
    ended: bool
    exit_code: int | None
    job: tuple[str, str, str] = ("", "", "")  # job key, user, partition; "" outside a job


# name, type, help; in the order they appear in the file
_FAMILIES = {
    "run_info": (
        "gauge",
        "Always 1: a carbonwrap run, labelled with its program name (no arguments), carbonwrap "
        "version and CPU time accounting.",
    ),
    "run_start_time_seconds": ("gauge", "When the run started, Unix time."),
    "run_duration_seconds": ("gauge", "Time since the run started (its length once ended)."),
    "run_ended": ("gauge", "1 once the command has exited and the values are final, else 0."),
    "run_exit_code": (
        "gauge",
        "The command's exit status (128+N if killed by signal N); present once ended.",
    ),
    "cpu_seconds_total": ("counter", "CPU time used by the command's process tree."),
    "component_info": (
        "gauge",
        "Always 1: how each component's energy is measured (rapl, estimate, nvml-counter, ...; "
        "unavailable: reason).",
    ),
    "energy_joules_total": (
        "counter",
        "Energy attributed to the command's process tree, per component, before PUE.",
    ),
    "device_energy_joules_total": (
        "counter",
        "Energy of the whole devices the tree used, per component, before PUE: the upper bound.",
    ),
    "power_watts": (
        "gauge",
        "Mean power attributed to the process tree since the previous update of this file, "
        "per component; absent once ended.",
    ),
    "pue": ("gauge", "Power usage effectiveness applied to CO2e."),
    "co2e_grams": (
        "gauge",
        "CO2-equivalent emissions of the run so far, PUE included. A gauge, not a counter: "
        "measured intensity history can revise it down.",
    ),
    "intensity_grams_per_kwh": (
        "gauge",
        "Grid carbon intensity in force (gCO2e/kWh), with its region, source and signal.",
    ),
}

PREFIX = "carbonwrap_"
Labels = tuple[tuple[str, str], ...]  # (name, value) in the order written


def render_prometheus(s: PromSnapshot) -> str:
    """The whole file: one HELP and TYPE per family that has samples, a newline at the end."""
    job_key, user, partition = s.job
    run: Labels = (
        ("run_id", s.run_id),
        ("host", s.host),
        ("job_key", job_key),
        ("user", user),
        ("partition", partition),
    )
    samples: dict[str, list[tuple[Labels, float]]] = {name: [] for name in _FAMILIES}
    info: Labels = (
        ("program", s.program),
        ("version", s.version),
        ("cpu_accounting", s.cpu_accounting),
    )
    samples["run_info"].append(((*run, *info), 1.0))
    if s.start_time_s is not None:
        samples["run_start_time_seconds"].append((run, s.start_time_s))
    samples["run_duration_seconds"].append((run, s.elapsed_s))
    samples["run_ended"].append((run, 1.0 if s.ended else 0.0))
    if s.ended and s.exit_code is not None:
        samples["run_exit_code"].append((run, float(s.exit_code)))
    samples["cpu_seconds_total"].append((run, s.cpu_s))
    for c in s.components:
        labels: Labels = (*run, ("component", c.name))
        samples["component_info"].append(((*labels, ("method", c.method)), 1.0))
        if c.energy_j is not None:  # not measured: no series, never a silent zero
            samples["energy_joules_total"].append((labels, c.energy_j))
        if c.device_energy_j is not None:
            samples["device_energy_joules_total"].append((labels, c.device_energy_j))
        if c.power_w is not None and not s.ended:
            samples["power_watts"].append((labels, c.power_w))
    samples["pue"].append((run, s.pue))
    samples["co2e_grams"].append((run, s.co2e_g))
    if s.intensity is not None:
        value, region, source, signal = s.intensity
        labels = (*run, ("region", region), ("source", source), ("signal", signal))
        samples["intensity_grams_per_kwh"].append((labels, value))
    lines: list[str] = []
    for name, (kind, help_text) in _FAMILIES.items():
        if not samples[name]:
            continue
        full = PREFIX + name
        lines.append(f"# HELP {full} {escape_help(help_text)}")
        lines.append(f"# TYPE {full} {kind}")
        for labels, number in samples[name]:
            pairs = ",".join(f'{key}="{escape_label(value)}"' for key, value in labels)
            lines.append(f"{full}{{{pairs}}} {format_value(number)}")
    return "\n".join(lines) + "\n"


def escape_label(value: str) -> str:
    """A label value between double quotes: backslash, double quote and line feed escaped (the
    only three the format defines); text that is not valid UTF-8 (undecodable bytes of argv,
    kept by Python as lone surrogates) gets U+FFFD instead, since the file must be UTF-8."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in value)
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text: backslash and line feed escaped (a double quote stays as it is)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(number: float) -> str:
    """A sample value Go's ParseFloat and Prometheus read back exactly (shortest repr)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return repr(float(number))
