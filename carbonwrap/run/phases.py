"""The run command: start the child, sample its energy, log events, report at the end."""

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap import __version__, gcpause
from carbonwrap.errors import CarbonwrapError, ExitCode
from carbonwrap.intensity.plan import plan_intensity
from carbonwrap.measure.accounting import TreeAccounting, new_run_id, open_accounting
from carbonwrap.measure.attribution import Reading
from carbonwrap.measure.meters import Meters
from carbonwrap.measure.proctree import ProcessTreeAccounting
from carbonwrap.measure.sampler import Sampler, Totals
from carbonwrap.run.child import Child, become_subreaper
from carbonwrap.run.options import RunOptions
from carbonwrap.run.outputs import check_json_target, write_outputs
from carbonwrap.run.redact import redact_argv
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import Fold
from carbonwrap.runlog.writer import EventLog, log_name
from carbonwrap.sensors import SensorUnavailable

if TYPE_CHECKING:
    from carbonwrap.intensity.poller import IntensityPoller as Poller
    from carbonwrap.live.textfile import TextfileExporter
    from carbonwrap.predict.predictor import Predictor
    from carbonwrap.predict.relay import OutputRelay
    from carbonwrap.quantities import Budget
    from carbonwrap.run.budget import BudgetWatch


class Recorder:
    """Writes each record to the log and folds it into the summary, under one lock; then hands
    it to each of `observers` (the predictor, the budget), outside the lock, on the recording
    thread: an observer may record (its records reach the observers too) and read the fold,
    and must not raise."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.fold = Fold()
        self._lock = threading.Lock()
        self.observers: list[Callable[[dict[str, Any]], None]] = []

    def __call__(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.log.write(record)
            self.fold.add(record)
        for observe in self.observers:
            observe(record)

    def locked(self, read: Callable[[Fold], Any]) -> Any:
        """`read(fold)` while no record is being added (for the live view's thread)."""
        with self._lock:
            return read(self.fold)


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
    # Until the child runs, whatever fails undoes what was set up: no leaf, no empty log left.
    undo: list[Callable[[], object]] = [acct.finish]
    try:
        if options.log_interval_s < options.interval_s:  # the CLI names the settings' sources
            raise CarbonwrapError(
                f"log interval {options.log_interval_s:g} s is shorter than the sampling "
                f"interval {options.interval_s:g} s"
            )
        check_json_target(options.json_path)
        plan = plan_intensity(
            options.region,
            options.location,
            options.cloud,
            options.intensity_source,
            options.intensity_g_per_kwh,
            environ,
            options.config,
        )
        uname = os.uname()
        host = uname.nodename or "localhost"
        started_wall = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_wall))
        log = EventLog(options.log_dir, log_name(stamp, host, run_id), options.log_mode)
        undo.append(log.discard)
        record = Recorder(log)
        env = dict(environ)
        env["CARBONWRAP_RUN_ID"] = run_id
        t0 = time.monotonic()

        def warn(message: str) -> None:
            record(
                records.warning(
                    time_s=time.time(), elapsed_s=time.monotonic() - t0, message=message
                )
            )

        budget: Budget | None = None
        if options.budget is not None:
            from carbonwrap.quantities import parse_budget  # only with --budget (start-up time)

            try:
                budget = parse_budget(options.budget)
            except ValueError as exc:
                raise CarbonwrapError(f"--budget {options.budget!r} {exc}") from None

        exporter: TextfileExporter | None = None
        if options.prometheus_textfile is not None:
            from carbonwrap.live import textfile  # only with the option (start-up time)

            textfile.check_target(options.prometheus_textfile)
            exporter = textfile.TextfileExporter(options.prometheus_textfile, record.locked, warn)

        def on_progress(
            done: float, total: float | None, unit: str, source: str, at_s: float
        ) -> None:
            """A report the rate limiter lets into the log; `at_s`: when it came (monotonic)."""
            record(
                records.progress(
                    time_s=time.time() - (time.monotonic() - at_s),
                    elapsed_s=at_s - t0,
                    done=done,
                    total=total,
                    unit=unit,
                    source=source,
                )
            )

        from carbonwrap.predict.channel import ENV, open_channel

        channel = open_channel(environ, run_id, on_progress, options.log_interval_s, notes)
        if channel is not None:  # the command reports to it: carbonwrap.progress(3, 10, "epoch")
            env[ENV] = channel.path
            undo.append(channel.discard)
        else:  # not an outer carbonwrap's channel either: this run's note says why none
            env.pop(ENV, None)
        relay = None
        if options.progress_from_output:
            from carbonwrap.predict.relay import OutputRelay  # only with the option

            relay = OutputRelay(on_progress, options.log_interval_s, notes)
            undo.append(relay.discard)

        def emit(totals: Totals) -> None:
            record(_sample(totals))
            if exporter is not None:
                exporter.write()  # after the sample is folded: the file agrees with the log

        meters = Meters(environ, env)
        undo.append(meters.close)
        notes += meters.notes

        def read() -> Reading:
            reading = meters.read(acct)
            for note in meters.new_notes():
                warn(note)
            return reading

        sampler = Sampler(
            read,
            meters.model,
            options.interval_s,
            options.log_interval_s,
            emit,
            warn,
        )
        become_subreaper()
        child, acct = _start_child(options, env, acct, notes, relay)
        if relay is not None:
            relay.spawned()
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
        raise
    gcpause.resume()  # start-up is over; the wrapper now lives as long as the job
    record(
        records.start(
            run_id=run_id,
            time_s=started_wall,
            argv=redact_argv(options.command) if options.log_argv else None,
            cwd=os.getcwd(),
            host=host,
            pid=child.pid,
            versions={
                "carbonwrap": __version__,
                "python": ".".join(map(str, sys.version_info[:3])),
                "kernel": uname.release,
            },
            cpu_accounting=acct.method,
            components=meters.components,
            region=plan.region,
            pue=options.pue,
            interval_s=options.interval_s,
            log_interval_s=options.log_interval_s,
            job=records.job_metadata(environ),
            tags=options.tags,
            schedule=options.schedule,
        )
    )
    static = plan.static
    record(
        records.intensity(
            time_s=started_wall,
            elapsed_s=0.0,
            intensity_g_per_kwh=static.intensity_g_per_kwh,
            region=plan.region["code"],
            source=static.source,
        )
    )
    if plan.choice.note:
        notes.append(plan.choice.note)
    for note in notes:
        warn(note)
    if exporter is not None:
        exporter.write()
    watch = None
    if budget is not None:  # before any sample or progress record: every one is checked
        watch = _watch_budget(budget, options, record, child, acct, stderr, t0)
    poller: Poller | None = None  # made below, after the sampler starts

    def forecast() -> list[tuple[float, float, float]]:
        if poller is None:
            return []
        poller.want_forecast()  # from the first prediction on
        return [(p.start_s, p.end_s, p.intensity_g_per_kwh) for p in poller.forecast()]

    def make_predictor() -> "Predictor":
        from carbonwrap.predict.predictor import Predictor

        predictor = Predictor(
            record,
            lambda: _energy_now(sampler),
            lambda: record.locked(Fold.so_far),
            options.pue,
            started_wall,
            options.log_interval_s,
            lambda: time.monotonic() - t0,
            forecast,
            warn,
        )
        if watch is not None:
            predictor.listeners.append(watch.on_prediction)
        return predictor

    predictions = _OnProgress(make_predictor)
    record.observers.append(predictions)
    if channel is not None:
        channel.start()  # after the start record: progress records follow it
    if relay is not None:
        relay.start()
    sampler.start()
    poller = None
    if plan.choice.make is not None and plan.choice.name is not None:
        from carbonwrap.intensity.poller import IntensityPoller  # asyncio: only when polling

        poller = IntensityPoller(
            plan.choice.make,
            plan.choice.name,
            static,
            plan.region["code"],
            record,
            warn,
            started_wall,
            t0,
        )
        poller.start()
    live = _start_live_view(options, environ, stderr, sampler, record, meters)
    ending = child.wait()
    if watch is not None:
        watch.finish()  # stopping: the rest of the tree gets the grace period too
    if live is not None:
        live.stop()  # the terminal is whole again before anything else is printed
    if channel is not None:
        channel.close(warn)  # what is queued, the last report, then the socket is removed
    if relay is not None:
        relay.finish(warn)  # the rest of the output, before carbonwrap writes anything
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
    meters.close()
    if poller is not None:
        poller.stop(budget_s=0.3)  # measured history if it comes in time; never longer
    if log.failed:  # on stderr, and in the reports (the log itself may not take it)
        stderr.write(f"carbonwrap: {log.failed}\n")
        warn(f"the log is incomplete: {log.failed}")
    predictions.flush()  # the prediction from every report, logged before the end
    record(
        records.end(
            time_s=time.time(),
            elapsed_s=totals.elapsed_s,
            exit_code=ending.exit_code,
            signal=ending.signal_name,
            cpu_s=totals.cpu_s,
            energy_j=totals.energy_j,
            device_energy_j=totals.device_energy_j,
            leftover_pids=leftover,
            signals_received=child.received,
            gpus=_gpus(totals),
            stopped=watch.stopped if watch is not None else None,
        )
    )
    if exporter is not None:
        exporter.write()  # final values, `carbonwrap_run_ended 1`; the file stays
    log.close()
    summary = record.fold.summary()
    summary.log_path = str(log.path)
    write_outputs(summary, options.json_path, options.quiet, environ, stderr)
    if watch is not None and watch.stopped is not None:
        return ExitCode.BUDGET_STOPPED  # documented; the command's own status is in the log
    return ending.exit_code


