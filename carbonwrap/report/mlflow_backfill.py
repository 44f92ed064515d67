"""MLflow: what carbonwrap logs there (metric and tag names, from a run's records and summary),
the client, and `report --to-mlflow`, which backfills past runs as MLflow runs. The live sink
(`live/mlflow.py`) logs the same names while a run lasts.

MLflow is optional (`pip install carbonwrap[mlflow]`: mlflow-skinny); it is imported only here,
on first use. The API used: `mlflow.tracking.MlflowClient` (create_run, log_batch, set_tag,
set_terminated, search_runs, get_experiment_by_name) and `mlflow.entities.Metric`/`RunTag`
(mlflow/tracking/client.py, mlflow/entities/metric.py in mlflow 3.x). A log_batch takes at most
1000 metrics and 100 tags (mlflow/utils/validation.py: MAX_METRICS_PER_BATCH,
MAX_TAGS_PER_BATCH)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from carbonwrap import __version__
from carbonwrap.errors import CarbonwrapError
from carbonwrap.runlog.ledger import J_PER_KWH, SoFar
from carbonwrap.runlog.records import parse_utc
from carbonwrap.runlog.summary import RunSummary

RUN_ID_TAG = "carbonwrap.run_id"  # how a backfill knows a run is already there
DEFAULT_EXPERIMENT = "Default"  # MLflow's own, id "0"
MAX_METRICS = 1000
MAX_TAGS = 100
INSTALL_HINT = "install it with: pip install 'carbonwrap[mlflow]' (mlflow-skinny)"
# The run's status in MLflow (mlflow.entities.RunStatus names) by how the command ended.
STATUS = {"ok": "FINISHED", "failed": "FAILED", "killed": "KILLED", "stopped": "KILLED"}


class Point(NamedTuple):
    """One metric value: MLflow's key, value, timestamp (ms since the epoch) and step."""

    key: str
    value: float
    timestamp_ms: int
    step: int


def sample_points(step: int, time_s: float, so_far: SoFar) -> list[Point]:
    """After a logged sample (`step`: its number, 1 for the first): the attributed energy so
    far (kWh, before PUE), the CO2e so far (g, PUE included), the intensity in force."""
    ms = int(time_s * 1000)
    points = [
        Point("carbonwrap_energy_kwh", so_far.energy_j / J_PER_KWH, ms, step),
        Point("carbonwrap_co2e_g", so_far.co2e_g, ms, step),
    ]
    if so_far.intensity is not None:
        points.append(Point("carbonwrap_intensity_g_per_kwh", so_far.intensity[0], ms, step))
    return points


def prediction_points(step: int, record: Mapping[str, Any]) -> list[Point]:
    """A logged prediction (`step`: the samples logged before it): the predicted totals and
    how far the work is."""
    time_s = parse_utc(record.get("time"))
    if time_s is None:
        return []
    ms = int(time_s * 1000)
    points = []
    for key, name, scale in (
        ("co2e_g", "carbonwrap_predicted_co2e_g", 1.0),
        ("energy_j", "carbonwrap_predicted_energy_kwh", 1 / J_PER_KWH),
        ("duration_s", "carbonwrap_predicted_duration_s", 1.0),
        ("fraction", "carbonwrap_progress_fraction", 1.0),
    ):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            points.append(Point(name, float(value) * scale, ms, step))
    return points


def final_points(s: RunSummary, step: int, time_ms: int) -> list[Point]:
    """The run's totals as it ended, beside the series (whose last point, from the end record,
    is the total energy and CO2e): each component's energy, the mean intensity, duration, CPU
    time, PUE, and per unit of reported work where there is one."""
    values: dict[str, float] = {
        "carbonwrap_duration_s": s.duration_s,
        "carbonwrap_cpu_s": s.cpu_s,
        "carbonwrap_pue": s.pue,
    }
    for name, component in sorted(s.components.items()):
        if component.energy_j is not None and name.isidentifier():
            values[f"carbonwrap_energy_{name}_kwh"] = component.energy_j / J_PER_KWH
    if s.intensity_mean_g_per_kwh is not None:
        values["carbonwrap_intensity_mean_g_per_kwh"] = s.intensity_mean_g_per_kwh
    per = s.per_unit
    if per is not None and str(per["unit"]).replace(".", "_").replace("-", "_").isidentifier():
        unit = str(per["unit"])
        values[f"carbonwrap_energy_j_per_{unit}"] = per["energy_j_per_unit"]
        values[f"carbonwrap_co2e_g_per_{unit}"] = per["co2e_g_per_unit"]
        values[f"carbonwrap_{unit}_count"] = float(per["count"])
    return [Point(key, float(value), time_ms, step) for key, value in values.items()]


def final_tags(s: RunSummary) -> dict[str, str]:
    """What the run was: its carbonwrap id, how it ended, where, how each part was measured."""
    methods = "; ".join(f"{name}={c.method}" for name, c in sorted(s.components.items()))
    tags = {
        RUN_ID_TAG: s.run_id,
        "carbonwrap.version": __version__,
        "carbonwrap.status": s.status,
        "carbonwrap.host": s.host,
        "carbonwrap.region": s.region.get("code", ""),
        "carbonwrap.intensity_source": "; ".join(s.intensity_sources),
        "carbonwrap.methods": methods,
    }
    for key, value in s.tags.items():
        tags[f"carbonwrap.tag.{key}"] = value
    return {key: value[:5000] for key, value in list(tags.items())[:MAX_TAGS] if value}


