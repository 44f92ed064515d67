"""A run in four phases over one `RunContext`: prepare (everything that can fail, before the
command runs; undone if anything does) → start (the child in its leaf, the start record, the
threads) → wait (for the child) → finish (`run/finish.py`: each part taken down in STOP_ORDER,
the end record, the reports)."""

from __future__ import annotations

import errno
import os
import sys
import time

from carbonwrap import __version__, gcpause
from carbonwrap.errors import CarbonwrapError
from carbonwrap.intensity.plan import plan_intensity
from carbonwrap.lite import suppress
from carbonwrap.measure.accounting import TreeAccounting, open_accounting
from carbonwrap.measure.leafjoin import new_run_id
from carbonwrap.measure.meters import Meters
from carbonwrap.measure.sampler import Sampler
from carbonwrap.run.child import Child
from carbonwrap.run.context import RunContext, energy_now
from carbonwrap.run.finish import finish
from carbonwrap.run.options import RunOptions
from carbonwrap.run.redact import redact_argv
from carbonwrap.runlog import records
from carbonwrap.runlog.recorder import Recorder
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog, log_name
from carbonwrap.sensors import SensorUnavailable

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

TOTALS_ENV = "CARBONWRAP_TOTALS"  # live/totals.py's ENV, named here without importing it


def run(
    options: RunOptions,
    environ: Mapping[str, str],
    stderr: TextIO,
    accounting: tuple[TreeAccounting, list[str]] | None = None,
) -> int:
    """Run the command to completion; returns the exit status carbonwrap should exit with.

    `accounting`: from `open_accounting`, opened by the caller as early as it can (the leaf's
    join overlaps start-up); its leaf is named after `options.run_id`.
    """
    run_id = options.run_id or new_run_id()
    acct, notes = accounting or open_accounting(options.cpu_accounting, run_id)
    context = RunContext(options, environ, stderr, run_id, acct, notes)
    try:
        prepare(context)
        spawn(context)
    except BaseException as exc:  # the command has not run: nothing of the run is left behind
        for step in reversed(context.undo):
            with suppress(Exception):
                step()
        cause = exc.__cause__ if isinstance(exc, CarbonwrapError) else None
        if isinstance(cause, OSError) and cause.errno in (errno.EMFILE, errno.ENFILE):
            raise cause from None  # the fd limit, not the log directory: cli/main says so
        raise
    start(context)
    context.ending = context.child.wait()
    return finish(context)


def plan_and_log(run: RunContext) -> None:
    """The parts of `prepare` a run and a block share: paths checked, the intensity planned,
    the log opened (undone if a later part fails) with its recorder, the clocks started."""
    options = run.options
    check_relative_paths(options)
    if options.json_path is not None:  # run/outputs.py only with --json (start-up)
        from carbonwrap.run.outputs import check_json_target

        check_json_target(options.json_path)
    run.plan = plan_intensity(
        options.region,
        options.location,
        options.cloud,
        options.intensity_source,
        options.intensity_g_per_kwh,
        run.environ,
        options.config,
    )
    run.started_wall = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(run.started_wall))
    run.log = EventLog(options.log_dir, log_name(stamp, run.host, run.run_id), options.log_mode)
    run.undo.append(run.log.discard)
    run.record = Recorder(run.log)
    run.t0 = time.monotonic()


def prepare(run: RunContext) -> None:
    """Everything that can fail before the command runs: checks, where the run is and its
    intensity, the log, the budget, the .prom file, the meters, the progress channel and
    relay, and the sampler. Each part that must be undone if a later one fails says how."""
    options = run.options
    if options.log_interval_s < options.interval_s:  # the CLI names the settings' sources
        raise CarbonwrapError(
            f"log interval {options.log_interval_s:g} s is shorter than the sampling "
            f"interval {options.interval_s:g} s"
        )
    plan_and_log(run)
    if options.budget is not None:
        from carbonwrap.quantities import parse_budget  # only with --budget (start-up time)

        try:
            run.budget = parse_budget(options.budget)
        except ValueError as exc:
            raise CarbonwrapError(f"--budget {options.budget!r} {exc}") from None
    if options.prometheus_textfile is not None:
        from carbonwrap.live import textfile  # only with the option (start-up time)

        textfile.check_target(options.prometheus_textfile)
        run.exporter = textfile.TextfileExporter(
            options.prometheus_textfile, run.record.locked, run.warn
        )
    # The meters before the channel and the relay: under a low `ulimit -n` those go without
    # (a note each), the measurement does not. A cgroup leaf knows its hierarchy's root (the
    # machine's busy time is cheapest there); the process tree does not.
    hierarchy_root = getattr(run.acct, "hierarchy_root", "")
    run.meters = Meters(run.environ, run.env, hierarchy_root=hierarchy_root)
    run.undo.append(run.meters.close)
    elect_node_role(run)
    open_progress(run)
    run.notes += run.meters.notes
    run.sampler = Sampler(
        run.read,
        run.meters.model,
        options.interval_s,
        options.log_interval_s,
        run.emit,
        run.warn,
        # Only a budget watches every reading; without one the sampler copies no totals for it.
        on_reading=run.on_reading if run.budget is not None else None,
    )


