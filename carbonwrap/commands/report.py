"""The report command: log files → one summary per run → filters → groups → table, JSON or CSV."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
import marshal
import os
import re
import shlex
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap.choices import REPORT_FORMATS, REPORT_GROUPS
from carbonwrap.errors import CarbonwrapError
from carbonwrap.runlog.ledger import BUCKET_S
from carbonwrap.runlog.reader import (
    Irregular,
    NeedBuckets,
    RecordReader,
    ScanCounts,
    essential_records,
    is_log_start,
    iter_logs,
)
from carbonwrap.runlog.records import Record, parse_utc
from carbonwrap.runlog.summary import ComponentSummary, Fold, GpuSummary, RunSummary

if TYPE_CHECKING:
    from carbonwrap.intensity.table import IntensityTable
    from carbonwrap.render.exports import Place

NO_JOB = "(no job id)"


@dataclass
class ReportOptions:
    paths: list[Path]
    group_by: str | None = None
    since: str | None = None
    until: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    output_format: str | None = None
    as_json: bool = False
    as_csv: bool = False
    html: str | None = None  # a file to write the HTML page to; "-": stdout


@dataclass
class ReadStats:
    """What reading the logs found, for the report's last lines."""

    logs: int = 0
    incomplete: int = 0
    bad_lines: int = 0
    not_logs: int = 0  # *.jsonl files (or files named) that are not carbonwrap logs
    duplicates: int = 0  # further copies of a run already read (same run_id)
    unreadable: list[str] = field(default_factory=list)  # "path: reason"
    filtered_out: int = 0


@dataclass
class Totals:
    """Sums over runs. Energies in J (attributed, before PUE); CO2e in g (PUE included)."""

    runs: int = 0
    incomplete: int = 0
    duration_s: float = 0.0
    cpu_s: float = 0.0
    energy_j: float = 0.0
    device_energy_j: float = 0.0
    co2e_g: float = 0.0

    def add(self, s: RunSummary) -> None:
        self.runs += 1
        self.incomplete += not s.complete
        self.duration_s += s.duration_s
        self.cpu_s += s.cpu_s
        self.energy_j += s.energy_j
        self.device_energy_j += s.device_energy_j
        self.co2e_g += s.co2e_g


@dataclass
class Group:
    key: str
    totals: Totals
    run_ids: list[str]


@dataclass
class Report:
    """Everything a renderer needs; renderers are pure functions of this."""

    runs: list[RunSummary]  # sorted by start time
    totals: Totals
    stats: ReadStats
    group_by: str | None = None
    groups: list[Group] | None = None
    filters: dict[str, object] = field(default_factory=dict)


# ── reading ──────────────────────────────────────────────────────────────────────────────────


def summarize_log(path: str | Path) -> RunSummary | None:
    """The run in one log, as `Fold` over all its records gives it (`essential_records`: most
    sample lines need no parsing; memory stays flat); None if `path` is not a carbonwrap log."""
    for buckets in (False, True):
        counts = ScanCounts()
        records = essential_records(path, BUCKET_S, counts, buckets=buckets)
        try:
            first = next(records, None)
            if first is None:
                return None
            summary = fold_records(path, itertools.chain([first], records), 0)
        except NeedBuckets:
            continue  # measured intensity re-prices buckets: read again, keeping their ends
        except Irregular:
            return fold_every_record(path)
        summary.bad_lines = counts.bad_lines
        return summary
    raise AssertionError("unreachable: NeedBuckets comes only without buckets")


def fold_records(path: str | Path, records: Iterable[Record], bad_lines: int) -> RunSummary:
    fold = Fold()
    for record in records:
        fold.add(record)
    summary = fold.summary()
    summary.log_path = str(path)
    summary.bad_lines = bad_lines
    return summary


def fold_every_record(path: str | Path) -> RunSummary | None:
    """The slow, sure way: every record parsed and folded (streamed: memory stays flat)."""
    reader = RecordReader(Path(path))
    records = iter(reader)
    first = next(records, None)
    if first is None or reader.bad_lines or not is_log_start(first):
        return None  # a log's first line is its start record (as the fast reading has it)
    summary = fold_records(path, itertools.chain([first], records), 0)
    summary.bad_lines = reader.bad_lines  # counted while folding
    return summary