def mlflow_client(tracking_uri: str | None) -> Any:
    """An MlflowClient for `tracking_uri` (None: MLFLOW_TRACKING_URI, else MLflow's default);
    CarbonwrapError when mlflow is not installed."""
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise CarbonwrapError(f"MLflow is not installed ({exc}); {INSTALL_HINT}") from None
    return MlflowClient(tracking_uri=tracking_uri)


def experiment_id(client: Any, name: str | None, environ: Mapping[str, str]) -> str:
    """The experiment's id: `name`, else MLFLOW_EXPERIMENT_NAME, else MLFLOW_EXPERIMENT_ID,
    else MLflow's Default; one that does not exist by that name is created."""
    name = name or environ.get("MLFLOW_EXPERIMENT_NAME") or None
    if name is None and environ.get("MLFLOW_EXPERIMENT_ID"):
        return environ["MLFLOW_EXPERIMENT_ID"]
    name = name or DEFAULT_EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name))


def log_batch(client: Any, run_id: str, points: Sequence[Point], tags: Mapping[str, str]) -> None:
    """Points and tags in as few calls as MLflow's batch limits allow."""
    from mlflow.entities import Metric, RunTag

    metrics = [Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points]
    run_tags = [RunTag(key, value) for key, value in tags.items()]
    while metrics or run_tags:
        client.log_batch(run_id, metrics=metrics[:MAX_METRICS], tags=run_tags[:MAX_TAGS])
        metrics, run_tags = metrics[MAX_METRICS:], run_tags[MAX_TAGS:]


def replay_points(records: Iterable[Mapping[str, Any]]) -> tuple[list[Point], int]:
    """A whole log's sample and prediction points, folded as the live sink logs them; and how
    many samples it holds (the final points' step)."""
    from carbonwrap.runlog.summary import Fold

    fold = Fold()
    points: list[Point] = []
    samples = 0
    for record in records:
        fold.add(dict(record))
        kind = record.get("type")
        time_s = parse_utc(record.get("time"))
        if kind in ("sample", "end") and time_s is not None:
            samples += 1
            points += sample_points(samples, time_s, fold.so_far())
        elif kind == "prediction":
            points += prediction_points(samples, record)
    return points, samples


@dataclass
class Backfill:
    """What `report --to-mlflow` did, run by run (carbonwrap run ids)."""

    experiment_id: str = ""
    logged: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # a run with its tag is there
    incomplete: list[str] = field(default_factory=list)  # no end record: not logged yet
    failed: list[str] = field(default_factory=list)  # "run_id: reason"


def already_there(client: Any, experiment: str, run_id: str) -> bool:
    # run ids are carbonwrap's hex (`new_run_id`); anything else in a log is not quoted in
    if not run_id.isalnum():
        return False
    found = client.search_runs(
        [experiment], filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'", max_results=1
    )
    return len(found) > 0


def backfill(
    runs: Sequence[RunSummary],
    client: Any,
    experiment: str | None,
    environ: Mapping[str, str],
) -> Backfill:
    """Each finished run not yet in the experiment (by its `carbonwrap.run_id` tag) becomes an
    MLflow run: its samples as metric series (step = sample number, timestamp = the sample's
    time), its totals as final metrics, its tags, its start, end and status. Runs without an
    end record are left for later (still running, or cut)."""
    from carbonwrap.runlog.reader import RecordReader

    done = Backfill(experiment_id(client, experiment, environ))
    for s in runs:
        if not s.complete:
            done.incomplete.append(s.run_id)
            continue
        try:
            if already_there(client, done.experiment_id, s.run_id):
                done.already.append(s.run_id)
                continue
            points, samples = replay_points(RecordReader(_path(s)))
            start_ms = int((parse_utc(s.started_at) or 0) * 1000)
            end_ms = int((parse_utc(s.ended_at) or 0) * 1000) or None
            name = {"mlflow.runName": _run_name(s)}
            created = client.create_run(done.experiment_id, start_time=start_ms, tags=name)
            mlflow_id = created.info.run_id
            points += final_points(s, samples, end_ms or start_ms)
            log_batch(client, mlflow_id, points, final_tags(s))
            client.set_terminated(mlflow_id, STATUS.get(s.status, "FAILED"), end_ms)
        except Exception as exc:  # one run's trouble does not stop the others
            done.failed.append(f"{s.run_id}: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        done.logged.append(s.run_id)
    return done


def _path(s: RunSummary) -> Any:
    from pathlib import Path

    if not s.log_path:
        raise OSError("the run's log is not known")
    return Path(s.log_path)


def _run_name(s: RunSummary) -> str:
    """The program's name and carbonwrap's run id: "train.py 3f2a9c1b7d00"."""
    words = s.command or []
    program = next((w for w in words if w.endswith(".py")), words[0] if words else "")
    return f"{program.rsplit('/', 1)[-1]} {s.run_id}".strip()[:250]