def elect_node_role(run: RunContext) -> None:
    """In a job, which of the node's whole-device figures this wrapper records (see
    `run/node_role.py`); outside one, all of them, and nothing is imported or locked."""
    job = records.job_metadata(run.environ)
    key = records.job_key(job)
    if key is None:
        return
    from carbonwrap.run.node_role import elect

    devices = run.meters.components.get("gpu", {}).get("devices") or []
    gpus = [(int(d["index"]), str(d.get("uuid", ""))) for d in devices]
    run.node = elect(key, job, run.environ, gpus)
    run.undo.append(run.node.release)


def working_directory() -> tuple[str, bool]:
    """The working directory, and whether it has been deleted: then getcwd(2) fails, and its
    name is the one the kernel keeps for it ("/path (deleted)"), or "" if even that fails."""
    try:
        return os.getcwd(), False
    except FileNotFoundError:
        try:
            return os.readlink("/proc/self/cwd"), True
        except OSError:
            return "", True


def check_relative_paths(options: RunOptions) -> None:
    """Started in a deleted directory, carbonwrap runs the command there as a shell would, but
    cannot write a file relative to it: one line now, before the command, as for any log
    directory that cannot be written."""
    relative = [
        (what, path, how)
        for what, path, how in (
            ("the log directory", options.log_dir, " (--log-dir or CARBONWRAP_LOG_DIR)"),
            ("--json", options.json_path if options.json_path != "-" else None, ""),
            ("--prometheus-textfile", options.prometheus_textfile, ""),
        )
        if path is not None and not os.path.isabs(path)
    ]
    if not relative:
        return
    where, deleted = working_directory()
    if deleted:
        what, path, how = relative[0]
        where = where.removesuffix(" (deleted)") or "(its name is unknown)"
        raise CarbonwrapError(
            f"the working directory {where} has been deleted, and {what} {path!r} is relative "
            f"to it: give an absolute path{how}, or cd to a directory that exists"
        )


def open_progress(run: RunContext) -> None:
    """The CARBONWRAP_PROGRESS socket the command may report to, and with
    --progress-from-output the relay of its output; both undone if the run cannot start."""
    from carbonwrap.predict.channel import ENV, open_channel

    run.channel = open_channel(
        run.environ, run.run_id, run.on_progress, run.options.log_interval_s, run.notes
    )
    if run.channel is not None:  # the command reports to it: carbonwrap.progress(3, 10)
        run.env[ENV] = run.channel.path
        # and reads the totals back beside it (live/totals.py: its ENV and NAME)
        run.env[TOTALS_ENV] = os.path.join(run.channel.directory, "totals")
        run.undo.append(run.channel.discard)
    else:  # not an outer carbonwrap's channel either: this run's note says why none
        run.env.pop(ENV, None)
        run.env.pop(TOTALS_ENV, None)
    if run.options.progress_from_output:
        from carbonwrap.predict.relay import OutputRelay  # only with the option

        try:
            run.relay = OutputRelay(run.on_progress, run.options.log_interval_s, run.notes)
        except OSError as exc:  # no pipes (EMFILE under a low `ulimit -n`): not worth the run
            note = (
                f"--progress-from-output: the command's output is not relayed ("
                f"{exc.strerror or exc}); progress is read only from CARBONWRAP_PROGRESS"
            )
            run.notes.append(note)
            say_now(run, [note])
            return
        run.undo.append(run.relay.discard)
        say_now(run, run.relay.at_start)  # what cannot work is said before the command runs
        run.stderr = run.relay.own_stream(run.stderr)  # CR LF while its terminal is raw


