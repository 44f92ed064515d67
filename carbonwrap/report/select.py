"""Which runs a report shows and how it adds them up: --since/--until/--tag filters, --group-by
keys, totals. Pure functions of summaries (the option parsing raises one-line errors)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from carbonwrap.choices import REPORT_GROUPS
from carbonwrap.errors import CarbonwrapError
from carbonwrap.report.model import Group, JobFigures, ReadStats, Report, Totals
from carbonwrap.runlog.records import job_key, job_rank, parse_utc, slurm_job_id
from carbonwrap.runlog.summary import RunSummary

NO_JOB = "(no job id)"

_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def parse_time(text: str, option: str, *, end_of_day: bool = False) -> float:
    """Epoch seconds of an ISO 8601 date or time; without a zone it is UTC. A bare date given
    to --until means the end of that day, so --since D --until D is the whole of day D."""
    value = text.strip()
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise CarbonwrapError(
            f"{option} {text!r}: not an ISO 8601 date or time "
            "(e.g. 2026-11-27, 2026-11-27T14:30, 2026-11-27T14:30:00+01:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    if end_of_day and _DATE.fullmatch(value):
        moment += dt.timedelta(days=1)
    return moment.timestamp()


def check_group_by(group_by: str | None) -> None:
    if group_by is None or group_by in REPORT_GROUPS[:-1]:
        return
    if group_by.startswith("tag:") and group_by[4:].strip():
        return
    raise CarbonwrapError(f"--group-by {group_by}: expected one of {', '.join(REPORT_GROUPS)}")


def matches(
    s: RunSummary, since_s: float | None, until_s: float | None, tags: Mapping[str, str]
) -> bool:
    """Runs that started in [since, until) and carry every tag asked for."""
    if since_s is not None or until_s is not None:
        started = parse_utc(s.started_at)
        if started is None:
            return False
        if since_s is not None and started < since_s:
            return False
        if until_s is not None and started >= until_s:
            return False
    return all(s.tags.get(key) == value for key, value in tags.items())


def group_key(s: RunSummary, group_by: str) -> str:
    if group_by == "command":
        return s.command_line or "(command not logged)"
    if group_by == "host":
        return s.host or "(no host)"
    if group_by == "day":
        started = parse_utc(s.started_at)
        if started is None:
            return "(no start time)"
        return dt.datetime.fromtimestamp(started, dt.timezone.utc).date().isoformat()
    if group_by == "job":
        return job_key(s.job) or NO_JOB
    if group_by == "job,host":
        return f"{job_key(s.job) or NO_JOB}, {s.host or '(no host)'}"
    if group_by == "job,rank":
        rank = job_rank(s.job)
        return f"{job_key(s.job) or NO_JOB}, " + (f"rank {rank}" if rank else "(no rank)")
    key = group_by[4:].strip()  # tag:KEY
    value = s.tags.get(key)
    return value if value is not None else f"(no {key} tag)"


def group_runs(runs: Iterable[RunSummary], group_by: str) -> list[Group]:
    """Groups in the order of their keys (job groups: numbers by value, rank 2 before rank 10);
    job groups
    also count nodes, tasks and leaders (`JobFigures`); their device energy is the sum of
    what each run logged, which is each node's once (members log none: `run/node_role.py`)."""
    groups: dict[str, Group] = {}
    jobs = group_by.startswith("job")
    for s in runs:
        key = group_key(s, group_by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, Totals(), [])
            if jobs:
                group.job = JobFigures(
                    slurm_job_id=slurm_job_id(s.job), cluster=s.job.get("SLURM_CLUSTER_NAME", "")
                )
        group.totals.add(s)
        group.run_ids.append(s.run_id)
        if group.job is not None:
            group.job.add(s)
    return [groups[key] for key in sorted(groups, key=natural_order if jobs else None)]


_DIGITS = re.compile(r"([0-9]+)")


def natural_order(key: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key reading runs of ASCII digits as numbers of any length: "rank 2" before
    "rank 10" (by length, then digits: no int() of a hostile 10,000-digit key)."""
    parts = []
    for part in _DIGITS.split(key):
        if part.isascii() and part.isdigit():
            number = part.lstrip("0")
            parts.append((0, len(number), number))
        elif part:
            parts.append((1, 0, part))
    return tuple(parts)


def build_report(
    runs: list[RunSummary],
    stats: ReadStats,
    group_by: str | None = None,
    since_s: float | None = None,
    until_s: float | None = None,
    tags: Mapping[str, str] | None = None,
) -> Report:
    tags = dict(tags or {})
    kept = [s for s in runs if matches(s, since_s, until_s, tags)]
    stats.filtered_out = len(runs) - len(kept)
    totals = Totals()
    for s in kept:
        totals.add(s)
    filters: dict[str, object] = {}
    if since_s is not None:
        filters["since"] = _iso(since_s)
    if until_s is not None:
        filters["until"] = _iso(until_s)
    if tags:
        filters["tags"] = tags
    groups = group_runs(kept, group_by) if group_by else None
    return Report(kept, totals, stats, group_by, groups, filters)


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).isoformat().replace("+00:00", "Z")
