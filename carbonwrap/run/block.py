"""A block of Python measured in-process (`carbonwrap.track`, the notebook magics): the run's own
parts — intensity plan and poller, EventLog + Recorder, meters and sampler, `finish`'s
STOP_ORDER and reports — over this process (`measure/ownprocess.py`) instead of a child."""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, TextIO, cast

from carbonwrap.measure.leafjoin import new_run_id
from carbonwrap.measure.meters import Meters
from carbonwrap.measure.ownprocess import OwnProcessAccounting
from carbonwrap.measure.sampler import Sampler
from carbonwrap.run.child import Ending
from carbonwrap.run.context import RunContext
from carbonwrap.run.finish import finish
from carbonwrap.run.options import RunOptions
from carbonwrap.run.phases import plan_and_log, start_poller, start_record
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import ComponentSummary, Fold, GpuSummary, RunSummary

if TYPE_CHECKING:
    from carbonwrap.live.feed import LiveFeed
    from carbonwrap.run.child import Child


class ThisProcess:
    """What the start and end records read of a run's child (`pid`, the signals carbonwrap
    received for it), for a block: this process, which keeps its own signal handlers."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.received: list[str] = []
        self.received_not_kept = 0


def ending_of(error: BaseException | None) -> tuple[Ending, str | None]:
    """How a block ended, in the end record's terms, and the warning that says why: 0 when
    it ran through; 130 and SIGINT for Ctrl-C (KeyboardInterrupt); SystemExit's own status;
    1 for any other exception (its type and message in the warning)."""
    if error is None:
        return Ending(0, None), None
    if isinstance(error, KeyboardInterrupt):
        return Ending(130, "SIGINT"), "the block was interrupted (KeyboardInterrupt)"
    if isinstance(error, SystemExit):
        code = error.code if isinstance(error.code, int) else (0 if error.code is None else 1)
        return Ending(code, None), f"the block called sys.exit({error.code!r})"
    message = str(error).splitlines()[0] if str(error) else ""
    name = type(error).__qualname__
    return Ending(1, None), f"the block raised {name}" + (f": {message}" if message else "")


class Block:
    """One measured block: `start` (everything that can fail, then the start record and the
    threads), `summary` (the totals so far, from any thread), `end` (STOP_ORDER, the end
    record and the reports, as for a command)."""

    def __init__(self, options: RunOptions, environ: Mapping[str, str], stderr: TextIO) -> None:
        """`options.command` is the block's name (one word); the live view, budgets and the
        .prom file are `run`'s alone (a budget stop would signal this very process)."""
        self.options = options._replace(
            no_live=True, budget=None, prometheus_textfile=None, progress_from_output=False
        )
        self.environ = environ
        self.stderr = stderr
        self.run: RunContext | None = None
        self.final: RunSummary | None = None

    def start(self) -> None:
        """Measure from now on; CarbonwrapError (nothing left behind) if it cannot."""
        options = self.options
        acct = OwnProcessAccounting()  # the baselines first: the setup below is not counted
        run = RunContext(
            options, self.environ, self.stderr, options.run_id or new_run_id(), acct, []
        )
        try:
            _prepare(run)
        except BaseException:
            for step in reversed(run.undo):
                with contextlib.suppress(Exception):
                    step()
            raise
        _start(run)
        self.run = run

    @property
    def log_path(self) -> str:
        return str(self.run.log.path) if self.run is not None else ""

    def summary(self) -> RunSummary:
        """The totals so far: the fold's summary of what is logged, with the sampler's latest
        reading (at most one interval old) for duration, CPU time, energy and CO2e; once ended,
        the final summary, as the log has it."""
        if self.final is not None:
            return self.final
        run = self.run
        if run is None:
            return RunSummary()
        totals = run.sampler.peek(lambda: run.meters.read(run.acct, gpus=False))

        def read(fold: Fold) -> tuple[RunSummary, float]:
            so_far = fold.so_far()
            return copy.deepcopy(fold.summary()), so_far.co2e_at_g(sum(totals.energy_j.values()))

        summary: RunSummary
        summary, co2e_g = run.record.locked(read)
        summary.duration_s = totals.elapsed_s
        summary.cpu_s = totals.cpu_s
        summary.co2e_g = co2e_g
        for name, energy_j in totals.energy_j.items():
            component = summary.components.setdefault(name, ComponentSummary(method="unknown"))
            component.energy_j = energy_j
            component.device_energy_j = totals.device_energy_j.get(name)
        for index, gpu in totals.gpus.items():
            entry = summary.gpus.setdefault(index, GpuSummary(index=index))
            entry.energy_j, entry.device_energy_j = gpu.energy_j, gpu.device_energy_j
            entry.methods = dict(gpu.methods)
        summary.log_path = self.log_path
        return summary

    def feed(self) -> LiveFeed:
        """The live view's state, as `run`'s live view has it (the notebook's line)."""
        from carbonwrap.live.feed import LiveFeed

        run = self.run
        assert run is not None
        return LiveFeed(run.sampler.snapshot, run.record.locked, run.meters.components)

    def end(self, error: BaseException | None = None, report: bool = True) -> RunSummary:
        """The block is over (`error`: what ended it, if anything): every part taken down in
        STOP_ORDER, the end record, the report on stderr (unless quiet, or `report` is False:
        the caller shows it) and the JSON document."""
        run = self.run
        assert run is not None and self.final is None
        if not report:
            run.options = run.options._replace(quiet=True)
        run.ending, why = ending_of(error)
        if why is not None:
            run.warn(why)
        finish(run)
        final: RunSummary = run.record.fold.summary()
        self.final = final
        return final


def _prepare(run: RunContext) -> None:
    """`phases.prepare`'s parts a block uses, in its order; each undone if a later one fails."""
    options = run.options
    plan_and_log(run)
    run.meters = Meters(run.environ, run.env)
    run.undo.append(run.meters.close)
    run.notes += run.meters.notes
    # Only `pid` and the signals are read of a child (start and end records; no budget watch).
    run.child = cast("Child", ThisProcess())
    run.sampler = Sampler(
        run.read,
        run.meters.model,
        options.interval_s,
        options.log_interval_s,
        run.emit,
        run.warn,
    )


def _start(run: RunContext) -> None:
    """The start record (kind "block") and the intensity in force, the notes, then the sampler
    and the poller. From now on `finish` ends every part."""
    plan, record = run.plan, run.record
    record(start_record(run, kind="block"))
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
    run.sampler.start()
    if plan.choice.make is not None and plan.choice.name is not None:
        try:
            start_poller(run)
        except OSError as exc:  # the block runs: measuring must not end it
            run.poller = None
            run.warn(
                f"intensity polling not started ({exc.strerror or exc}); the static value stays "
                "in force"
            )
