"""Predictions through real runs: a child that reports epochs with carbonwrap.progress() and
burns a fixed amount of CPU time per epoch (energy is the same per epoch even on a loaded
machine: the estimate and RAPL's share both follow CPU time), and a budget the prediction
exceeds long before the actual total does."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import logs_in, records, run_cw

EPOCHS = """\
import sys, time
import carbonwrap
epochs, total, cpu_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
carbonwrap.progress(0, total, "epoch")
for epoch in range(1, epochs + 1):
    end = time.process_time() + cpu_s
    while time.process_time() < end:
        pass
    carbonwrap.progress(epoch, total, "epoch")
"""
FAST = ("--interval", "0.05", "--log-interval", "0.05", "--intensity", "100", "--log-dir", "logs")


def epochs(
    workdir: Path, done: int, total: int, cpu_s: float, *args: str
) -> tuple[int, str, dict[str, Any], list[dict[str, Any]]]:
    ran = run_cw(
        "run", *FAST, "--json", "out.json", *args, "--",
        sys.executable, "-c", EPOCHS, str(done), str(total), str(cpu_s), cwd=workdir,
    )  # fmt: skip
    (log,) = logs_in(workdir / "logs")
    doc = json.loads((workdir / "out.json").read_text())
    return ran.returncode, ran.stderr, doc, records(log)


def test_a_finished_run_compares_its_predictions_with_the_actual_totals(workdir: Path) -> None:
    code, stderr, doc, log = epochs(workdir, 8, 8, 0.15)
    assert code == 0, stderr
    progress = [r for r in log if r["type"] == "progress"]
    predictions = [r for r in log if r["type"] == "prediction"]
    assert progress[0]["done"] == 0 and progress[-1]["done"] == 8
    assert predictions and predictions[-1]["fraction"] == 1.0
    assert predictions[-1]["basis"].endswith("after a 1-epoch warm-up")
    assert log.index(predictions[-1]) < len(log) - 1  # before the end record
    # Each prediction says what it knew: the arrival of a logged report at or before it.
    arrivals = {r["elapsed_s"] for r in progress}
    for prediction in predictions:
        assert prediction["report_elapsed_s"] <= prediction["elapsed_s"]
    assert predictions[-1]["report_elapsed_s"] == progress[-1]["elapsed_s"] in arrivals
    p = doc["prediction"]
    assert p["comparable"] and p["not_comparable_because"] is None
    assert p["first"]["fraction"] < p["last"]["fraction"] == 1.0
    assert p["at_50"]["fraction"] >= 0.5
    # The same CPU time per epoch: the energy is predicted well, even from the first epochs.
    assert abs(p["last"]["error"]["energy"]) < 0.15, p
    assert abs(p["first"]["error"]["energy"]) < 0.5, p
    assert p["last"]["intensity_basis"] == "current"
    assert p["last"]["co2e_kg"] == pytest.approx(
        p["last"]["energy_kwh"] * 100 / 1000, rel=0.05
    )  # 100 g/kWh, PUE 1
    assert "budget" not in doc or doc["budget"] is None
    assert "  Prediction  at " in stderr and "CO2e" in stderr and " vs actual" in stderr
    assert "  actual: " in stderr


def test_an_unfinished_run_says_why_it_cannot_compare(workdir: Path) -> None:
    code, stderr, doc, _ = epochs(workdir, 4, 8, 0.1)
    assert code == 0, stderr
    p = doc["prediction"]
    assert not p["comparable"]
    assert p["not_comparable_because"] == "the last report was at 50 % of the work"
    assert p["last"]["error"] is None
    # Half the work done: about twice the energy so far is predicted.
    assert p["last"]["energy_kwh"] == pytest.approx(2 * doc["energy_kwh"]["total"], rel=0.3)
    assert "not comparable with the actual totals: the last report was at 50 %" in stderr


def test_a_budget_stops_on_a_confident_prediction(workdir: Path) -> None:
    """100 epochs of 0.1 s CPU each: at 10 % the prediction is ten times what has been used.
    A budget between the two stops the command on the prediction (about 1.2 J an epoch at
    the estimate's 12 W: 12 J used, 120 J predicted at 10 %; 40 J holds from 4.5 to 35 W)."""
    code, stderr, doc, log = epochs(
        workdir, 100, 100, 0.1, "--budget", "40J", "--on-exceed", "stop", "--budget-grace", "5"
    )
    assert code == 124, stderr
    (exceeded,) = [r for r in log if r["type"] == "budget" and r["event"] == "exceeded"]
    estimated = log[0]["components"]["cpu"]["method"] == "estimate"
    if estimated:
        assert exceeded["basis"] == "predicted"
    if exceeded["basis"] == "predicted":
        assert exceeded["fraction"] >= 0.1
        assert exceeded["message"].startswith("budget 40 J exceeded (predicted ")
        assert doc["energy_kwh"]["total"] * 3.6e6 < 40  # stopped before the actual got there
        assert doc["prediction"]["last"]["fraction"] < 0.5
    assert doc["stopped"] == exceeded["message"]
    assert doc["budget"]["stopped"] == exceeded["message"]


def test_no_stop_on_a_prediction_from_too_little(workdir: Path) -> None:
    """5 of 100 epochs: the prediction is far over the budget, but 5 % is not enough to act."""
    code, stderr, doc, log = epochs(workdir, 5, 100, 0.05, "--budget", "5J", "--on-exceed", "stop")
    assert code == 0, stderr
    assert doc["prediction"]["last"]["energy_kwh"] * 3.6e6 > 5
    assert [r["event"] for r in log if r["type"] == "budget"] == ["set"]
    assert "stopped" not in doc


# Keras-like output: "Epoch N/M" as epoch N starts (stdout), a tqdm bar of its batches up to
# its total (stderr), the same CPU time per epoch; exit 0 after the last.
KERAS_LIKE = """\
import sys, time
epochs, batches, cpu_s = int(sys.argv[1]), 5, float(sys.argv[2])
for epoch in range(1, epochs + 1):
    print(f"Epoch {epoch}/{epochs}", flush=True)
    for batch in range(1, batches + 1):
        end = time.process_time() + cpu_s / batches
        while time.process_time() < end:
            pass
        sys.stderr.write(f"\\r{20 * batch:3d}%|##| {batch}/{batches} [00:00<00:00, 9.9it/s]")
        sys.stderr.flush()
    sys.stderr.write("\\n")
"""


def keras_like(
    workdir: Path, epochs: int, cpu_s: float, log_interval_s: str
) -> tuple[int, str, dict[str, Any], list[dict[str, Any]]]:
    ran = run_cw(
        "run", "--interval", "0.05", "--log-interval", log_interval_s, "--intensity", "100",
        "--log-dir", "logs", "--json", "out.json", "--progress-from-output", "--",
        sys.executable, "-c", KERAS_LIKE, str(epochs), str(cpu_s), cwd=workdir,
    )  # fmt: skip
    (log,) = logs_in(workdir / "logs")
    doc = json.loads((workdir / "out.json").read_text())
    return ran.returncode, ran.stderr, doc, records(log)


def test_epoch_m_of_m_and_a_clean_exit_is_all_the_work(workdir: Path) -> None:
    """`Epoch 20/20` reads as 19 of 20 done (epoch 20 starting); the clean exit ends epoch 20:
    the last prediction rests on 20 of 20 at the exit, and the predictions are compared with
    the actual totals. Before: "the last report was at 95 % of the work", not comparable."""
    code, stderr, doc, log = keras_like(workdir, 20, 0.05, "0.2")
    assert code == 0, stderr
    progress = [r for r in log if r["type"] == "progress"]
    assert progress[-1]["done"] == 19  # the Epoch 20/20 line, as read: the log keeps it so
    predictions = [r for r in log if r["type"] == "prediction"]
    assert predictions[-1]["done"] == predictions[-1]["total"] == 20
    assert predictions[-1]["fraction"] == 1.0
    # At the exit: after the last report, at the end's time (to the sampler's clock).
    assert progress[-1]["elapsed_s"] < predictions[-1]["report_elapsed_s"]
    assert predictions[-1]["report_elapsed_s"] <= log[-1]["elapsed_s"] + 0.5
    assert log.index(predictions[-1]) < len(log) - 1  # before the end record
    p = doc["prediction"]
    assert p["comparable"] and p["not_comparable_because"] is None, p
    assert p["last"]["done"] == p["last"]["total"] == 20
    # Ended at the exit: the last prediction is the actual run, to rounding.
    assert abs(p["last"]["error"]["energy"]) < 0.02, p["last"]
    assert "  actual: " in stderr and " vs actual" in stderr
    assert "not comparable" not in stderr


def test_a_failed_exit_after_epoch_m_of_m_is_not_the_whole_work(workdir: Path) -> None:
    """Only a clean exit ends the last epoch: a failure leaves it at 19 of 20."""
    failing = KERAS_LIKE + "sys.exit(3)\n"
    ran = run_cw(
        "run", "--interval", "0.05", "--log-interval", "0.2", "--intensity", "100",
        "--log-dir", "logs", "--json", "out.json", "--progress-from-output", "--",
        sys.executable, "-c", failing, "20", "0.02", cwd=workdir,
    )  # fmt: skip
    assert ran.returncode == 3, ran.stderr
    (log,) = logs_in(workdir / "logs")
    assert [r["done"] for r in records(log) if r["type"] == "progress"][-1] == 19
    p = json.loads((workdir / "out.json").read_text())["prediction"]
    assert not p["comparable"]
    assert p["not_comparable_because"] == "the last report was at 95 % of the work"


def test_the_predictor_sees_every_report_and_the_log_stays_rate_limited(workdir: Path) -> None:
    """30 fast epochs inside log intervals of 1 s: the warm-up is the first epoch, not
    whatever arrived in the first log interval (before: "a 20-epoch warm-up" or so); the log
    keeps a handful of progress and prediction records."""
    code, stderr, doc, log = epochs(workdir, 30, 30, 0.05, "--log-interval", "1")
    assert code == 0, stderr
    progress = [r for r in log if r["type"] == "progress"]
    predictions = [r for r in log if r["type"] == "prediction"]
    assert len(progress) < 31 / 2  # rate-limited: not every report
    assert predictions[-1]["basis"] == "from 29 epochs after a 1-epoch warm-up", predictions
    # Logged: the first, 25/50/75 %, the last, and at most one per second besides.
    run_s = log[-1]["elapsed_s"]
    assert len(predictions) <= 5 + run_s / 1.0, predictions
    p = doc["prediction"]
    assert p["comparable"] and p["last"]["fraction"] == 1.0
