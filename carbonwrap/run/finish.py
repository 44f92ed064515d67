"""The end of a run, once the command has ended: each part taken down in STOP_ORDER, the end
record, then the reports and the exit status."""

from __future__ import annotations

import time

from carbonwrap.errors import ExitCode
from carbonwrap.measure.accounting import escape_warning
from carbonwrap.run.context import RunContext, device_totals, gpu_totals
from carbonwrap.runlog import records

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable

# Processes of the tree that end this soon after the count was frozen are not "left running":
# a pool's workers and a resource tracker (multiprocessing, joblib/loky) that notice their
# parent has gone end a moment after it. The wait ends as soon as none is left.
LEFTOVER_WAIT_S = 1.0
_LEFTOVER_POLL_S = 0.01

# How a run ends once the command has: each step, in this order, and why it comes there.
# `finish` follows this list (and nothing else ends a part); docs/ARCHITECTURE.md quotes it.
STOP_ORDER = (
    ("stop_budget", "a budget stop in progress: the rest of the tree gets its grace period too"),
    ("stop_live_view", "the terminal is whole again before anything else is printed"),
    ("close_channel", "the reports still queued and the last one are logged, the socket removed"),
    ("finish_relay", "the rest of the command's output is copied before carbonwrap writes"),
    ("halt_sampler", "no reading after this; the final one is taken below"),
    (
        "freeze_count",
        "the tree's CPU count frozen first (process-tree mode reconciles with "
        "rusage), so processes left running are not counted",
    ),
    ("final_reading", "the final totals, read after the freeze: the end record matches it"),
    (
        "wait_for_leftovers",
        "processes still running wait up to 1 s (none: no wait), after the totals, so they "
        "are never counted; those that end by then (a pool's workers) were not left running",
    ),
    ("close_meters", "sensors closed (NVML shut down) once nothing reads them"),
    ("stop_poller", "measured intensity history if it comes within 0.3 s, never longer"),
    ("say_log_failure", "a log that could not be written is said on stderr and in the reports"),
    ("flush_predictions", "the prediction from every progress report, logged before the end"),
    ("record_end", "the end record: exit status, final totals, what was left running"),
    ("write_textfile", "the .prom file's final values (carbonwrap_run_ended 1); it stays"),
    ("close_log", "the log complete; the reports are folded from what it holds"),
)


def finish(run: RunContext) -> int:
    """The command has ended: every part taken down in STOP_ORDER, then the reports. The exit
    status: the command's own, or 124 when the budget stopped it (its own is in the log)."""
    for step, _why in STOP_ORDER:
        _STEPS[step](run)
    summary = run.record.fold.summary()
    summary.log_path = str(run.log.path)  # a block's own report shows it too (run/block.py)
    options = run.options
    if options.quiet and options.json_path is None:  # no report, no document: nothing to load
        return _exit_status(run)
    from carbonwrap.run.outputs import write_outputs

    write_outputs(
        summary,
        options.json_path,
        options.quiet,
        run.environ,
        run.stderr,
        options.log_mode,
        verbose=options.verbose,
    )
    return _exit_status(run)


def _exit_status(run: RunContext) -> int:
    if run.watch is not None and run.watch.stopped is not None:
        return ExitCode.BUDGET_STOPPED  # documented; the command's own status is in the log
    return run.ending.exit_code


def _stop_budget(run: RunContext) -> None:
    if run.watch is not None:
        run.watch.finish()


def _stop_live_view(run: RunContext) -> None:
    if run.live is not None:
        run.live.stop()


def _close_channel(run: RunContext) -> None:
    if run.channel is not None:
        run.channel.close(run.warn)


def _finish_relay(run: RunContext) -> None:
    if run.relay is not None:
        run.relay.finish(run.warn)


def _freeze_count(run: RunContext) -> None:
    run.leftover = run.acct.finish()


def _final_reading(run: RunContext) -> None:
    run.totals = run.sampler.final_totals()
    if run.acct.escaped:  # noticed at readings and at the freeze: said once
        run.warn(escape_warning(run.acct.escaped))


def _wait_for_leftovers(run: RunContext) -> None:
    run.leftover = leftover = still_running(run.leftover, LEFTOVER_WAIT_S)
    if leftover:
        shown = " ".join(str(pid) for pid in leftover[:20]) + (" …" if len(leftover) > 20 else "")
        run.warn(
            f"{len(leftover)} process(es) still running when the command ended were left "
            f"running and are not counted further: {shown}"
        )


def still_running(pids: list[int], wait_s: float) -> list[int]:
    """Those of `pids` still running after up to `wait_s`, in their order; returns as soon as
    none is. A process is known by its PID and start time (a PID taken by another process
    since is not it), and a zombie (an orphan carbonwrap has not reaped) has ended."""
    from carbonwrap.sensors.pidstat import process_stat

    def alive(pid: int, start_ticks: int) -> bool:
        stat = process_stat(pid)
        return stat is not None and not stat.ended and stat.start_ticks == start_ticks

    started = {pid: stat.start_ticks for pid in pids if (stat := process_stat(pid)) is not None}
    running = [pid for pid in started if alive(pid, started[pid])]
    deadline = time.monotonic() + wait_s
    while running and time.monotonic() < deadline:
        time.sleep(_LEFTOVER_POLL_S)
        running = [pid for pid in running if alive(pid, started[pid])]
    return running


def _stop_poller(run: RunContext) -> None:
    if run.poller is not None:
        run.poller.stop(budget_s=0.3)


def _say_log_failure(run: RunContext) -> None:
    if run.log.failed:  # on stderr, and in the reports (the log itself may not take it)
        run.stderr.write(f"carbonwrap: {run.log.failed}\n")
        run.warn(f"the log is incomplete: {run.log.failed}")


def _record_end(run: RunContext) -> None:
    totals, watch = run.totals, run.watch
    run.record(
        records.end(
            time_s=time.time(),
            elapsed_s=totals.elapsed_s,
            exit_code=run.ending.exit_code,
            signal=run.ending.signal_name,
            cpu_s=totals.cpu_s,
            energy_j=totals.energy_j,
            device_energy_j=device_totals(totals, run.node),
            leftover_pids=run.leftover,
            signals_received=run.child.received,
            signals_not_kept=run.child.received_not_kept,
            gpus=gpu_totals(totals, run.node),
            stopped=watch.stopped if watch is not None else None,
            escaped_pids=run.acct.escaped,
        )
    )


def _write_textfile(run: RunContext) -> None:
    if run.exporter is not None:
        run.exporter.write()


def _halt_sampler(run: RunContext) -> None:
    run.sampler.halt()


def _close_meters(run: RunContext) -> None:
    run.meters.close()


def _flush_predictions(run: RunContext) -> None:
    run.predictions.flush()


def _close_log(run: RunContext) -> None:
    run.log.close()
    if run.node is not None:  # the node's claims end with the run (also if carbonwrap dies)
        run.node.release()


_STEPS: dict[str, Callable[[RunContext], None]] = {
    "stop_budget": _stop_budget,
    "stop_live_view": _stop_live_view,
    "close_channel": _close_channel,
    "finish_relay": _finish_relay,
    "halt_sampler": _halt_sampler,
    "freeze_count": _freeze_count,
    "final_reading": _final_reading,
    "wait_for_leftovers": _wait_for_leftovers,
    "close_meters": _close_meters,
    "stop_poller": _stop_poller,
    "say_log_failure": _say_log_failure,
    "flush_predictions": _flush_predictions,
    "record_end": _record_end,
    "write_textfile": _write_textfile,
    "close_log": _close_log,
}
