"""The report for scripts: a JSON document (carbonwrap.report/2), a CSV of runs, and CodeCarbon's
emissions.csv columns. Pure functions of summaries. The JSON document holds the logs' text
exactly (json.dumps escapes what must be); every CSV cell passes through `csv_cell`. Numbers
are rounded as `render/json.py` rounds them (to what was measured)."""

from __future__ import annotations

import csv
import io
import itertools
import marshal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from carbonwrap.render.json import INTENSITY_DIGITS, job_document, run_document, seconds, sig
from carbonwrap.render.text import csv_row
from carbonwrap.report.model import Group, Place, ReadStats, Report, Totals
from carbonwrap.runlog.ledger import J_PER_KWH
from carbonwrap.runlog.records import job_key
from carbonwrap.runlog.summary import RunSummary

REPORT_SCHEMA = "carbonwrap.report/2"  # /2: each run is a carbonwrap.run/2 document

# CodeCarbon 3.3's emissions.csv header, in its order (EmissionsData in
# codecarbon/output_methods/emissions_data.py, as a 3.3.0 run writes it).
CODECARBON_COLUMNS = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "cloud_provider",
    "cloud_region",
    "os",
    "python_version",
    "codecarbon_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "longitude",
    "latitude",
    "ram_total_size",
    "tracking_mode",
    "cpu_utilization_percent",
    "gpu_utilization_percent",
    "ram_utilization_percent",
    "ram_used_gb",
    "on_cloud",
    "pue",
    "wue",
)

RUN_COLUMNS = (
    "run_id",
    "started_at",
    "ended_at",
    "status",
    "log_complete",
    "exit_code",
    "signal",
    "command",
    "host",
    "cwd",
    "job",
    "duration_s",
    "cpu_seconds",
    "energy_kwh",
    "cpu_energy_kwh",
    "dram_energy_kwh",
    "gpu_energy_kwh",
    "device_energy_kwh",
    "pue",
    "intensity_mean_g_per_kwh",
    "intensity_source",
    "region",
    "co2e_kg",
    "corrupt_lines",
    "log_path",
)


def totals_document(t: Totals) -> dict[str, Any]:
    return {
        "runs": t.runs,
        "incomplete_runs": t.incomplete,
        "failed_runs": t.failed,
        "duration_s": seconds(t.duration_s),
        "cpu_seconds": seconds(t.cpu_s, 6),
        "energy_kwh": sig(t.energy_j / J_PER_KWH),
        "device_energy_kwh": sig(t.device_energy_j / J_PER_KWH),
        "co2e_kg": sig(t.co2e_g / 1000),
    }


def _logs_document(stats: ReadStats) -> dict[str, Any]:
    return {
        "read": stats.logs,
        "incomplete": stats.incomplete,
        "corrupt_lines": stats.bad_lines,
        "not_logs": stats.not_logs,
        "duplicates": stats.duplicates,
        "unreadable": list(stats.unreadable),
        "runs_filtered_out": stats.filtered_out,
    }


def report_document(report: Report, runs: bool = True) -> dict[str, Any]:
    """Energies in kWh before PUE, CO2e in kg with PUE; each run as `run_document` gives it
    (`runs` False: without the runs, which `write_document` takes from the spool)."""
    groups = None
    if report.groups is not None:
        groups = [
            {
                "key": g.key,
                **totals_document(g.totals),
                **({"job": job_document(g.job)} if g.job is not None else {}),
                "run_ids": g.run_ids,
            }
            for g in report.groups
        ]
    document = {
        "schema": REPORT_SCHEMA,
        "filters": report.filters,
        "group_by": report.group_by,
        "logs": _logs_document(report.stats),
        "totals": totals_document(report.totals),
        "groups": groups,
    }
    if runs:
        document["runs"] = [run_document(s) for s in report.runs]
    return document


def run_json(indent: int | None) -> Callable[[RunSummary], bytes]:
    """A run's entry in the document's "runs", as `json.dumps` of the whole document writes it
    (with `indent`: at the depth of the list's items): the spool's encoder."""
    import json

    prefix = " " * (2 * indent) if indent else ""

    def encode(s: RunSummary) -> bytes:
        text = json.dumps(run_document(s), indent=indent)
        if prefix:
            text = prefix + text.replace("\n", "\n" + prefix)  # JSON strings hold no newline
        return text.encode()

    return encode