def watch_totals(run: RunContext) -> None:
    """The totals file the command may read back (`carbonwrap.report_progress.totals()`),
    kept from its first logged progress report on (live/totals.py, imported only then)."""
    path = run.env.get(TOTALS_ENV)
    if path is None:
        return
    observer: Callable[[records.Record], None] | None = None

    def observe(record: records.Record) -> None:
        nonlocal observer
        if observer is None:
            if record.get("type") != "progress":
                return
            from carbonwrap.live.totals import totals_observer

            observer = totals_observer(
                path, run.record.locked, lambda: energy_now(run.sampler, run.t0)
            )
        observer(record)

    run.record.observers.append(observe)


def say_now(run: RunContext, notes: list[str]) -> None:
    """Notes on stderr at once, before the command's output (also in the log, with the rest)."""
    with suppress(OSError, ValueError):  # a terminal that has gone away
        for note in notes:
            run.stderr.write(f"carbonwrap: {note}\n")
        run.stderr.flush()


def spawn(run: RunContext) -> None:
    """The command, started in the accounting's placement (a cgroup leaf, or with carbonwrap
    its subreaper for the process tree: `ProcessTreeAccounting.placement`); if
    the leaf refuses us (auto mode), process-tree polling instead, with a note. The command has
    not run when that happens."""
    options, relay = run.options, run.relay
    if run.acct.joining:
        load_for_the_end(run)
    actions = relay.file_actions if relay is not None else ()
    session = relay is not None and relay.new_session  # the command leads one on its pty
    try:
        run.child = Child(options.command, run.env, run.acct.placement(), actions, session)
    except SensorUnavailable as exc:
        if options.cpu_accounting != "auto":
            raise CarbonwrapError(
                f"--cpu-accounting {run.acct.method}: {exc.reason}; use --cpu-accounting auto"
            ) from exc
        from carbonwrap.measure.proctree import ProcessTreeAccounting  # the fallback only

        run.acct.finish()
        run.notes.append(
            f"{exc.reason}; CPU time counted by polling the process tree (approximate)"
        )
        run.acct = ProcessTreeAccounting()
        run.child = Child(options.command, run.env, run.acct.placement(), actions, session)
    run.acct.started(run.child.pid)
    if relay is not None:
        relay.spawned(run.child.pid)


def load_for_the_end(run: RunContext) -> None:
    """Load what the end of the run will need, the report's renderers and --json's writer,
    at a time that costs nothing: while the kernel still moves carbonwrap into the cgroup leaf
    (an RCU grace period, up to tens of ms, that the spawn waits for), else once the command
    runs (beside it, before carbonwrap waits for it). Never before a spawn that could go at
    once (issue 19: for a short command, every millisecond is the run's)."""
    options = run.options
    if not options.quiet:
        import carbonwrap.render.final
    if not options.quiet or options.json_path is not None:
        import carbonwrap.run.outputs  # noqa: F401


def start(run: RunContext) -> None:
    """The command runs: the start record and the intensity in force, the notes, the budget
    and the predictor as observers, then the threads (channel, relay, sampler, poller, live
    view). Nothing here undoes anything: from now on `finish` ends every part."""
    gcpause.resume()  # start-up is over; the wrapper now lives as long as the job
    plan, record = run.plan, run.record
    record(start_record(run))
    record(
        records.intensity(
            time_s=run.started_wall,
            elapsed_s=0.0,
            intensity_g_per_kwh=plan.static.intensity_g_per_kwh,
            region=plan.region["code"],
            source=plan.static.source,
        )
    )
    if plan.choice.note:
        run.notes.append(plan.choice.note)
    for note in run.notes:
        run.warn(note)
    if run.exporter is not None:
        run.exporter.write()
    if run.budget is not None:  # before any sample or progress record: every one is checked
        watch_budget(run)
    record.observers.append(run.predictions)
    watch_totals(run)
    if run.options.mlflow is not None:  # before the first sample: every one is logged
        attach_mlflow(run)
    if run.relay is not None:
        run.relay.start()  # the command's output flows on while the rest is loaded
    load_for_the_end(run)  # while the command runs (if not already, while joining)
    # A command that has already ended (`true`) needs no thread to read its progress reports
    # (the channel's close reads what it sent) nor readings between the first and the last:
    # none is started for it.
    running = not run.child.ended()
    if run.channel is not None and running:
        run.channel.start()  # after the start record: progress records follow it
    if running:
        run.sampler.start()
    if plan.choice.make is not None and plan.choice.name is not None:
        try:
            start_poller(run)
        except OSError as exc:  # the command runs: it must not end carbonwrap now (`ulimit -n`)
            run.poller = None
            run.warn(
                f"intensity polling not started ({exc.strerror or exc}); the static value stays "
                "in force"
            )
    try:
        start_live_view(run)
    except OSError as exc:
        run.live = None
        run.warn(f"no live view ({exc.strerror or exc})")


