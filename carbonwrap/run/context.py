"""What one run holds while it lasts: its options, log, sensors, child and helpers, in one
`RunContext` that the phases (`run/phases.py`) fill and empty, and the callbacks the threads
call back into (warn, progress reports, samples, readings, the forecast)."""

from __future__ import annotations

import os
import time

from carbonwrap.lite import Lock
from carbonwrap.measure.accounting import TreeAccounting
from carbonwrap.measure.attribution import Reading
from carbonwrap.measure.sampler import Totals
from carbonwrap.run.options import RunOptions
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import Fold

TYPE_CHECKING = False  # typing's, without importing typing (start-up: lite.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TextIO

    from carbonwrap.intensity.plan import IntensityPlan
    from carbonwrap.intensity.poller import IntensityPoller
    from carbonwrap.live.textfile import TextfileExporter
    from carbonwrap.live.view import LiveView
    from carbonwrap.measure.meters import Meters
    from carbonwrap.measure.sampler import Sampler
    from carbonwrap.predict.channel import OnProgress, ProgressChannel, RateLimiter
    from carbonwrap.predict.predictor import Predictor
    from carbonwrap.predict.relay import OutputRelay
    from carbonwrap.quantities import Budget
    from carbonwrap.run.budget import BudgetWatch
    from carbonwrap.run.child import Child, Ending
    from carbonwrap.run.node_role import NodeRole
    from carbonwrap.runlog.recorder import Recorder
    from carbonwrap.runlog.writer import EventLog


class RunContext:
    """One run's parts. `prepare` sets what exists before the command runs, `start` the child
    and the threads, `finish` takes them down in STOP_ORDER; a part the run does not use (no
    budget, no relay, no live view) stays None."""

    # set by prepare
    log: EventLog
    record: Recorder
    plan: IntensityPlan
    meters: Meters
    sampler: Sampler
    # set by start
    child: Child
    # set by the end of the run
    ending: Ending
    totals: Totals
    leftover: list[int]

    def __init__(
        self,
        options: RunOptions,
        environ: Mapping[str, str],
        stderr: TextIO,
        run_id: str,
        acct: TreeAccounting,
        notes: list[str],
    ) -> None:
        self.options = options
        self.environ = environ
        self.stderr = stderr
        self.run_id = run_id
        self.acct = acct
        self.notes = notes  # said as warnings once the start record is logged
        uname = os.uname()
        self.host = uname.nodename or "localhost"
        self.kernel = uname.release
        self.started_wall = time.time()  # reset by prepare once the location is resolved
        self.t0 = time.monotonic()  # reset by prepare once the log exists
        self.env = dict(environ)  # the command's environment
        self.env["CARBONWRAP_RUN_ID"] = run_id
        # Until the child runs, whatever fails undoes what was set up: no leaf, no empty log.
        self.undo: list[Callable[[], object]] = [acct.finish]
        self.budget: Budget | None = None
        self.exporter: TextfileExporter | None = None
        self._channel: ProgressChannel | None = None
        self._relay: OutputRelay | None = None
        self.watch: BudgetWatch | None = None
        self.predictions = Predictions(self.make_predictor, self.on_report, self.clean_exit_s)
        self.poller: IntensityPoller | None = None  # made after the sampler starts
        self.live: LiveView | None = None
        # In a job: which whole-device figures this wrapper records (`run/node_role.py`).
        self.node: NodeRole | None = None

    @property
    def channel(self) -> ProgressChannel | None:
        return self._channel

    @channel.setter
    def channel(self, channel: ProgressChannel | None) -> None:
        """Every report the channel takes goes to `on_report` (the predictor), the log gets
        them through its rate limiter (`on_progress`)."""
        self._channel = channel
        if channel is not None:
            self._watch_reports(channel.limiter, "channel")

    @property
    def relay(self) -> OutputRelay | None:
        return self._relay

    @relay.setter
    def relay(self, relay: OutputRelay | None) -> None:
        """As the channel: every report found in the output to `on_report`."""
        self._relay = relay
        if relay is not None:
            self._watch_reports(relay.limiter, "output")

    def _watch_reports(self, limiter: RateLimiter, source: str) -> None:
        from carbonwrap.predict.channel import Observer  # loaded with the channel already

        limiter.watch(Observer(self.on_report, source))

    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def warn(self, message: str) -> None:
        self.record(
            records.warning(time_s=time.time(), elapsed_s=self.elapsed_s(), message=message)
        )

    def on_progress(
        self, done: float, total: float | None, unit: str, source: str, at_s: float
    ) -> None:
        """A report the rate limiter lets into the log; `at_s`: when it came (monotonic)."""
        self.record(
            records.progress(
                time_s=time.time() - (time.monotonic() - at_s),
                elapsed_s=at_s - self.t0,
                done=done,
                total=total,
                unit=unit,
                source=source,
            )
        )

    def on_report(
        self, done: float, total: float | None, unit: str, source: str, at_s: float
    ) -> None:
        """Every progress report, logged or not (`on_progress` gets those the rate limiter
        lets into the log); `at_s`: when it came (monotonic)."""
        self.predictions.report(done, total, unit, source, at_s - self.t0)

    def on_reading(self, totals: Totals) -> None:
        """The sampler's every reading (every --interval): the budget's actual total."""
        if self.watch is not None:
            self.watch.on_reading(totals)

    def clean_exit_s(self) -> float | None:
        """Once the run has ended: when the command exited cleanly (status 0, not stopped by
        the budget), monotonic: the final reading's time; None otherwise."""
        ending = getattr(self, "ending", None)
        totals = getattr(self, "totals", None)
        if ending is None or ending.exit_code != 0 or totals is None:
            return None
        if self.watch is not None and self.watch.stopped is not None:
            return None
        return totals.mono_s or time.monotonic()

    def emit(self, totals: Totals) -> None:
        """The sampler's logged sample; the .prom file after the fold took it in (they agree)."""
        self.record(sample_record(totals, self.node))
        if self.exporter is not None:
            self.exporter.write()

    def read(self) -> Reading:
        """One reading of every meter, for the sampler; a meter's news becomes a warning."""
        reading = self.meters.read(self.acct)
        for note in self.meters.new_notes():
            self.warn(note)
        return reading

    def forecast(self) -> list[tuple[float, float, float]]:
        """The provider's forecast windows (start s, end s, g/kWh), asked for from the first
        prediction on; none before the poller exists."""
        if self.poller is None:
            return []
        self.poller.want_forecast()
        return [(p.start_s, p.end_s, p.intensity_g_per_kwh) for p in self.poller.forecast()]

    def make_predictor(self) -> Predictor:
        from carbonwrap.predict.predictor import Predictor

        predictor = Predictor(
            self.record,
            lambda: energy_now(self.sampler, self.t0),
            lambda: self.record.locked(Fold.so_far),
            self.options.pue,
            self.started_wall,
            self.options.log_interval_s,
            self.elapsed_s,
            self.forecast,
            self.warn,
        )
        predictor.listeners.append(self.show_prediction)
        if self.watch is not None:
            predictor.listeners.append(self.watch.on_prediction)
        return predictor

    def show_prediction(self, prediction: dict[str, Any]) -> None:
        """Each new prediction, logged or not, for the live line (at most once a second)."""
        self.record.locked(lambda fold: fold.see_prediction(prediction))


