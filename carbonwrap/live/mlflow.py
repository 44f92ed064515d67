"""--mlflow: the run's energy, CO2e, intensity and predictions logged to an MLflow run while it
lasts, as metrics per logged sample (step = the sample's number, timestamp = its time), and its
totals and tags at the end (names: `report/mlflow_backfill.py`).

A Recorder observer, like the .prom file (`live/textfile.py`). The run is the one named
(--mlflow-run, else MLFLOW_RUN_ID), else an active run of the process (`carbonwrap.track` in a
script that uses mlflow's fluent API), else a new one in --mlflow-experiment,
MLFLOW_EXPERIMENT_NAME or Default, which carbonwrap ends with the command's status.

A tracking server that is down or slow never delays the command or fails the run: the observer
only puts points on a bounded queue (full: dropped, said once); one thread imports mlflow (0.7 s
of CPU, after the command has started) and sends them; its first failure is said once, in the
log and the reports, and later points are dropped. At the end the thread gets END_WAIT_S to send
what is queued (MLflow's HTTP client retries for minutes): what it has not sent by then is lost,
and said.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from carbonwrap.report.mlflow_backfill import (
    RUN_ID_TAG,
    STATUS,
    Point,
    experiment_id,
    final_points,
    final_tags,
    log_batch,
    mlflow_client,
    prediction_points,
    sample_points,
)
from carbonwrap.runlog.records import parse_utc
from carbonwrap.runlog.summary import Fold

OPTION = "--mlflow"
QUEUE_ITEMS = 1000  # a sample every --log-interval: hours of them while a server is away
END_WAIT_S = 5.0
_STOP = None  # what tells the thread that nothing more will come

FoldLocked = Callable[[Callable[[Fold], Any]], Any]


class MlflowSink:
    """Observe the Recorder's records (`__call__`); `start()` the thread once the command runs.
    `run_id`: an MLflow run to log to (else MLFLOW_RUN_ID, else the active run, else a new
    one); `experiment`: where a new one goes; `tracking_uri`: else MLFLOW_TRACKING_URI."""

    def __init__(
        self,
        fold_locked: FoldLocked,
        warn: Callable[[str], None],
        environ: Mapping[str, str],
        run_id: str | None = None,
        experiment: str | None = None,
        tracking_uri: str | None = None,
        run_name: str = "",
        end_wait_s: float = END_WAIT_S,
    ) -> None:
        self._fold_locked = fold_locked
        self._warn = warn
        self._environ = environ
        self._given_run = run_id or environ.get("MLFLOW_RUN_ID") or None
        self._experiment = experiment
        self._tracking_uri = tracking_uri or environ.get("MLFLOW_TRACKING_URI") or None
        self._run_name = run_name
        self._end_wait_s = end_wait_s
        self._queue: queue.Queue[tuple[list[Point], dict[str, str], str | None] | None] = (
            queue.Queue(QUEUE_ITEMS)
        )
        self._thread = threading.Thread(target=self._work, name="carbonwrap-mlflow", daemon=True)
        self._samples = 0
        self._said = False
        self._ended = False
        self.failed: str | None = None  # the first failure, in words
        self.dropped = 0  # points not sent: a full queue, or after a failure
        self.mlflow_run_id: str | None = None  # once known (the thread's first call)
        self.created = False  # carbonwrap created the MLflow run (and ends it)
        self.sent = 0  # metric values the server took

    def start(self) -> None:
        self._thread.start()

    # The observer: on the recording thread, never blocking, never raising.

    def __call__(self, record: dict[str, Any]) -> None:
        try:
            kind = record.get("type")
            if kind == "sample":
                self._sample(record)
            elif kind == "prediction":
                self._put(prediction_points(self._samples, record), {}, None)
            elif kind == "end":
                self._sample(record)
                self._end()
        except Exception as exc:  # a bug here must not end the sampler's thread
            self._fail(f"{type(exc).__name__}: {exc}")

    def _sample(self, record: dict[str, Any]) -> None:
        time_s = parse_utc(record.get("time"))
        if time_s is None:
            return
        self._samples += 1
        self._put(sample_points(self._samples, time_s, self._fold_locked(Fold.so_far)), {}, None)

    def _end(self) -> None:
        """The totals and tags, the run's status; then up to END_WAIT_S for the thread."""
        step = self._samples

        def final(fold: Fold) -> tuple[list[Point], dict[str, str], str]:
            s = fold.summary()
            ended_s = parse_utc(s.ended_at) or time.time()
            return final_points(s, step, int(ended_s * 1000)), final_tags(s), s.status

        points, tags, status = self._fold_locked(final)
        self._put(points, tags, STATUS.get(status, "FAILED"))
        self.close()

    def close(self) -> None:
        """No more points: the thread sends what is queued, for up to END_WAIT_S; what is left
        then is said once (not before the thread has started: nothing to wait for)."""
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(queue.Full):  # the thread is stuck: the wait below says so
            self._queue.put_nowait(_STOP)
        if not self._thread.is_alive():
            return
        self._thread.join(self._end_wait_s)
        if self._thread.is_alive() and self.failed is None:
            where = self._tracking_uri or "MLflow's default tracking URI"
            self._say(
                f"{OPTION}: {where} did not take the last metrics within "
                f"{self._end_wait_s:g} s; they are not logged"
            )

    def _put(self, points: list[Point], tags: dict[str, str], status: str | None) -> None:
        if self.failed is not None or self._ended:
            self.dropped += len(points)
            return
        try:
            self._queue.put_nowait((points, tags, status))
        except queue.Full:
            self.dropped += len(points)
            self._say(
                f"{OPTION}: the tracking server takes metrics more slowly than the run logs "
                f"them; {QUEUE_ITEMS} samples are waiting, later ones are dropped until it "
                "catches up (said once)"
            )

    # The thread: the only one that talks to MLflow.

    def _work(self) -> None:
        try:
            client = mlflow_client(self._tracking_uri)
            self.mlflow_run_id = self._run(client)
        except Exception as exc:
            self._fail(_reason(exc))
            self._drain()
            return
        while True:
            item = self._queue.get()
            batch = [item]
            while item is not _STOP:  # what else is queued goes in the same calls
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
            if not self._send(client, [i for i in batch if i is not _STOP]):
                self._drain()
                return
            if _STOP in batch:
                return

    def _send(
        self, client: Any, items: list[tuple[list[Point], dict[str, str], str | None]]
    ) -> bool:
        points = [p for item in items for p in item[0]]
        tags = {key: value for item in items for key, value in item[1].items()}
        status = next((item[2] for item in items if item[2] is not None), None)
        assert self.mlflow_run_id is not None
        try:
            log_batch(client, self.mlflow_run_id, points, tags)
            self.sent += len(points)
            if status is not None and self.created:
                client.set_terminated(self.mlflow_run_id, status)
        except Exception as exc:
            self.dropped += len(points)
            self._fail(_reason(exc))
            return False
        return True

    def _run(self, client: Any) -> str:
        """The MLflow run to log to: the one named, the process's active one, or a new one."""
        if self._given_run is not None:
            client.get_run(self._given_run)  # fails now, with MLflow's reason, if it is not there
            return self._given_run
        fluent = sys.modules.get("mlflow")  # the script's own mlflow, if it has one running
        active = getattr(fluent, "active_run", None)
        run = active() if callable(active) else None
        if run is not None:
            return str(run.info.run_id)
        experiment = experiment_id(client, self._experiment, self._environ)
        run_id = self._fold_locked(lambda fold: fold.s.run_id)
        tags = {RUN_ID_TAG: run_id}
        if self._run_name:
            tags["mlflow.runName"] = self._run_name
        created = client.create_run(experiment, tags=tags)
        self.created = True
        return str(created.info.run_id)

    def _drain(self) -> None:
        """After a failure: take what is queued (and will be) off the queue, so no put blocks
        and the end's wait ends at once."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self.dropped += len(item[0])

    def _fail(self, reason: str) -> None:
        if self.failed is None:
            self.failed = reason
            self._say(
                f"{OPTION}: nothing more is logged to MLflow ({reason}); the run goes on "
                "(said once)"
            )

    def _say(self, message: str) -> None:
        """One warning, once: in the log and the reports while the run lasts."""
        if self._said or (self._ended and threading.current_thread() is self._thread):
            return  # after the end's wait only the end says anything (the log may be closed)
        self._said = True
        with contextlib.suppress(Exception):  # the log has closed: the reports cannot say it
            self._warn(message)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def attach_mlflow(
    recorder: Any,
    warn: Callable[[str], None],
    environ: Mapping[str, str] | None = None,
    run_id: str | None = None,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    run_name: str = "",
) -> MlflowSink:
    """An MlflowSink observing `recorder` (a runlog.recorder.Recorder), its thread started: for
    `carbonwrap run --mlflow` and the in-process `carbonwrap.track(mlflow=True)`. The sink ends
    its work when it sees the end record (up to END_WAIT_S); a caller that ends without one
    calls `close()`."""
    sink = MlflowSink(
        recorder.locked,
        warn,
        os.environ if environ is None else environ,
        run_id=run_id,
        experiment=experiment,
        tracking_uri=tracking_uri,
        run_name=run_name,
    )
    recorder.observers.append(sink)
    sink.start()
    return sink
