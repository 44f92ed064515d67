"""The `report` command: logs → summaries (`report/read.py`) → filters and groups
(`report/select.py`) → a table, JSON, CSV, CodeCarbon's CSV or an HTML page on stdout or in a
file. Bad options and missing paths are errors (exit 125); finding no logs is not."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from carbonwrap.choices import REPORT_FORMATS
from carbonwrap.errors import CarbonwrapError, shown
from carbonwrap.outfiles import check_target, replace_whole
from carbonwrap.report.model import ReadStats, Report
from carbonwrap.report.read import read_into
from carbonwrap.report.select import LISTED, ReportBuilder, check_group_by, parse_time
from carbonwrap.report.spool import RunSpool


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
    model_card: bool = False  # the co2_eq_emissions block of a Hugging Face model card
    to_mlflow: bool = False  # backfill the selected runs into MLflow
    mlflow_experiment: str | None = None


def report(
    options: ReportOptions, environ: Mapping[str, str], stdout: TextIO, stderr: TextIO
) -> int:
    """`carbonwrap report`: bad options and missing paths are errors (exit 125); finding no
    logs is not (exit 0, said on stderr, and an empty table, document or CSV on stdout)."""
    output = choose_format(options.output_format, options.as_json, options.as_csv)
    check_other_outputs(options, output)
    if options.html is not None:
        check_html_target(options, output)
    check_group_by(options.group_by)
    if output == "codecarbon" and options.group_by:
        raise CarbonwrapError("--format codecarbon has one row per run: leave out --group-by")
    since_s = parse_time(options.since, "--since") if options.since else None
    until_s = parse_time(options.until, "--until", end_of_day=True) if options.until else None
    log_dir, log_dir_from = _log_dir(environ)
    paths = options.paths or [Path(log_dir)]
    for path in options.paths:
        if not path.exists():
            raise CarbonwrapError(f"{path}: no such file or directory")
    # No PATH, and no log directory here (yet): no runs, said with where they would be.
    no_runs_here = not options.paths and not paths[0].exists()
    terminal = stdout.isatty() and environ.get("TERM", "") != "dumb"
    # Every run kept only where the output takes them whole; JSON and CSV rows are written out
    # as the runs are read (`RunSpool`); a table lists the most recent (`LISTED`).
    whole = options.model_card or options.to_mlflow
    writer: _Rows | None = None
    if not whole and options.html is None:
        writer = _rows_writer(output, options.group_by, terminal)
    stats = ReadStats()
    builder = ReportBuilder(
        stats,
        options.group_by,
        since_s,
        until_s,
        options.tags,
        listed=None if whole else LISTED,
        spool=writer.spool if writer is not None else None,
        run_ids=output == "json",
    )
    try:
        read_into([] if no_runs_here else paths, builder, stats=stats)
        where = _Where(log_dir, log_dir_from, paths, no_runs_here)
        return _output(options, builder.report(), output, where, environ, stdout, stderr, writer)
    finally:
        if writer is not None:
            writer.spool.close()


@dataclass
class _Where:
    """Where the runs were looked for, for what is said when none was found."""

    log_dir: str
    log_dir_from: str
    paths: list[Path]
    no_runs_here: bool


@dataclass
class _Rows:
    """The spool of an output that lists every run, and how its rows are written out."""

    spool: RunSpool
    write: Callable[[Report, Callable[[str], object]], None]


def _rows_writer(output: str, group_by: str | None, terminal: bool) -> _Rows | None:
    if output == "json":
        from carbonwrap.render.exports import run_json, write_document

        indent = 2 if terminal else None  # for a person; one line for scripts (3x faster)
        return _Rows(
            RunSpool(run_json(indent)), lambda report, write: write_document(report, write, indent)
        )
    if output == "csv" and not group_by:
        from carbonwrap.render.exports import RunsCsv

        csv = RunsCsv()
        spool = RunSpool(csv.encode, csv.forget)
        return _Rows(spool, lambda report, write: csv.write(spool.rows(), write))
    if output == "codecarbon":
        from carbonwrap.render.exports import codecarbon_encoder, write_codecarbon
        from carbonwrap.report.places import Places

        spool = RunSpool(codecarbon_encoder(Places()))
        return _Rows(spool, lambda report, write: write_codecarbon(spool.rows(), write))
    return None


def _output(
    options: ReportOptions,
    result: Report,
    output: str,
    where: _Where,
    environ: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
    writer: _Rows | None,
) -> int:
    stats = result.stats
    log_dir, log_dir_from, paths = where.log_dir, where.log_dir_from, where.paths
    no_runs_here = where.no_runs_here
    if result.groups is not None and options.group_by == "job":
        # Slurm's own figure per job, where its accounting has one (not per host or rank:
        # sacct's is the whole job's)
        from carbonwrap.report.sacct import add_consumed_energy

        result.sacct_note = add_consumed_energy(result.groups, environ)
    for problem in stats.unreadable[:3]:
        stderr.write(f"carbonwrap: could not read {shown(problem)}\n")
    if len(stats.unreadable) > 3:
        stderr.write(f"carbonwrap: could not read {len(stats.unreadable) - 3} more files\n")
    if no_runs_here:
        stderr.write(
            f"carbonwrap: no runs here: {shown(log_dir.rstrip('/') + '/')} does not exist "
            f"({log_dir_from}); "
            "`carbonwrap run -- COMMAND` logs a run there, or point at logs elsewhere: "
            "carbonwrap report DIR, or set log_dir (see 'carbonwrap config')\n"
        )
    elif stats.logs == 0:
        looked = ", ".join(shown(str(p)) for p in paths)
        stderr.write(f"carbonwrap: no carbonwrap logs found in {looked}\n")
    if options.model_card:
        return _model_card(result, stdout, stderr)
    if options.to_mlflow:
        return _to_mlflow(result, options.mlflow_experiment, environ, stdout, stderr)
    if options.html is not None and options.html != "-":
        try:  # the mode of the user's file replaced: they chose who may read their reports
            replace_whole(options.html, html_page(result).encode("utf-8"), mode=None)
        except OSError as exc:
            raise CarbonwrapError(
                f"--html {options.html}: cannot write it: {exc.strerror}"
            ) from None
        return 0
    try:
        if writer is not None:
            writer.write(result, stdout.write)
        else:
            text = html_page(result) if options.html else _render(result, output, environ, stdout)
            stdout.write(text)
        stdout.flush()
    except BrokenPipeError:  # `carbonwrap report | head`: the reader has what it wanted
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    return 0


def check_other_outputs(options: ReportOptions, output: str) -> None:
    """--model-card and --to-mlflow are outputs of their own: not with another format, not
    with --group-by (a card sums the runs; MLflow gets each run)."""
    chosen = [
        n
        for n, on in (("--model-card", options.model_card), ("--to-mlflow", options.to_mlflow))
        if on
    ]
    if options.mlflow_experiment is not None and not options.to_mlflow:
        raise CarbonwrapError("--mlflow-experiment goes with --to-mlflow")
    if not chosen:
        return
    if output != "table" or options.output_format or options.html is not None:
        other = "--html" if options.html is not None else output
        raise CarbonwrapError(f"choose one output, not {chosen[0]} and {other}")
    if len(chosen) > 1:
        raise CarbonwrapError("choose one output, not --model-card and --to-mlflow")
    if options.group_by:
        raise CarbonwrapError(f"{chosen[0]} takes the runs themselves: leave out --group-by")


def _model_card(result: Report, stdout: TextIO, stderr: TextIO) -> int:
    """The selected runs' co2_eq_emissions block on stdout; what it sums on stderr."""
    from carbonwrap import __version__
    from carbonwrap.render.model_card import model_card_yaml
    from carbonwrap.report.places import places_of

    if not result.runs:
        raise CarbonwrapError("--model-card: no runs selected, so no emissions to state")
    stdout.write(model_card_yaml(result.runs, places_of(result.runs), __version__))
    stdout.flush()
    incomplete = sum(not s.complete for s in result.runs)
    n = len(result.runs)
    stderr.write(
        f"carbonwrap: co2_eq_emissions of {n} run{'' if n == 1 else 's'}"
        + (
            f", {incomplete} without an end record (counted up to their last sample)"
            if incomplete
            else ""
        )
        + "; paste it into the YAML header (between the --- lines) of the model's README.md\n"
    )
    return 0


