"""A run's course over time for the HTML report's charts: power by component and cumulative
CO2e at its sample times, read from its log through `summary.Fold`."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from carbonwrap.report.model import RunChart, RunSeries
from carbonwrap.runlog.ledger import BUCKET_S
from carbonwrap.runlog.reader import bounded_lines, is_log_start, parse_line
from carbonwrap.runlog.records import SAMPLE_START, SAMPLE_TIME, Record
from carbonwrap.runlog.summary import COMPONENTS, Fold, RunSummary

MAX_POINTS = 300  # per run: samples beyond this are thinned (power: the mean over longer spans)
MAX_CHARTS = 50  # runs charted in one report: the most recent ones
_SAMPLE_TIME = re.compile(SAMPLE_TIME)
_BUCKET_MIN = int(BUCKET_S) // 60


@dataclass
class _Scan:
    lines: int = 0
    samples: int = 0  # sample and end records
    measured: list[Record] = field(default_factory=list)  # measured intensity, in log order
    needed: set[int] = field(default_factory=set)  # samples (by number) the fold must see


def _scan(path: str | Path) -> _Scan | None:
    """What the fold needs from a log besides the points drawn; None if it is not a carbonwrap
    log. Sample lines are recognised by their first bytes and not parsed.

    Sample records hold totals since the start, and the fold prices the energy between two
    samples it is given at the intensity in force, in the bucket of the later one
    (`carbon.CarbonLedger`). So the CO2e at any sample is the same when the fold skips samples,
    as long as it sees the last sample before each intensity record and the last of each
    5-minute bucket (measured history re-prices whole buckets): the reasoning of
    `logread.essential_records`, which `report` uses for its totals."""
    scan = _Scan()
    bucket: tuple[bytes, int] | None = None
    with open(path, "rb") as f:
        lines = bounded_lines(f)
        if not is_log_start(parse_line(next(lines, b""))):
            return None
        for raw in lines:
            scan.lines += 1
            if raw.startswith(SAMPLE_START):
                time = _SAMPLE_TIME.match(raw)
                here = (time[1], int(time[2]) // _BUCKET_MIN) if time else None
                if here != bucket or here is None:
                    scan.needed.update((scan.samples - 1, scan.samples))
                bucket = here
                scan.samples += 1
                continue
            record = parse_line(raw)
            if record is None:
                continue
            if record["type"] in ("sample", "end"):
                scan.samples += 1  # parsed and folded anyway
            elif _is_measured(record):
                scan.measured.append(record)
            elif record["type"] == "intensity":  # the fold splits the interval it falls in
                scan.needed.update((scan.samples - 1, scan.samples))
    return scan


def _is_measured(record: Record) -> bool:
    return record.get("type") == "intensity" and record.get("kind") == "measured"


def read_series(path: str | Path, max_points: int = MAX_POINTS) -> RunSeries | None:
    """The series of the run logged in `path` (None if it is not a carbonwrap log), at most
    `max_points` + 2 points: every k-th sample record and the last. Reads the log twice, and
    parses only the sample lines the fold needs (`_scan`).

    Measured intensity re-prices past 5-minute buckets; the fold is given those records first,
    so that every point is priced as the final total is and the curve ends at the run's CO2e
    instead of jumping where history arrived."""
    scan = _scan(path)
    if scan is None:
        return None
    every = max(1, math.ceil(scan.samples / max(1, max_points)))
    last = scan.samples - 1
    fold = Fold()
    points: list[tuple[float, dict[str, float], float]] = [(0.0, {}, 0.0)]
    number = taken = -1
    with open(path, "rb") as f:
        lines = bounded_lines(f)
        start = parse_line(next(lines, b""))
        if start is None or not is_log_start(start):
            return None  # replaced since the scan
        fold.add(start)
        for revision in scan.measured:
            fold.add(revision)
        for raw in itertools.islice(lines, scan.lines):  # what was there at the scan
            sample = raw.startswith(SAMPLE_START)
            if sample:
                number += 1
                if not (number % every == every - 1 or number == last or number in scan.needed):
                    continue
            record = parse_line(raw)
            if record is None or _is_measured(record):
                continue
            if not sample and record["type"] in ("sample", "end"):
                sample, number = True, number + 1
            fold.add(record)
            if sample and (number % every == every - 1 or number == last):
                _take(points, fold)
                taken = number
    if number > taken:
        _take(points, fold)  # the last sample: later records change neither energy nor CO2e
    return _series(points, fold.s, number + 1)


def _take(points: list[tuple[float, dict[str, float], float]], fold: Fold) -> None:
    s, co2e_g = fold.s, fold.co2e_g()  # the fold's running state: no totals per point
    energy = {name: c.energy_j for name, c in s.components.items() if c.energy_j is not None}
    point = (s.duration_s, energy, co2e_g)
    if not points[-1][0] < s.duration_s:  # time did not advance (a log not as we write it)
        point = (points[-1][0], energy, co2e_g)
        points.pop()
    points.append(point)


def _series(
    points: Sequence[tuple[float, dict[str, float], float]], s: RunSummary, samples: int
) -> RunSeries:
    names = sorted(
        {name for _, energy, _ in points for name in energy},
        key=lambda n: (COMPONENTS.index(n) if n in COMPONENTS else len(COMPONENTS), n),
    )
    power: dict[str, list[float]] = {name: [] for name in names}
    for (t0, e0, _), (t1, e1, _) in itertools.pairwise(points):
        for name in names:
            used = e1.get(name, 0.0) - e0.get(name, 0.0)
            power[name].append(max(0.0, used) / (t1 - t0))
    return RunSeries(
        elapsed_s=[t for t, _, _ in points],
        power_w=power,
        co2e_g=[c for _, _, c in points],
        methods={name: c.method for name, c in s.components.items()},
        samples=samples,
    )


def charts_for(runs: Sequence[RunSummary], max_charts: int = MAX_CHARTS) -> list[RunChart]:
    """The last `max_charts` of `runs` (sorted by start time: the most recent), with series."""
    charts = []
    for s in runs[-max_charts:] if max_charts > 0 else ():
        if not s.log_path:
            charts.append(RunChart(s, None, "no log"))
            continue
        try:
            series = read_series(s.log_path)
        except OSError as exc:
            charts.append(RunChart(s, None, f"the log could not be read again: {exc.strerror}"))
            continue
        problem = "" if series is not None else "the log is no longer a carbonwrap log"
        charts.append(RunChart(s, series, problem))
    return charts