def read_runs(
    paths: Iterable[Path], workers: int | None = None
) -> tuple[list[RunSummary], ReadStats]:
    """One summary per run found under `paths`; a run logged twice (copies) is counted once.
    `workers`: processes that read logs in parallel (default: one per usable CPU)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0))
    # Hundreds of thousands of small objects, none in a cycle: the cycle collector would walk
    # them over and over (a third of the time for 10,000 logs) and find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_runs(list(iter_logs(list(paths))), workers)
    finally:
        if collecting:
            gc.enable()


def _read_runs(files: list[str], workers: int) -> tuple[list[RunSummary], ReadStats]:
    stats = ReadStats()
    by_id: dict[str, RunSummary] = {}
    for path, found in _summaries_of(files, workers):
        if isinstance(found, str):
            stats.unreadable.append(f"{path}: {found}")
            continue
        if found is None:
            stats.not_logs += 1
            continue
        stats.logs += 1
        stats.bad_lines += found.bad_lines
        key = found.run_id or path
        kept = by_id.get(key)
        if kept is not None:
            stats.duplicates += 1
            if not _better_copy(found, kept):
                continue
        by_id[key] = found
    runs = sorted(by_id.values(), key=lambda s: (s.started_at, s.run_id))
    stats.incomplete = sum(not s.complete for s in runs)
    stats.unreadable.sort()
    return runs, stats


def _better_copy(new: RunSummary, old: RunSummary) -> bool:
    """The fuller copy of a run (whatever order files are read in); on a tie, the first path."""
    a = (new.complete, new.duration_s, -new.bad_lines)
    b = (old.complete, old.duration_s, -old.bad_lines)
    return a > b or (a == b and (new.log_path or "") < (old.log_path or ""))


# Below this many files, starting a helper process costs more than it saves.
PARALLEL_MIN_FILES = 64
_CHUNK = 16  # files per claim: small enough to balance big logs between processes


def _summaries_of(files: list[str], workers: int) -> Iterator[tuple[str, RunSummary | str | None]]:
    """(path, its summary | None if not a log | why it could not be read). With `workers` > 1
    and many files, forked helpers and this process take chunks of files from a shared
    counter (whoever is free takes the next); helpers send summaries back as plain data by
    marshal, which is several times faster than pickling dataclasses. Order is not kept."""
    if workers <= 1 or len(files) < PARALLEL_MIN_FILES:
        for path in files:
            yield path, _summary_or_reason(path)
        return
    import multiprocessing

    context = multiprocessing.get_context("fork")
    chunks = [files[i : i + _CHUNK] for i in range(0, len(files), _CHUNK)]
    counter = context.Value("l", 0)
    receive, send = context.Pipe(duplex=False)
    helpers = [
        context.Process(target=_helper, args=(chunks, counter, send), daemon=True)
        for _ in range(workers - 1)
    ]
    for helper in helpers:
        helper.start()
    send.close()
    running = len(helpers)
    try:
        while (claimed := _claim(counter, len(chunks))) is not None:
            for path in chunks[claimed]:
                yield path, _summary_or_reason(path)
            while running and receive.poll():
                running -= yield from _received(receive.recv_bytes())
        while running:
            try:
                data = receive.recv_bytes()
            except EOFError:
                raise RuntimeError("a process reading logs died") from None
            running -= yield from _received(data)
    finally:
        for helper in helpers:
            helper.join(timeout=1)
            if helper.is_alive():
                helper.terminate()
        receive.close()


def _claim(counter: Any, chunks: int) -> int | None:
    with counter.get_lock():
        claimed: int = counter.value
        if claimed >= chunks:
            return None
        counter.value = claimed + 1
    return claimed


def _helper(chunks: list[list[str]], counter: Any, send: Any) -> None:
    try:
        while (claimed := _claim(counter, len(chunks))) is not None:
            found = [(path, _summary_or_reason(path)) for path in chunks[claimed]]
            send.send_bytes(marshal.dumps([(p, _pack(s) if isinstance(s, RunSummary) else s)
                                           for p, s in found]))  # fmt: skip
    except BaseException:
        import traceback

        send.send_bytes(marshal.dumps(traceback.format_exc()))
    finally:
        send.send_bytes(b"")  # done
        send.close()


def _received(data: bytes) -> Generator[tuple[str, RunSummary | str | None], None, int]:
    """Yield what a helper sent; return 1 when it says it is done."""
    if not data:
        return 1
    found = marshal.loads(data)
    if isinstance(found, str):
        raise RuntimeError(f"a process reading logs failed:\n{found}")
    for path, s in found:
        yield path, _unpack(s) if isinstance(s, dict) else s
    return 0


def _summary_or_reason(path: str) -> RunSummary | str | None:
    try:
        return summarize_log(path)
    except OSError as exc:
        return exc.strerror or str(exc)


def _pack(s: RunSummary) -> dict[str, Any]:
    packed = dict(vars(s))
    packed["components"] = {name: dict(vars(c)) for name, c in s.components.items()}
    packed["gpus"] = {index: dict(vars(g)) for index, g in s.gpus.items()}
    return packed


def _unpack(packed: dict[str, Any]) -> RunSummary:
    packed["components"] = {n: ComponentSummary(**c) for n, c in packed["components"].items()}
    packed["gpus"] = {i: GpuSummary(**g) for i, g in packed["gpus"].items()}
    return RunSummary(**packed)


# ── options ──────────────────────────────────────────────────────────────────────────────────

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


def choose_format(output_format: str | None, as_json: bool, as_csv: bool) -> str:
    wanted = {f for f, on in (("json", as_json), ("csv", as_csv)) if on}
    if output_format is not None:
        if output_format not in REPORT_FORMATS:
            raise CarbonwrapError(
                f"--format {output_format}: expected one of {', '.join(REPORT_FORMATS)}"
            )
        wanted.add(output_format)
    if len(wanted) > 1:
        raise CarbonwrapError(f"choose one output format, not {' and '.join(sorted(wanted))}")
    return wanted.pop() if wanted else "table"


def check_group_by(group_by: str | None) -> None:
    if group_by is None or group_by in REPORT_GROUPS[:4]:
        return
    if group_by.startswith("tag:") and group_by[4:].strip():
        return
    raise CarbonwrapError(f"--group-by {group_by}: expected one of {', '.join(REPORT_GROUPS)}")


# ── filters and groups (pure) ────────────────────────────────────────────────────────────────


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


def job_key(job: Mapping[str, str]) -> str | None:
    """The job a run belongs to, so that the ranks of one multi-node job add up."""
    if job.get("SLURM_JOB_ID"):
        cluster = job.get("SLURM_CLUSTER_NAME")
        array, task = job.get("SLURM_ARRAY_JOB_ID"), job.get("SLURM_ARRAY_TASK_ID")
        number = f"{array}_{task}" if array and task else job["SLURM_JOB_ID"]
        return f"slurm {cluster}:{number}" if cluster else f"slurm {number}"
    # torchrun's --rdzv-id defaults to "none": that ties nothing together.
    if job.get("TORCHELASTIC_RUN_ID") and job["TORCHELASTIC_RUN_ID"] != "none":
        return f"torchrun {job['TORCHELASTIC_RUN_ID']}"
    for name, label in (
        ("PBS_JOBID", "pbs"),
        ("LSB_JOBID", "lsf"),
        ("PMIX_NAMESPACE", "mpi"),  # Open MPI 5 / PMIx launchers: one namespace per job
        ("OMPI_MCA_ess_base_jobid", "mpi"),
    ):
        if job.get(name):
            return f"{label} {job[name]}"
    return None


def group_key(s: RunSummary, group_by: str) -> str:
    if group_by == "command":
        return shlex.join(s.command) if s.command is not None else "(command not logged)"
    if group_by == "host":
        return s.host or "(no host)"
    if group_by == "day":
        started = parse_utc(s.started_at)
        if started is None:
            return "(no start time)"
        return dt.datetime.fromtimestamp(started, dt.timezone.utc).date().isoformat()
    if group_by == "job":
        return job_key(s.job) or NO_JOB
    key = group_by[4:].strip()  # tag:KEY
    value = s.tags.get(key)
    return value if value is not None else f"(no {key} tag)"


def group_runs(runs: Iterable[RunSummary], group_by: str) -> list[Group]:
    groups: dict[str, Group] = {}
    for s in runs:
        key = group_key(s, group_by)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, Totals(), [])
        group.totals.add(s)
        group.run_ids.append(s.run_id)
    return [groups[key] for key in sorted(groups)]


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


# ── the command ──────────────────────────────────────────────────────────────────────────────


def report(
    options: ReportOptions, environ: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """`carbonwrap report`: bad options and missing paths are errors (exit 125); finding no
    logs is not (exit 0, said on stderr, and an empty table, document or CSV on stdout)."""
    output = choose_format(options.output_format, options.as_json, options.as_csv)
    if options.html is not None:
        check_html_target(options, output)
    check_group_by(options.group_by)
    if output == "codecarbon" and options.group_by:
        raise CarbonwrapError("--format codecarbon has one row per run: leave out --group-by")
    since_s = parse_time(options.since, "--since") if options.since else None
    until_s = parse_time(options.until, "--until", end_of_day=True) if options.until else None
    paths = options.paths or [Path(_log_dir(environ))]
    for path in paths:
        if not path.exists():
            raise CarbonwrapError(f"{path}: no such file or directory")
    runs, stats = read_runs(paths)
    result = build_report(runs, stats, options.group_by, since_s, until_s, options.tags)
    for problem in stats.unreadable[:3]:
        stderr.write(f"carbonwrap: could not read {problem}\n")
    if len(stats.unreadable) > 3:
        stderr.write(f"carbonwrap: could not read {len(stats.unreadable) - 3} more files\n")
    if stats.logs == 0:
        where = ", ".join(str(p) for p in paths)
        stderr.write(f"carbonwrap: no carbonwrap logs found in {where}\n")
    if options.html is not None and options.html != "-":
        write_replacing(options.html, html_page(result))
        return 0
    text = html_page(result) if options.html else _render(result, output, environ, stdout)
    try:
        stdout.write(text)
        stdout.flush()
    except BrokenPipeError:  # `carbonwrap report | head`: the reader has what it wanted
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    return 0


def _log_dir(environ: Mapping[str, str]) -> str:
    """The runs' log directory: $CARBONWRAP_LOG_DIR, else the settings files, else ./logs."""
    from carbonwrap.settings.resolve import load_config

    return str(load_config(environ).resolve({}, environ)["log_dir"].value)


