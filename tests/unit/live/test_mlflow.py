"""--mlflow's sink (live/mlflow.py) against a real MLflow file store in tmp_path (mlflow-skinny:
its SQLite store needs SQLAlchemy, which only the full mlflow brings), and against a tracking
server that is down or never answers: the records are fed through a real Recorder and log."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mlflow", reason="mlflow-skinny is in the test extra")

from mlflow.tracking import MlflowClient

from carbonwrap.live import mlflow as sink_module
from carbonwrap.live.mlflow import MlflowSink, attach_mlflow
from carbonwrap.runlog import records
from carbonwrap.runlog.recorder import Recorder
from carbonwrap.runlog.writer import EventLog

T0 = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    # MLflow 3 keeps the file store only on request (mlflow/store/tracking/file_store.py)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    return (tmp_path / "mlruns").as_uri()


def recorder(tmp_path: Path) -> Recorder:
    record = Recorder(EventLog(str(tmp_path / "logs"), "run.jsonl", 0o600))
    record(
        records.start(
            run_id="0123456789ab",
            time_s=T0,
            argv=["python", "train.py"],
            cwd="/",
            host="node1",
            pid=1,
            versions={},
            cpu_accounting="cgroup-v2",
            components={"cpu": {"method": "rapl"}, "dram": {"method": "estimate"}},
            region={"code": "DK-DK1"},
            pue=1.0,
            interval_s=1.0,
            log_interval_s=10.0,
            job={},
            tags={"team": "nlp"},
        )
    )
    record(
        records.intensity(
            time_s=T0, elapsed_s=0.0, intensity_g_per_kwh=360.0, region="DK-DK1", source="t"
        )
    )
    return record


def sample(record: Recorder, n: int) -> None:
    """Sample n: 3.6 kJ (1 Wh) of CPU energy per sample, 10 s apart."""
    record(
        records.sample(
            time_s=T0 + 10 * n,
            elapsed_s=10.0 * n,
            cpu_s=float(n),
            energy_j={"cpu": 3600.0 * n, "dram": 0.0},
            device_energy_j={"cpu": 7200.0 * n, "dram": 0.0},
        )
    )


def progress_and_end(record: Recorder, n: int, exit_code: int = 0) -> None:
    record(
        records.progress(
            time_s=T0 + 10 * n, elapsed_s=10.0 * n, done=4, total=4, unit="epoch", source="channel"
        )
    )
    record(
        records.end(
            time_s=T0 + 10 * n + 1,
            elapsed_s=10.0 * n + 1,
            exit_code=exit_code,
            signal=None,
            cpu_s=float(n),
            energy_j={"cpu": 3600.0 * (n + 1), "dram": 0.0},
            device_energy_j={"cpu": 7200.0 * (n + 1), "dram": 0.0},
            leftover_pids=[],
            signals_received=[],
        )
    )


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return sorted(
        (m.step, m.timestamp, round(m.value, 9)) for m in client.get_metric_history(run_id, key)
    )


def test_a_new_run_gets_a_series_per_sample_and_the_totals(tmp_path: Path, store: str) -> None:
    record = recorder(tmp_path)
    warnings: list[str] = []
    sink = attach_mlflow(record, warnings.append, {}, tracking_uri=store, run_name="train.py x")
    for n in (1, 2, 3):
        sample(record, n)
    record(
        records.prediction(
            time_s=T0 + 31, elapsed_s=31.0, done=3, total=4, unit="epoch", duration_s=42.0,
            energy_j=14400.0, co2e_g=1.44, duration_margin_s=None, energy_margin_j=None,
            co2e_margin_g=None, intensity_g_per_kwh=360.0, intensity_basis="current",
            basis="from 3 epochs", intervals=3,
        )
    )  # fmt: skip
    progress_and_end(record, 3)
    assert not warnings
    assert sink.created and sink.failed is None and sink.dropped == 0

    client = MlflowClient(tracking_uri=store)
    run = client.get_run(sink.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == "0"  # MLflow's Default
    tags = run.data.tags
    assert tags["carbonwrap.run_id"] == "0123456789ab"
    assert tags["carbonwrap.region"] == "DK-DK1"
    assert tags["carbonwrap.methods"] == "cpu=rapl; dram=estimate"
    assert tags["carbonwrap.tag.team"] == "nlp"
    assert tags["mlflow.runName"] == "train.py x"
    # step = the sample's number, timestamp = its time; the end record is the last sample
    energy = history(client, run.info.run_id, "carbonwrap_energy_kwh")
    assert energy == [
        (1, int((T0 + 10) * 1000), 0.001),
        (2, int((T0 + 20) * 1000), 0.002),
        (3, int((T0 + 30) * 1000), 0.003),
        (4, int((T0 + 31) * 1000), 0.004),
    ]
    co2e = history(client, run.info.run_id, "carbonwrap_co2e_g")
    assert [value for _, _, value in co2e] == [0.36, 0.72, 1.08, 1.44]  # 360 g/kWh
    assert history(client, run.info.run_id, "carbonwrap_intensity_g_per_kwh")[0][2] == 360.0
    predicted = history(client, run.info.run_id, "carbonwrap_predicted_co2e_g")
    assert predicted == [(3, int((T0 + 31) * 1000), 1.44)]
    final = run.data.metrics
    assert final["carbonwrap_energy_cpu_kwh"] == pytest.approx(0.004)
    assert final["carbonwrap_duration_s"] == pytest.approx(31.0)
    assert final["carbonwrap_co2e_g_per_epoch"] == pytest.approx(0.36)  # 1.44 g over 4 epochs
    assert final["carbonwrap_epoch_count"] == 4


def test_a_given_run_is_logged_to_and_left_open(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(tracking_uri=store)
    theirs = client.create_run("0").info.run_id
    record = recorder(tmp_path)
    sink = attach_mlflow(record, print, {"MLFLOW_RUN_ID": theirs}, tracking_uri=store)
    sample(record, 1)
    progress_and_end(record, 1, exit_code=3)
    assert sink.mlflow_run_id == theirs and not sink.created
    run = client.get_run(theirs)
    assert run.info.status == "RUNNING"  # the script's run: it ends it, not carbonwrap
    assert run.data.tags["carbonwrap.status"] == "failed"
    assert len(client.get_metric_history(theirs, "carbonwrap_co2e_g")) == 2
    assert client.search_runs(["0"], max_results=5)[0].info.run_id == theirs  # no other run


def test_an_experiment_by_name_is_created(tmp_path: Path, store: str) -> None:
    record = recorder(tmp_path)
    env = {"MLFLOW_EXPERIMENT_NAME": "energy"}
    sink = attach_mlflow(record, print, env, tracking_uri=store, experiment=None)
    progress_and_end(record, 0)
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("energy")
    assert experiment is not None
    assert client.get_run(sink.mlflow_run_id).info.experiment_id == experiment.experiment_id


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A tracking server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_server_that_never_answers_delays_nothing_but_the_bounded_end(
    tmp_path: Path, silent_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = recorder(tmp_path)
    warnings: list[str] = []
    sink = MlflowSink(record.locked, warnings.append, {}, tracking_uri=silent_server)
    sink._end_wait_s = 0.5
    record.observers.append(sink)
    sink.start()
    began = time.monotonic()
    for n in range(1, 2 * sink_module.QUEUE_ITEMS):  # more than the queue holds
        sample(record, n)
    fed_s = time.monotonic() - began
    progress_and_end(record, 2 * sink_module.QUEUE_ITEMS)
    ended_s = time.monotonic() - began - fed_s
    assert fed_s < 10  # each observation: a put on the queue, never a request
    assert ended_s < 3  # the end waits END_WAIT_S (0.5 s here), never the server's retries
    assert sink.dropped > 0
    assert len(warnings) == 1  # said once
    assert "later ones are dropped" in warnings[0] or "did not take" in warnings[0]


def test_a_server_that_is_down_is_said_once_and_the_run_goes_on(tmp_path: Path) -> None:
    record = recorder(tmp_path)
    warnings: list[str] = []

    def warn(message: str) -> None:  # as RunContext.warn: a warning record
        warnings.append(message)
        record(records.warning(time_s=time.time(), elapsed_s=0.0, message=message))

    # no mlflow store at this scheme: the client fails at once, as a missing server would
    sink = attach_mlflow(record, warn, {}, tracking_uri="nosuchscheme://x")
    deadline = time.monotonic() + 30
    while sink.failed is None and time.monotonic() < deadline:
        time.sleep(0.01)
    for n in (1, 2, 3):
        sample(record, n)
    progress_and_end(record, 3)
    assert sink.failed is not None
    assert len(warnings) == 1 and "nothing more is logged to MLflow" in warnings[0]
    summary = record.fold.summary()
    assert summary.complete and summary.notes == warnings  # in the log and the reports


def test_metric_points_are_pure_functions_of_the_fold() -> None:
    from carbonwrap.report.mlflow_backfill import replay_points

    lines: list[dict[str, Any]] = []

    class Collect:
        def write(self, r: dict[str, Any]) -> None:
            lines.append(r)

    record = Recorder(Collect())  # type: ignore[arg-type]
    record(records.start(
        run_id="ab", time_s=T0, argv=None, cwd="/", host="h", pid=1, versions={},
        cpu_accounting="x", components={"cpu": {"method": "rapl"}}, region={"code": "FR"},
        pue=1.5, interval_s=1.0, log_interval_s=10.0, job={}, tags={},
    ))  # fmt: skip
    record(records.intensity(time_s=T0, elapsed_s=0, intensity_g_per_kwh=100.0, region="FR",
                             source="t"))  # fmt: skip
    sample(record, 1)
    points, samples = replay_points(lines)
    assert samples == 1
    by_key = {p.key: p for p in points}
    assert by_key["carbonwrap_co2e_g"].value == pytest.approx(0.15)  # 1 Wh x 1.5 x 100 g/kWh
    assert by_key["carbonwrap_energy_kwh"].step == 1
