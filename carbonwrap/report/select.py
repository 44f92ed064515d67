"""Which runs a report shows and how it adds them up: --since/--until/--tag filters, --group-by
keys, totals, built as the runs are read (`ReportBuilder`; the option parsing raises one-line
errors)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

from carbonwrap.choices import REPORT_GROUPS
from carbonwrap.errors import CarbonwrapError
from carbonwrap.report.model import Group, JobFigures, ReadStats, Report, Totals, run_key
from carbonwrap.report.spool import RunSpool
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
    job groups also count nodes, tasks and leaders (`JobFigures`); their device energy is the
    sum of what each run logged, which is each node's once (members log none:
    `run/node_role.py`)."""
    builder = ReportBuilder(ReadStats(), group_by)
    for s in runs:
        builder.add(s)
    return builder.report().groups or []


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


# The runs a table lists at most (the table, the HTML page's table): the most recent. The
# totals and groups hold every run; JSON and CSV list every run (`report/spool.py`).
LISTED = 1000


class ReportBuilder:
    """A report built as the runs are read (`read.read_into`'s sink): each run selected is
    added to the totals and its group at once, kept only while among the `listed` most recent
    (None: every run), and handed to `spool` (the rows of JSON and CSV). Memory grows with the
    groups and the listed runs, not with the runs read. A run taken out again (`remove`: a
    fuller copy of it came later) is subtracted the same way."""

    def __init__(
        self,
        stats: ReadStats,
        group_by: str | None = None,
        since_s: float | None = None,
        until_s: float | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        listed: int | None = None,
        spool: RunSpool | None = None,
        run_ids: bool = True,
    ) -> None:
        """`run_ids`: whether groups list their runs' ids (the JSON document's groups do)."""
        self.stats = stats
        self.group_by = group_by
        self.since_s, self.until_s = since_s, until_s
        self.tags = dict(tags or {})
        self.listed = listed
        self.spool = spool
        self.run_ids = run_ids
        self.totals = Totals()
        self.filtered_out = 0
        self._groups: dict[str, Group] = {}
        self._ids: dict[str, list[tuple[str, str]]] = {}  # group key -> (started_at, run_id)
        self._recent: dict[str, RunSummary] = {}  # by run key: the most recent, and more

    def add(self, s: RunSummary, sign: int = 1) -> None:
        """`s` read (`sign` 1) or taken out again (-1)."""
        if not matches(s, self.since_s, self.until_s, self.tags):
            self.filtered_out += sign
            return
        self.totals.add(s, sign)
        key = run_key(s)
        if self.group_by:
            self._group(s, sign)
        if sign < 0:
            self._recent.pop(key, None)
            if self.spool is not None:
                self.spool.remove(key, s)
            return
        if key in self._recent:  # two runs of one id handed in (`build_report`): both kept
            key = f"{key}\0{len(self._recent)}"
        self._recent[key] = s
        if self.listed is not None and len(self._recent) >= 2 * self.listed + 1:
            self._recent = dict(_latest(self._recent.items(), self.listed))
        if self.spool is not None:
            self.spool.add(key, s)

    def remove(self, s: RunSummary) -> None:
        self.add(s, -1)

    def _group(self, s: RunSummary, sign: int) -> None:
        assert self.group_by is not None
        key = group_key(s, self.group_by)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = Group(key, Totals(), [])
            self._ids[key] = []
            if self.group_by.startswith("job"):
                group.job = JobFigures(
                    slurm_job_id=slurm_job_id(s.job), cluster=s.job.get("SLURM_CLUSTER_NAME", "")
                )
        group.totals.add(s, sign)
        if group.job is not None:
            group.job.add(s, sign)
        if self.run_ids:
            ids = self._ids[key]
            if sign > 0:
                ids.append((s.started_at, s.run_id))
            else:
                ids.remove((s.started_at, s.run_id))
        if group.totals.runs <= 0:
            del self._groups[key], self._ids[key]

    def report(self) -> Report:
        """The report of the runs added so far."""
        self.stats.filtered_out = self.filtered_out
        runs = [s for _, s in _latest(self._recent.items(), self.listed)]
        filters: dict[str, object] = {}
        if self.since_s is not None:
            filters["since"] = _iso(self.since_s)
        if self.until_s is not None:
            filters["until"] = _iso(self.until_s)
        if self.tags:
            filters["tags"] = self.tags
        groups = None
        if self.group_by:
            jobs = self.group_by.startswith("job")
            groups = [
                self._groups[key]
                for key in sorted(self._groups, key=natural_order if jobs else None)
            ]
            for group in groups:
                group.run_ids = [run_id for _, run_id in sorted(self._ids[group.key])]
        return Report(
            runs,
            self.totals,
            self.stats,
            self.group_by,
            groups,
            filters,
            runs_not_listed=self.totals.runs - len(runs),
            spool=self.spool,
        )


def _latest(runs: Iterable[tuple[str, RunSummary]], n: int | None) -> list[tuple[str, RunSummary]]:
    """The `n` most recent of `runs` (all with None), by start time (then run id), oldest first."""
    ordered = sorted(runs, key=lambda item: (item[1].started_at, item[1].run_id))
    return ordered if n is None else ordered[len(ordered) - n :] if n else []


def build_report(
    runs: Iterable[RunSummary],
    stats: ReadStats,
    group_by: str | None = None,
    since_s: float | None = None,
    until_s: float | None = None,
    tags: Mapping[str, str] | None = None,
) -> Report:
    """The report of `runs`, every one listed."""
    builder = ReportBuilder(stats, group_by, since_s, until_s, tags)
    for s in runs:
        builder.add(s)
    return builder.report()


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc).isoformat().replace("+00:00", "Z")