def check_html_target(options: ReportOptions, output: str) -> None:
    if output != "table" or options.output_format:
        raise CarbonwrapError(f"choose one output format, not html and {output}")
    directory = os.path.dirname(os.path.abspath(options.html or "-"))
    if not options.html or (
        options.html != "-" and (not os.path.isdir(directory) or os.path.isdir(options.html))
    ):
        raise CarbonwrapError(f"--html {options.html}: name a file in an existing directory")


def html_page(result: Report) -> str:
    """The HTML page; series are read only for the runs it charts (`series.MAX_CHARTS`)."""
    from carbonwrap.render.html import render_html
    from carbonwrap.report.series import charts_for

    return render_html(result, charts_for(result.runs))


def write_replacing(path: str, text: str) -> None:
    """Write `path` whole: a temporary file beside it, renamed over it, so that a reader never
    sees part of one; the mode of the file replaced, else what a new file gets (umask)."""
    import tempfile

    directory, name = os.path.split(os.path.abspath(path))
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise CarbonwrapError(f"--html {path}: cannot write there: {exc.strerror}") from None
    try:
        with open(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CarbonwrapError(f"--html {path}: cannot write it: {exc.strerror}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


RICH_MAX_ROWS = 500  # beyond this, rich's table layout takes seconds: plain text instead


def _render(result: Report, output: str, environ: Mapping[str, str], stdout: TextIO) -> str:
    terminal = stdout.isatty() and environ.get("TERM", "") != "dumb"
    if output == "json":
        import json

        from carbonwrap.render.exports import report_document

        # Indented for a person; one line for scripts (json's C encoder: 3x faster).
        return json.dumps(report_document(result), indent=2 if terminal else None) + "\n"
    if output == "csv":
        from carbonwrap.render.exports import groups_csv, runs_csv

        if result.groups is not None and result.group_by is not None:
            return groups_csv(result.groups, result.group_by)
        return runs_csv(result.runs)
    if output == "codecarbon":
        from carbonwrap.render.exports import codecarbon_csv

        return codecarbon_csv(result.runs, _places(result.runs))
    from carbonwrap.render.runs import render_rich, render_text, runs_view

    view = runs_view(result)
    if not terminal or len(view.rows) > RICH_MAX_ROWS:
        return render_text(view)
    import io

    from rich.console import Console

    buffer = io.StringIO()
    width = Console(file=stdout).width
    Console(file=buffer, width=width, force_terminal=True, highlight=False).print(render_rich(view))
    return buffer.getvalue()


def _places(runs: list[RunSummary]) -> dict[str, Place]:
    """Country and region names of the runs' grid regions, from the shipped table."""
    from carbonwrap.intensity.table import load_table

    table = load_table()
    iso3 = {code: iso for iso, code in table.iso3_to_code().items()}
    places: dict[str, Place] = {}
    for s in runs:
        code = s.region.get("code", "")
        if code and code not in places:
            places[code] = place_of(code, s.region.get("kind", ""), table, iso3)
    return places


def place_of(code: str, kind: str, table: IntensityTable, iso3: Mapping[str, str]) -> Place:
    """Where a grid region is, in CodeCarbon's terms; what is not known stays empty."""
    from carbonwrap.render.exports import Place

    if kind == "cloud":
        provider, _, region = code.partition(":")
        return Place(cloud_provider=provider, cloud_region=region, on_cloud="Y")
    if kind == "latlon":
        lat, _, lon = code.partition(",")
        return Place(latitude=lat, longitude=lon)
    country, region = code.upper(), ""
    if kind == "us-state":
        country, region = "US", table.lookup(code).region_name.lower()
    elif kind == "gb-postcode":
        country, region = "GB", code.rpartition(":")[2]
    elif kind == "zone":
        country, region = code.upper().partition("-")[0], code
    if country not in iso3:
        return Place(region=region)
    return Place(table.lookup(country).region_name, iso3[country], region)