def _to_mlflow(
    result: Report,
    experiment: str | None,
    environ: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Each selected finished run into MLflow once; one line on what was done. Exit status 1
    when some run could not be logged (each said, with why)."""
    from carbonwrap.report.mlflow_backfill import backfill, mlflow_client

    client = mlflow_client(environ.get("MLFLOW_TRACKING_URI") or None)
    try:
        done = backfill(result.runs, client, experiment, environ)
    except Exception as exc:  # the experiment itself: an unreachable server, a bad URI
        raise CarbonwrapError(f"--to-mlflow: {type(exc).__name__}: {str(exc)[:300]}") from None
    for problem in done.failed:
        stderr.write(f"carbonwrap: --to-mlflow: could not log run {problem}\n")
    parts = [f"{len(done.logged)} run(s) logged to MLflow experiment {done.experiment_id}"]
    if done.already:
        parts.append(f"{len(done.already)} already there")
    if done.incomplete:
        parts.append(f"{len(done.incomplete)} without an end record left for later")
    if done.failed:
        parts.append(f"{len(done.failed)} failed")
    stdout.write("; ".join(parts) + "\n")
    return 1 if done.failed else 0


def _log_dir(environ: Mapping[str, str]) -> tuple[str, str]:
    """The runs' log directory: $CARBONWRAP_LOG_DIR, else the settings files, else ./logs;
    and where that came from, as an error names it."""
    from carbonwrap.settings.resolve import load_config, named

    value = load_config(environ).resolve({}, environ)["log_dir"]
    return str(value.value), named("log_dir", value)


def check_html_target(options: ReportOptions, output: str) -> None:
    if output != "table" or options.output_format:
        raise CarbonwrapError(f"choose one output format, not html and {output}")
    if not options.html:
        raise CarbonwrapError("--html: name a file, or - for stdout")
    if options.html != "-":
        check_target("--html", options.html)


def html_page(result: Report) -> str:
    """The HTML page; series are read only for the runs it charts (`series.MAX_CHARTS`)."""
    from carbonwrap.render.html import render_html
    from carbonwrap.report.series import charts_for

    return render_html(result, charts_for(result.runs))


RICH_MAX_ROWS = 500  # beyond this, rich's table layout takes seconds: plain text instead


def _render(result: Report, output: str, environ: Mapping[str, str], stdout: TextIO) -> str:
    """The table, or the CSV of groups (JSON and the CSVs of runs: `_rows_writer`)."""
    terminal = stdout.isatty() and environ.get("TERM", "") != "dumb"
    if output == "csv" and result.groups is not None and result.group_by is not None:
        from carbonwrap.render.exports import groups_csv

        return groups_csv(result.groups, result.group_by)
    from carbonwrap.render.runs import render_rich, render_text, runs_view

    view = runs_view(result)
    if not terminal or len(view.rows) > RICH_MAX_ROWS:
        return render_text(view, _text_width(stdout, environ))
    import io

    from rich.console import Console

    buffer = io.StringIO()
    width = Console(file=stdout).width
    Console(file=buffer, width=width, force_terminal=True, highlight=False).print(render_rich(view))
    return buffer.getvalue()


def _text_width(stdout: TextIO, environ: Mapping[str, str]) -> int | None:
    """The plain table's width: $COLUMNS where set, else the terminal's; None for a pipe or a
    file (every column: a script or a file wants them all)."""
    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stdout.fileno()).columns if stdout.isatty() else None
    except (OSError, ValueError):  # no descriptor (a StringIO), or not a terminal after all
        return None


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