def _gpus(totals: Totals) -> dict[int, dict[str, Any]]:
    return {
        index: {"energy_j": g.energy_j, "device_energy_j": g.device_energy_j, "methods": g.methods}
        for index, g in totals.gpus.items()
    }


def _sample(totals: Totals) -> dict[str, Any]:
    return records.sample(
        time_s=time.time(),
        elapsed_s=totals.elapsed_s,
        cpu_s=totals.cpu_s,
        energy_j=totals.energy_j,
        device_energy_j=totals.device_energy_j,
        gpus=_gpus(totals),
    )


class _OnProgress:
    """A Recorder observer that makes the predictor (`make`, which imports it) at the first
    progress record and hands it every record from then on."""

    def __init__(self, make: Callable[[], "Predictor"]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.predictor: Predictor | None = None

    def __call__(self, record: dict[str, Any]) -> None:
        if self.predictor is None:
            if record.get("type") != "progress":
                return
            with self._lock:
                if self.predictor is None:
                    self.predictor = self._make()
        self.predictor.observe(record)

    def flush(self) -> None:
        if self.predictor is not None:
            self.predictor.flush()


def _energy_now(sampler: Sampler) -> tuple[float, float]:
    """The sampler's latest reading: elapsed s and the attributed energy (J) so far."""
    totals = sampler.snapshot()
    return totals.elapsed_s, sum(totals.energy_j.values())


def _watch_budget(
    budget: "Budget",
    options: RunOptions,
    record: Recorder,
    child: Child,
    acct: TreeAccounting,
    stderr: TextIO,
    t0: float,
) -> "BudgetWatch":
    """The budget's observer, its `set` record logged; it says what happens on stderr (also
    with --quiet: the user asked to be told)."""
    from carbonwrap.run.budget import BudgetWatch

    def say(message: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a terminal that has gone away
            stderr.write(f"carbonwrap: {message}\n")
            stderr.flush()

    watch = BudgetWatch(
        budget,
        options.on_exceed,
        record,
        lambda: float(record.locked(Fold.co2e_g)),
        say,
        lambda: time.monotonic() - t0,
        (child.pid, child.send, acct.pids),
        options.budget_grace_s,
    )
    record(watch.set_record())
    record.observers.append(watch.observe)
    return watch


def _start_child(
    options: RunOptions,
    env: dict[str, str],
    acct: TreeAccounting,
    notes: list[str],
    relay: "OutputRelay | None" = None,
) -> tuple[Child, TreeAccounting]:
    """Start the command in the accounting's placement; if the leaf refuses us (auto mode),
    fall back to process-tree polling, with a note. The command has not run when that happens."""
    actions = relay.file_actions if relay is not None else ()
    try:
        child = Child(options.command, env, acct.placement(), actions)
    except SensorUnavailable as exc:
        if options.cpu_accounting != "auto":
            raise CarbonwrapError(
                f"--cpu-accounting {acct.method}: {exc.reason}; use --cpu-accounting auto"
            ) from exc
        acct.finish()
        notes.append(f"{exc.reason}; CPU time counted by polling the process tree (approximate)")
        acct = ProcessTreeAccounting()
        child = Child(options.command, env, acct.placement(), actions)
    acct.started(child.pid)
    return child, acct


def _start_live_view(
    options: RunOptions,
    environ: Mapping[str, str],
    stderr: TextIO,
    sampler: Sampler,
    record: Recorder,
    meters: Meters,
) -> Any:
    """The status area at the bottom of the terminal, when stderr is one and it is wanted."""
    if options.quiet or options.no_live or not stderr.isatty():
        return None  # decided without importing the view (start-up cost)
    from carbonwrap.live.view import LiveView

    if not LiveView.wanted(stderr, environ, options.quiet, options.no_live):
        return None
    from carbonwrap.live.feed import LiveFeed

    feed = LiveFeed(sampler.snapshot, record.locked, meters.components)
    view = LiveView(stderr, feed, environ)
    view.start()
    return view