def write_document(report: Report, write: Callable[[str], object], indent: int | None) -> None:
    """The JSON document (`report_document`) as `json.dumps(…, indent=indent)` writes it, the
    runs taken from `report.spool` where there is one, a thousand at a time."""
    import json

    if report.spool is None:
        write(json.dumps(report_document(report), indent=indent) + "\n")
        return
    head = json.dumps(report_document(report, runs=False), indent=indent)
    if not len(report.spool):
        write(
            head[: -2 if indent else -1] + (',\n  "runs": []\n}\n' if indent else ', "runs": []}\n')
        )
        return
    pad = " " * (indent or 0)
    write(head[:-2] + f',\n{pad}"runs": [\n' if indent else head[:-1] + ', "runs": [')
    between = ",\n" if indent else ", "
    _write_chunks(report.spool.rows(), write, between)
    write(f"\n{pad}]\n}}\n" if indent else "]}\n")


def _write_chunks(rows: Iterator[bytes], write: Callable[[str], object], between: str) -> None:
    first = True
    while chunk := list(itertools.islice(rows, 1000)):
        write(("" if first else between) + between.join(row.decode() for row in chunk))
        first = False


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _kwh(joules: float | None, factor: float = 1.0) -> str:
    return "" if joules is None else repr(sig(joules * factor / J_PER_KWH))


def _sig(value: float | None, digits: int = 6) -> str:
    return "" if value is None else repr(sig(value, digits))


def _write(header: Sequence[str] | None, rows: Iterable[Sequence[str]]) -> str:
    """The one way out of every CSV: each cell, header included, through `csv_cell` (a cell
    from a log cannot run as a spreadsheet formula or reach a terminal as a control sequence)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(csv_row(header))
    writer.writerows(map(csv_row, rows))
    return out.getvalue()


def runs_csv(runs: Sequence[RunSummary]) -> str:
    """One row per run: energies in kWh before PUE, CO2e in kg; a `tag:KEY` column per tag."""
    tag_keys = sorted({key for s in runs for key in s.tags})

    def row(s: RunSummary) -> list[str]:
        return [*_run_cells(s), *(s.tags.get(key, "") for key in tag_keys)]

    return _write([*RUN_COLUMNS, *(f"tag:{key}" for key in tag_keys)], (row(s) for s in runs))


class RunsCsv:
    """`runs_csv` as the runs are read: each run's cells encoded at once (the spool's
    `encode`, and `forget` for one taken out again), the tag columns once every run is known
    (`write`)."""

    def __init__(self) -> None:
        self._tags: dict[str, int] = {}  # tag key -> runs that carry it

    def encode(self, s: RunSummary) -> bytes:
        for key in s.tags:
            self._tags[key] = self._tags.get(key, 0) + 1
        return marshal.dumps((_run_cells(s), s.tags))

    def forget(self, s: RunSummary) -> None:
        for key in s.tags:
            self._tags[key] -= 1
            if not self._tags[key]:
                del self._tags[key]

    def write(self, rows: Iterator[bytes], write: Callable[[str], object]) -> None:
        tag_keys = sorted(self._tags)

        def row(data: bytes) -> list[str]:
            cells, tags = marshal.loads(data)
            return [*cells, *(tags.get(key, "") for key in tag_keys)]

        header = [*RUN_COLUMNS, *(f"tag:{key}" for key in tag_keys)]
        _write_rows(header, map(row, rows), write)


def codecarbon_encoder(place: Callable[[str, str], Place]) -> Callable[[RunSummary], bytes]:
    """A run's row of CodeCarbon's CSV, encoded for the spool (`place`: a grid region's, by
    code and kind); `write_codecarbon` writes the rows out."""

    def encode(s: RunSummary) -> bytes:
        code = s.region.get("code", "")
        return marshal.dumps(_codecarbon_row(s, {code: place(code, s.region.get("kind", ""))}))

    return encode


def write_codecarbon(rows: Iterator[bytes], write: Callable[[str], object]) -> None:
    _write_rows(CODECARBON_COLUMNS, map(marshal.loads, rows), write)


def _write_rows(
    header: Sequence[str], rows: Iterator[Sequence[str]], write: Callable[[str], object]
) -> None:
    """`_write`, a thousand rows at a time."""
    write(_write(header, ()))
    while chunk := list(itertools.islice(rows, 1000)):
        write(_write(None, chunk))


def _run_cells(s: RunSummary) -> list[str]:
    """A run's cells of `runs_csv`, its tags apart."""
    energy = {name: c.energy_j for name, c in s.components.items()}
    return [
        s.run_id,
        s.started_at,
        s.ended_at or "",
        s.status,
        "true" if s.complete else "false",
        _number(s.exit_code),
        s.signal or "",
        s.command_line or "",
        s.host,
        s.cwd,
        job_key(s.job) or "",
        _number(seconds(s.duration_s)),
        _number(seconds(s.cpu_s, 6)),
        _kwh(s.energy_j),
        _kwh(energy.get("cpu")),
        _kwh(energy.get("dram")),
        _kwh(energy.get("gpu")),
        _kwh(s.device_energy_j),
        _sig(s.pue),
        _sig(s.intensity_mean_g_per_kwh, INTENSITY_DIGITS),
        "; ".join(s.intensity_sources),
        s.region.get("code", ""),
        _sig(s.co2e_g / 1000),
        str(s.bad_lines),
        s.log_path or "",
    ]


