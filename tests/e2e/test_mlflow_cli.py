"""MLflow end to end: `run --mlflow` and `report --to-mlflow` into a real MLflow file store
(mlflow-skinny), `report --model-card`, and a run whose tracking server is not there."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("mlflow", reason="mlflow-skinny is in the test extra")
yaml = pytest.importorskip("yaml", reason="PyYAML comes with huggingface_hub (test extra)")

from conftest import cw_env, logs_in, records, run_cw  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

SCRIPT = textwrap.dedent(
    """
    import time, carbonwrap
    from carbonwrap.report_progress import totals
    for epoch in range(1, 4):
        time.sleep(0.25)
        carbonwrap.progress(epoch, 3, "epoch")
    time.sleep(0.3)
    print("totals", totals())
    """
)


def env_for(store: str, **extra: str) -> dict[str, str]:
    return cw_env(MLFLOW_TRACKING_URI=store, MLFLOW_ALLOW_FILE_STORE="true", **extra)


def test_run_then_backfill_then_model_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # for this test's own client too
    store = (tmp_path / "mlruns").as_uri()
    env = env_for(store)
    argv = ("run", "--intensity", "250", "--interval", "0.1", "--log-interval", "0.2")
    live = run_cw(*argv, "--mlflow", "--tag", "training_type=fine-tuning", "--",
                  sys.executable, "-c", SCRIPT, cwd=tmp_path, env=env)  # fmt: skip
    assert live.returncode == 0, live.stderr
    assert "Per epoch" in live.stderr  # the final report's efficiency line
    # the command read its own totals back while it ran
    line = next(x for x in live.stdout.splitlines() if x.startswith("totals "))
    assert "'co2e_g'" in line and "'energy_kwh'" in line
    plain = run_cw(*argv, "--", "true", cwd=tmp_path, env=env)
    assert plain.returncode == 0, plain.stderr
    first, second = (records(path) for path in logs_in(tmp_path))
    live_id = next(r["run_id"] for r in first + second if r.get("argv", [""])[0] != "true"
                   and r["type"] == "start")  # fmt: skip

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs(["0"])
    assert run.data.tags["carbonwrap.run_id"] == live_id
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "carbonwrap_co2e_g")
    assert len(history) >= 2 and [m.step for m in history] == sorted(m.step for m in history)
    assert run.data.metrics["carbonwrap_epoch_count"] == 3

    backfill = ("report", "--to-mlflow", "--mlflow-experiment", "past", str(tmp_path))
    done = run_cw(*backfill, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("2 run(s) logged to MLflow experiment")
    again = run_cw(*backfill, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "0 run(s) logged" in again.stdout and "2 already there" in again.stdout
    experiment = client.get_experiment_by_name("past")
    assert experiment is not None
    past = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["carbonwrap.status"] for r in past) == ["ok", "ok"]
    backfilled = next(r for r in past if r.data.tags["carbonwrap.run_id"] == live_id)
    # the same series the live sink logged, from the log
    assert [m.value for m in client.get_metric_history(backfilled.info.run_id,
            "carbonwrap_co2e_g")] == [m.value for m in history]  # fmt: skip

    card = run_cw("report", "--model-card", str(tmp_path), cwd=tmp_path, env=env)
    assert card.returncode == 0, card.stderr
    block = yaml.safe_load(card.stdout)["co2_eq_emissions"]
    assert block["training_type"] == "fine-tuning"
    assert block["emissions"] > 0 and block["source"].startswith("carbonwrap ")
    assert "co2_eq_emissions of 2 runs" in card.stderr


def test_a_tracking_server_that_is_not_there_never_fails_the_run(tmp_path: Path) -> None:
    env = env_for("http://127.0.0.1:9")  # nothing listens there
    began = time.monotonic()
    result = run_cw("run", "--intensity", "100", "--mlflow", "--", "sh", "-c", "exit 3",
                    cwd=tmp_path, env=env)  # fmt: skip
    took_s = time.monotonic() - began
    assert result.returncode == 3, result.stderr  # the command's own status
    assert took_s < 20  # the end waits END_WAIT_S (5 s), not MLflow's minutes of retries
    (log,) = logs_in(tmp_path)
    said = [r["message"] for r in records(log) if r["type"] == "warning" and "--mlflow" in
            r["message"]]  # fmt: skip
    assert len(said) == 1, said


def test_options_that_do_not_go_together_are_refused(tmp_path: Path) -> None:
    env = env_for((tmp_path / "mlruns").as_uri())
    refused = [
        ("report", "--model-card", "--json"),
        ("report", "--to-mlflow", "--model-card"),
        ("report", "--model-card", "--group-by", "host"),
        ("report", "--mlflow-experiment", "x"),
    ]
    for argv in refused:
        result = run_cw(*argv, cwd=tmp_path, env=env)
        assert result.returncode == 125, (argv, result.stderr)
        assert result.stderr.count("\n") <= 3, result.stderr
