"""The run command: start the child, sample its energy, log events, report at the end."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from carbonwrap import __version__, events
from carbonwrap.accounting import TreeAccounting, open_accounting
from carbonwrap.attribution import EnergyModel, Reading
from carbonwrap.child import Child, become_subreaper
from carbonwrap.errors import CarbonwrapError
from carbonwrap.eventlog import EventLog, log_name
from carbonwrap.sampler import Sampler, Totals
from carbonwrap.sensors import SensorUnavailable
from carbonwrap.sensors.meminfo import MemInfo
from carbonwrap.sensors.procstat import ProcStat
from carbonwrap.summary import Fold, RunSummary


@dataclass(frozen=True)
class RunOptions:
    command: tuple[str, ...]
    interval_s: float = 1.0
    log_interval_s: float = 10.0
    log_dir: Path = Path("logs")
    region: str | None = None
    intensity_g_per_kwh: float | None = None
    pue: float = 1.0
    tags: Mapping[str, str] = field(default_factory=dict)
    json_path: str | None = None
    quiet: bool = False
    cpu_accounting: str = "auto"


@dataclass
class Energy:
    """The sensors behind CPU and DRAM energy and how they are labelled."""

    model: EnergyModel
    components: dict[str, dict[str, Any]]
    notes: list[str]
    read_rapl: Callable[[], Mapping[str, float]] | None
    read_used_memory: Callable[[], int] | None
    close: Callable[[], None]


def open_energy(environ: Mapping[str, str]) -> Energy:
    """RAPL where readable, else the rated-power estimate; DRAM from RAPL or resident memory."""
    from carbonwrap.sensors.cpu_estimate import (
        DRAM_BASIS,
        DRAM_W_PER_GB,
        cpu_model_name,
        estimate_cpu_power,
    )
    from carbonwrap.sensors.rapl import RaplSensor, sysfs_root_from_env

    notes: list[str] = []
    components: dict[str, dict[str, Any]] = {}
    try:
        rapl = RaplSensor(sysfs_root_from_env(environ))
    except SensorUnavailable as exc:
        rapl = None
        notes.append(f"RAPL unavailable, CPU energy estimated: {exc.reason}")
    if rapl is not None:
        notes.extend(f"RAPL zone skipped: {reason}" for reason in rapl.skipped)
    kinds = {z.zone_id: z.kind for z in rapl.zones} if rapl else {}
    has_dram = "dram" in kinds.values()
    cpu_w = 0.0
    if rapl is not None:
        packages = sum(1 for k in kinds.values() if k == "package")
        components["cpu"] = {
            "method": "rapl",
            "basis": f"{packages} package zone(s); share = tree CPU time / all CPUs' busy time",
        }
    else:
        estimate = estimate_cpu_power(cpu_model_name(), os.cpu_count() or 1)
        cpu_w = estimate.watts_per_cpu
        components["cpu"] = {"method": "estimate", "basis": estimate.basis}
    if has_dram:
        components["dram"] = {"method": "rapl", "basis": "dram zone(s); same CPU-time share"}
    else:
        components["dram"] = {
            "method": "estimate",
            "basis": f"{DRAM_BASIS}, of the tree's resident memory sampled every interval",
        }
        if rapl is not None:
            notes.append("RAPL has no dram zone here; DRAM energy estimated from resident memory")
    components["gpu"] = {"method": "unavailable: GPU measurement is not part of this version"}
    meminfo = None if has_dram else MemInfo()
    model = EnergyModel(
        cpu_method="rapl" if rapl else "estimate",
        dram_method="rapl" if has_dram else "estimate",
        zone_kind=kinds,
        zone_max_j={z.zone_id: z.max_energy_range_j for z in rapl.zones} if rapl else {},
        cpu_w_per_cpu=cpu_w,
        dram_w_per_gb=0.0 if has_dram else DRAM_W_PER_GB,
    )

    def close() -> None:
        if rapl is not None:
            rapl.close()
        if meminfo is not None:
            meminfo.close()

    return Energy(
        model,
        components,
        notes,
        rapl.read if rapl else None,
        meminfo.used_bytes if meminfo else None,
        close,
    )


def _intensity_record(
    options: RunOptions, environ: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The region (with where it came from) and the intensity in force from the start."""
    from carbonwrap.intensity.region import resolve_region
    from carbonwrap.intensity.table import load_table

    table = load_table()
    region = resolve_region(options.region, environ, table=table)
    if options.intensity_g_per_kwh is not None:
        value, source = options.intensity_g_per_kwh, "fixed by --intensity"
    else:
        static = table.world() if region.code == "WORLD" else table.lookup(region.code)
        value = static.intensity_g_per_kwh
        source = f"static table: {static.region_name} {static.year}, {static.source}"
    region_info = {"code": region.code, "source": region.source, "detail": region.detail}
    return region_info, {"intensity_g_per_kwh": value, "region": region.code, "source": source}