def attach_mlflow(run: RunContext) -> None:
    """--mlflow: the sink observes the records; its thread imports mlflow now that the command
    runs (0.7 s of CPU it would otherwise wait for)."""
    from carbonwrap.live.mlflow import attach_mlflow as attach

    assert run.options.mlflow is not None
    program = os.path.basename(run.options.command[0]) if run.options.log_argv else ""
    attach(
        run.record,
        run.warn,
        run.environ,
        run_id=run.options.mlflow.get("run_id"),
        experiment=run.options.mlflow.get("experiment"),
        run_name=f"{program} {run.run_id}".strip(),
    )


def start_poller(run: RunContext) -> None:
    """The thread that polls the intensity provider the plan chose."""
    from carbonwrap.intensity.poller import IntensityPoller  # asyncio: only when polling

    plan = run.plan
    assert plan.choice.make is not None and plan.choice.name is not None
    run.poller = IntensityPoller(
        plan.choice.make,
        plan.choice.name,
        plan.static,
        plan.region["code"],
        run.record,
        run.warn,
        run.started_wall,
        run.t0,
    )
    run.poller.start()


def start_record(run: RunContext, kind: str | None = None) -> records.Record:
    """The start record: the command (redacted, or left out), where and how it is measured;
    `kind` "block" for a block of Python measured in-process (run/block.py)."""
    options, plan = run.options, run.plan
    return records.start(
        run_id=run.run_id,
        time_s=run.started_wall,
        argv=redact_argv(options.command) if options.log_argv else None,
        cwd=working_directory()[0],
        host=run.host,
        pid=run.child.pid,
        versions={
            "carbonwrap": __version__,
            "python": ".".join(map(str, sys.version_info[:3])),
            "kernel": run.kernel,
        },
        cpu_accounting=run.acct.method,
        components=run.meters.components,
        region=plan.region,
        pue=options.pue,
        interval_s=options.interval_s,
        log_interval_s=options.log_interval_s,
        job=records.job_metadata(run.environ),
        tags=options.tags,
        schedule=options.schedule,
        node_role=(run.node.role, run.node.basis) if run.node is not None else None,
        kind=kind,
    )


def watch_budget(run: RunContext) -> None:
    """The budget's watch, its `set` record logged; it says what happens on stderr (also with
    --quiet: the user asked to be told)."""
    from carbonwrap.run.budget import BudgetWatch

    stderr, record = run.stderr, run.record
    assert run.budget is not None

    def say(message: str) -> None:
        with suppress(OSError, ValueError):  # a terminal that has gone away
            stderr.write(f"carbonwrap: {message}\n")
            stderr.flush()

    def co2e_at_g(energy_j: float) -> float:
        return float(record.locked(Fold.so_far).co2e_at_g(energy_j))

    # Checked at every reading of the sampler (`RunContext.on_reading`), not at logged samples.
    run.watch = BudgetWatch(
        run.budget,
        run.options.on_exceed,
        record,
        co2e_at_g,
        say,
        run.elapsed_s,
        (run.child.pid, run.child.send, run.acct.pids),
        run.options.budget_grace_s,
    )
    record(run.watch.set_record())


def start_live_view(run: RunContext) -> None:
    """The status area at the bottom of the terminal, when stderr is one and it is wanted."""
    options, stderr = run.options, run.stderr
    if options.quiet or options.no_live or not stderr.isatty():
        return  # decided without importing the view (start-up cost)
    from carbonwrap.live.view import LiveView

    if not LiveView.wanted(stderr, run.environ, options.quiet, options.no_live):
        return
    from carbonwrap.live.feed import LiveFeed

    feed = LiveFeed(run.sampler.snapshot, run.record.locked, run.meters.components)
    # Through the pty relay's one writer where it copies the command's output to this terminal.
    write = run.relay.beside(stderr) if run.relay is not None else None
    run.live = LiveView(stderr, feed, run.environ, write=write)
    run.live.start()
