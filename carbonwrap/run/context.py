"""What one run holds while it lasts: its options, log, sensors, child and helpers, in one
`RunContext` that the phases (`run/phases.py`) fill and empty, and the callbacks the threads
call back into (warn, progress, samples, readings, the forecast)."""

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from carbonwrap.measure.accounting import TreeAccounting
from carbonwrap.measure.attribution import Reading
from carbonwrap.measure.sampler import Totals
from carbonwrap.run.options import RunOptions
from carbonwrap.runlog import records
from carbonwrap.runlog.summary import Fold

if TYPE_CHECKING:
    from carbonwrap.intensity.plan import IntensityPlan
    from carbonwrap.intensity.poller import IntensityPoller
    from carbonwrap.live.textfile import TextfileExporter
    from carbonwrap.live.view import LiveView
    from carbonwrap.measure.meters import Meters
    from carbonwrap.measure.sampler import Sampler
    from carbonwrap.predict.channel import ProgressChannel
    from carbonwrap.predict.predictor import Predictor
    from carbonwrap.predict.relay import OutputRelay
    from carbonwrap.quantities import Budget
    from carbonwrap.run.budget import BudgetWatch
    from carbonwrap.run.child import Child, Ending
    from carbonwrap.runlog.recorder import Recorder
    from carbonwrap.runlog.writer import EventLog


class RunContext:
    """One run's parts. `prepare` sets what exists before the command runs, `start` the child
    and the threads, `finish` takes them down in STOP_ORDER; a part the run does not use (no
    budget, no relay, no live view) stays None."""

    # set by prepare
    log: "EventLog"
    record: "Recorder"
    plan: "IntensityPlan"
    meters: "Meters"
    sampler: "Sampler"
    # set by start
    child: "Child"
    # set by the end of the run
    ending: "Ending"
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
        self.channel: ProgressChannel | None = None
        self.relay: OutputRelay | None = None
        self.watch: BudgetWatch | None = None
        self.predictions = OnFirstProgress(self.make_predictor)
        self.poller: IntensityPoller | None = None  # made after the sampler starts
        self.live: LiveView | None = None

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

    def emit(self, totals: Totals) -> None:
        """The sampler's logged sample; the .prom file after the fold took it in (they agree)."""
        self.record(sample_record(totals))
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

    def make_predictor(self) -> "Predictor":
        from carbonwrap.predict.predictor import Predictor

        predictor = Predictor(
            self.record,
            lambda: energy_now(self.sampler),
            lambda: self.record.locked(Fold.so_far),
            self.options.pue,
            self.started_wall,
            self.options.log_interval_s,
            self.elapsed_s,
            self.forecast,
            self.warn,
        )
        if self.watch is not None:
            predictor.listeners.append(self.watch.on_prediction)
        return predictor


class OnFirstProgress:
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


def gpu_totals(totals: Totals) -> dict[int, dict[str, Any]]:
    return {
        index: {"energy_j": g.energy_j, "device_energy_j": g.device_energy_j, "methods": g.methods}
        for index, g in totals.gpus.items()
    }


def sample_record(totals: Totals) -> dict[str, Any]:
    return records.sample(
        time_s=time.time(),
        elapsed_s=totals.elapsed_s,
        cpu_s=totals.cpu_s,
        energy_j=totals.energy_j,
        device_energy_j=totals.device_energy_j,
        gpus=gpu_totals(totals),
    )


def energy_now(sampler: "Sampler") -> tuple[float, float]:
    """The sampler's latest reading: elapsed s and the attributed energy (J) so far."""
    totals = sampler.snapshot()
    return totals.elapsed_s, sum(totals.energy_j.values())