def _check_json_target(path: str | None) -> None:
    if path is None or path == "-":
        return
    directory = Path(path).resolve().parent
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise CarbonwrapError(
            f"--json {path}: directory {directory} does not exist or is not writable"
        )


def _accounting_reader(
    acct: TreeAccounting, procstat: ProcStat, energy: Energy
) -> Callable[[], Reading]:
    read_rapl, read_used = energy.read_rapl, energy.read_used_memory
    estimate_dram = energy.model.dram_method == "estimate"

    def read() -> Reading:
        return Reading(
            mono_s=time.monotonic(),
            tree_cpu_s=acct.cpu_s(),
            busy_all_s=procstat.busy_s(),
            rapl_j=read_rapl() if read_rapl else {},
            tree_rss_bytes=acct.rss_bytes() if estimate_dram else 0,
            used_memory_bytes=read_used() if read_used else 0,
        )

    return read


class Recorder:
    """Writes each record to the log and folds it into the summary, under one lock."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.fold = Fold()
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.log.write(record)
            self.fold.add(record)


def run(options: RunOptions, environ: Mapping[str, str], stderr: TextIO) -> int:
    """Run the command to completion; returns the exit status carbonwrap should exit with."""
    if options.log_interval_s < options.interval_s:
        raise CarbonwrapError(
            f"--log-interval {options.log_interval_s:g} is shorter than --interval "
            f"{options.interval_s:g}; make it at least as long"
        )
    _check_json_target(options.json_path)
    region, intensity = _intensity_record(options, environ)
    run_id = os.urandom(6).hex()
    host = platform.node() or "localhost"
    started_wall = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
    log = EventLog(options.log_dir, log_name(stamp, host, run_id))
    record = Recorder(log)
    try:
        acct, notes = open_accounting(options.cpu_accounting, f"carbonwrap-{run_id}")
    except CarbonwrapError:
        log.discard()
        raise
    energy = open_energy(environ)
    notes += energy.notes
    procstat = ProcStat()
    t0 = time.monotonic()

    def warn(message: str) -> None:
        record(events.warning(time_s=time.time(), elapsed_s=time.monotonic() - t0, message=message))

    def emit(totals: Totals) -> None:
        record(_sample(totals))

    sampler = Sampler(
        _accounting_reader(acct, procstat, energy),
        energy.model,
        options.interval_s,
        options.log_interval_s,
        emit,
        warn,
    )
    become_subreaper()
    env = dict(environ)
    env["CARBONWRAP_RUN_ID"] = run_id
    try:
        child = _start_child(options.command, env, acct)
    except BaseException:
        acct.finish()
        energy.close()
        procstat.close()
        log.discard()
        raise
    record(
        events.start(
            run_id=run_id,
            time_s=started_wall,
            argv=list(options.command),
            cwd=os.getcwd(),
            host=host,
            pid=child.pid,
            versions={
                "carbonwrap": __version__,
                "python": platform.python_version(),
                "kernel": platform.release(),
            },
            cpu_accounting=acct.method,
            components=energy.components,
            region=region,
            pue=options.pue,
            interval_s=options.interval_s,
            log_interval_s=options.log_interval_s,
            job=events.job_metadata(environ),
            tags=options.tags,
        )
    )
    record(events.intensity(time_s=started_wall, elapsed_s=0.0, **intensity))
    for note in notes:
        warn(note)
    sampler.start()
    ending = child.wait()
    sampler.halt()
    # Freeze the tree's count first (process-tree mode reconciles with rusage here), then read.
    leftover = acct.finish()
    totals = sampler.final_totals()
    if leftover:
        shown = " ".join(str(pid) for pid in leftover[:20]) + (" …" if len(leftover) > 20 else "")
        warn(
            f"{len(leftover)} process(es) still running when the command ended were left "
            f"running and are not counted further: {shown}"
        )
    energy.close()
    procstat.close()
    if log.failed:
        stderr.write(f"carbonwrap: {log.failed}\n")
    record(
        events.end(
            time_s=time.time(),
            elapsed_s=totals.elapsed_s,
            exit_code=ending.exit_code,
            signal=ending.signal_name,
            cpu_s=totals.cpu_s,
            energy_j=totals.energy_j,
            device_energy_j=totals.device_energy_j,
            leftover_pids=leftover,
            signals_received=child.received,
        )
    )
    log.close()
    summary = record.fold.summary()
    summary.log_path = str(log.path)
    _report(summary, options, environ, stderr)
    return ending.exit_code


def _sample(totals: Totals) -> dict[str, Any]:
    return events.sample(
        time_s=time.time(),
        elapsed_s=totals.elapsed_s,
        cpu_s=totals.cpu_s,
        energy_j=totals.energy_j,
        device_energy_j=totals.device_energy_j,
    )


def _start_child(command: tuple[str, ...], env: dict[str, str], acct: TreeAccounting) -> Child:
    try:
        child = Child(command, env, acct.preexec)
    except subprocess.SubprocessError as exc:
        # Joining the cgroup failed in the forked child, before exec: the command never ran.
        raise CarbonwrapError(
            f"could not place the command in its cgroup ({exc}); "
            "retry with --cpu-accounting process-tree"
        ) from exc
    acct.started(child.pid)
    return child


def _report(
    summary: RunSummary, options: RunOptions, environ: Mapping[str, str], stderr: TextIO
) -> None:
    """The human report on stderr and the JSON document, after the child has exited."""
    import json

    from carbonwrap.render.json import run_document

    if not options.quiet:
        _print_report(summary, environ, stderr)
    if options.json_path is None:
        return
    text = json.dumps(run_document(summary), indent=2) + "\n"
    try:
        if options.json_path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            Path(options.json_path).write_text(text)
    except OSError as exc:
        stderr.write(
            f"carbonwrap: could not write --json {options.json_path}: {exc.strerror} "
            f"(the log {summary.log_path} has everything)\n"
        )


def _print_report(summary: RunSummary, environ: Mapping[str, str], stderr: TextIO) -> None:
    from carbonwrap.intensity.table import defaults
    from carbonwrap.render.final import Equivalent, render_rich, render_text, report_view

    car = defaults()["car_gco2_per_km"]
    equivalent = Equivalent(
        float(car["value"]),
        "driven by an average new car",
        f"{car['value']} g/km, EEA {car['year']} new cars",
    )
    view = report_view(summary, equivalent)
    try:
        if stderr.isatty() and environ.get("TERM", "") != "dumb":
            from rich.console import Console

            Console(file=stderr, highlight=False).print(render_rich(view))
        else:
            stderr.write(render_text(view))
        stderr.flush()
    except OSError:
        pass  # the terminal went away (SIGHUP): the log and JSON still have everything