class Predictions:
    """The run's predictor, made (`make`, which imports it) at the first progress report, and
    what reaches it: every report (`report`, from the channel's and the relay's rate limiters),
    as a Recorder observer the progress records of a source whose reports do not come that
    way, and at the end (`flush`) the report that the command's clean exit completes."""

    def __init__(
        self,
        make: Callable[[], Predictor],
        on_report: OnProgress,
        clean_exit_s: Callable[[], float | None],
    ) -> None:
        """`on_report` takes a report as the limiters' observers do (`RunContext.on_report`);
        `clean_exit_s`: when the command exited cleanly (monotonic), None if it did not."""
        self._make = make
        self._on_report = on_report
        self._clean_exit_s = clean_exit_s
        self._lock = Lock()
        self._sources: set[str] = set()  # those whose every report comes to `report`
        self.predictor: Predictor | None = None

    def _predictor(self) -> Predictor:
        with self._lock:
            if self.predictor is None:
                self.predictor = self._make()
            return self.predictor

    def report(
        self, done: float, total: float | None, unit: str, source: str, elapsed_s: float
    ) -> None:
        """A report as it comes; `elapsed_s` on the run's clock."""
        if source not in self._sources:
            with self._lock:
                self._sources.add(source)
        self._predictor().report(done, total, unit, source, elapsed_s)

    def __call__(self, record: dict[str, Any]) -> None:
        """A Recorder observer: a progress record reaches the predictor only where its source's
        reports do not come to `report` (the limiter calls its observers before it logs)."""
        if record.get("type") != "progress" or record.get("source") in self._sources:
            return
        self._predictor().observe(record)

    def flush(self) -> None:
        """Before the end record: the report that the clean exit completes (an `Epoch M/M`
        line and exit 0 are M of M epochs, at the exit), then the last prediction. The log's
        progress records stay what the command said; the prediction says M of M."""
        predictor = self.predictor
        if predictor is None:
            return
        at_s = self._clean_exit_s()
        final = predictor.exit_report() if at_s is not None else None
        if at_s is not None and final is not None:
            done, total, unit = final
            self._on_report(done, total, unit, "output", at_s)
        predictor.flush()


def gpu_totals(totals: Totals, node: NodeRole | None = None) -> dict[int, dict[str, Any]]:
    """Per GPU for the log; a GPU's whole-device figure None where another wrapper of the job
    records it (`node`)."""
    return {
        index: {
            "energy_j": g.energy_j,
            "device_energy_j": g.device_energy_j
            if node is None or node.records_gpu(index)
            else None,
            "methods": g.methods,
        }
        for index, g in totals.gpus.items()
    }


def device_totals(totals: Totals, node: NodeRole | None = None) -> dict[str, float]:
    """The whole-device figures this wrapper logs: all of them, or in a job what its node role
    gives it (the node's leader: CPU and DRAM; each GPU's claimer: that GPU)."""
    if node is None:
        return totals.device_energy_j
    by_gpu = {index: g.device_energy_j for index, g in totals.gpus.items()}
    return node.device_energy_j(totals.device_energy_j, by_gpu)


def sample_record(totals: Totals, node: NodeRole | None = None) -> dict[str, Any]:
    return records.sample(
        time_s=time.time(),
        elapsed_s=totals.elapsed_s,
        cpu_s=totals.cpu_s,
        energy_j=totals.energy_j,
        device_energy_j=device_totals(totals, node),
        gpus=gpu_totals(totals, node),
    )


def energy_now(sampler: Sampler, t0: float) -> tuple[float, float]:
    """The sampler's latest reading: when (s since `t0`, the reports' clock) and the attributed
    energy (J) so far."""
    mono_s, energy_j = sampler.energy_now()
    return mono_s - t0, energy_j