def groups_csv(groups: Sequence[Group], group_by: str) -> str:
    """One row per group: its key and the sums of its runs (kWh before PUE, kg with PUE)."""
    header = [group_by, *totals_document(Totals())]
    rows = ([g.key, *map(_number, totals_document(g.totals).values())] for g in groups)
    return _write(header, rows)


def codecarbon_csv(runs: Sequence[RunSummary], places: Mapping[str, Place]) -> str:
    """CodeCarbon's emissions.csv, one row per run, as its dashboards read it. As CodeCarbon
    does, energies include PUE and power does not; what carbonwrap does not record stays empty."""
    return _write(CODECARBON_COLUMNS, (_codecarbon_row(s, places) for s in runs))


def _codecarbon_row(s: RunSummary, places: Mapping[str, Place]) -> list[str]:
    place = places.get(s.region.get("code", ""), Place())
    when = (s.ended_at or s.started_at)[:19]  # UTC, in CodeCarbon's %Y-%m-%dT%H:%M:%S
    duration = s.duration_s
    energy = {name: c.energy_j for name, c in s.components.items()}

    def power(name: str) -> str:
        joules = energy.get(name)
        return "" if joules is None or duration <= 0 else _sig(joules / duration)

    names = Counter(g.name for g in s.gpus.values() if g.name)
    values = {
        "timestamp": when,
        "project_name": s.tags.get("project", ""),
        "run_id": s.run_id,
        "experiment_id": s.tags.get("experiment", ""),
        "duration": repr(seconds(duration)),
        "emissions": _sig(s.co2e_g / 1000),
        "emissions_rate": _sig(s.co2e_g / 1000 / duration) if duration > 0 else "",
        "cpu_power": power("cpu"),
        "gpu_power": power("gpu"),
        "ram_power": power("dram"),
        "cpu_energy": _kwh(energy.get("cpu"), s.pue),
        "gpu_energy": _kwh(energy.get("gpu"), s.pue),
        "ram_energy": _kwh(energy.get("dram"), s.pue),
        "energy_consumed": _kwh(s.energy_j, s.pue),
        "country_name": place.country_name,
        "country_iso_code": place.country_iso_code,
        "region": place.region,
        "cloud_provider": place.cloud_provider,
        "cloud_region": place.cloud_region,
        "gpu_count": str(len(s.gpus)) if s.gpus else "",
        "gpu_model": ", ".join(f"{n} x {name}" for name, n in sorted(names.items())),
        "longitude": place.longitude,
        "latitude": place.latitude,
        "tracking_mode": "process",  # the command's own process tree, not the machine
        "on_cloud": place.on_cloud,
        "pue": _sig(s.pue),
    }
    return [values.get(column, "") for column in CODECARBON_COLUMNS]
