"""Progress from the command in real runs of carbonwrap: reports from the helper and the shell
logged and rate-limited, the channel given to the command and removed at the end."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw

PY = sys.executable
# carbonwrap's start-up and the command's interpreter's, before the command's first line: ~0.2 s
# on the development VM, up to ~0.45 s while other tests load its two cores.
STARTUP_ALLOWANCE_S = 0.5


# --- real runs ----------------------------------------------------------------------------------


def progress_records(workdir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    (log,) = logs_in(workdir)
    recs = records(log)
    assert recs[0]["type"] == "start" and recs[-1]["type"] == "end"
    return [r for r in recs if r["type"] == "progress"], recs


def test_run_records_helper_reports(workdir: Path) -> None:
    script = (
        "import carbonwrap; carbonwrap.progress(3, 10, 'epoch'); "
        "carbonwrap.progress(10, 10, 'epoch')"
    )
    result = run_cw("run", "-q", "--", PY, "-c", script, cwd=workdir)
    assert result.returncode == 0, result.stderr
    progress, _ = progress_records(workdir)
    assert [(r["done"], r["total"], r["unit"], r["source"]) for r in progress] == [
        (3, 10, "epoch", "channel"),
        (10, 10, "epoch", "channel"),
    ]
    assert all(r["elapsed_s"] >= 0 for r in progress)


def test_run_records_shell_reports_and_warns_once_about_bad_ones(workdir: Path) -> None:
    report = f"{PY} -m carbonwrap.report_progress"
    script = (
        f"{report} epoch 1/3; {report} nonsense; {report} 'epoch 9/3'; "
        f'{report} \'{{"done": 2, "total": 3, "unit": "epoch"}}\'; {report}; {report} 100%'
    )
    result = run_cw("run", "-q", "--", "sh", "-c", script, cwd=workdir)
    assert result.returncode == 0, result.stderr
    progress, recs = progress_records(workdir)
    assert [(r["done"], r["total"], r["unit"]) for r in progress] == [
        (1, 3, "epoch"),
        (2, 3, "epoch"),
        (1.0, 1.0, "fraction"),
    ]
    warnings = [r["message"] for r in recs if r["type"] == "warning" and "progress" in r["message"]]
    assert len(warnings) == 1 and warnings[0].startswith("2 progress message(s)")


def test_run_rate_limits_the_log_and_keeps_the_last(workdir: Path) -> None:
    script = textwrap.dedent(
        """
        import time, carbonwrap
        start = time.monotonic()
        for step in range(1, 50_001):
            carbonwrap.progress(step, 50_000, "step")
            if step % 1000 == 0:
                time.sleep(0.02)
        """
    )
    result = run_cw(
        "run", "-q", "--interval", "0.2", "--log-interval", "0.2", "--", PY, "-c", script,
        cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    progress, recs = progress_records(workdir)
    elapsed_s = recs[-1]["elapsed_s"]
    assert 2 <= len(progress) <= elapsed_s / 0.2 + 3
    assert (progress[-1]["done"], progress[-1]["total"]) == (50_000, 50_000)
    dones = [r["done"] for r in progress]
    assert dones == sorted(dones)


def test_run_many_processes_report(workdir: Path) -> None:
    """Four ranks report the same steps at once (as DDP does): one source is logged, in order."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys
        rank = (
            "import carbonwrap, time\\nfor s in range(1, 201):\\n"
            "    carbonwrap.progress(s, 200, 'step')\\n    time.sleep(0.002)"
        )
        procs = [subprocess.Popen([{PY!r}, "-c", rank]) for _ in range(4)]
        sys.exit(max(p.wait() for p in procs))
        """
    )
    result = run_cw("run", "-q", "--log-interval", "1", "--", PY, "-c", script, cwd=workdir)
    assert result.returncode == 0, result.stderr
    progress, recs = progress_records(workdir)
    dones = [r["done"] for r in progress]
    assert dones and dones == sorted(dones)
    assert progress[-1]["done"] == 200
    assert not any(r["type"] == "warning" and "progress" in r["message"] for r in recs)


def channel_dir_of(workdir: Path) -> Path:
    return Path((workdir / "channel").read_text().strip()).parent


def test_run_gives_the_command_its_own_channel_when_nested(workdir: Path) -> None:
    result = run_cw(
        "run", "-q", "--", "sh", "-c", 'echo "$CARBONWRAP_PROGRESS" > channel', cwd=workdir,
        env=cw_env(CARBONWRAP_PROGRESS="/tmp/an-outer-carbonwrap/progress"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert channel_dir_of(workdir).name.startswith("carbonwrap-")


def test_run_removes_the_channel_directory(workdir: Path) -> None:
    result = run_cw(
        "run", "-q", "--", "sh", "-c", 'echo "$CARBONWRAP_PROGRESS" > channel', cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    assert channel_dir_of(workdir).name.startswith("carbonwrap-")
    assert not channel_dir_of(workdir).exists()


def test_run_removes_the_channel_directory_when_the_child_is_killed(workdir: Path) -> None:
    script = 'echo "$CARBONWRAP_PROGRESS" > channel; kill -KILL $$'
    result = run_cw("run", "-q", "--", "sh", "-c", script, cwd=workdir)
    assert result.returncode == 128 + signal.SIGKILL
    assert not channel_dir_of(workdir).exists()


def test_run_removes_the_channel_directory_on_sigterm(workdir: Path) -> None:
    script = 'echo "$CARBONWRAP_PROGRESS" > channel; exec sleep 30'
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--", "sh", "-c", script), cwd=workdir, env=cw_env()
    )
    deadline = time.monotonic() + 30
    while not (workdir / "channel").exists() or not (workdir / "channel").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # forwarded to the command; carbonwrap ends normally
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not channel_dir_of(workdir).exists()


def test_helper_after_carbonwrap_has_gone(workdir: Path) -> None:
    """A process left running reports after carbonwrap has exited: no error, no blocking."""
    late = textwrap.dedent(
        """
        import os, time, carbonwrap
        carbonwrap.progress(1, 2, "epoch")
        path = os.environ["CARBONWRAP_PROGRESS"]
        while os.path.exists(path):
            time.sleep(0.01)
        start = time.process_time()
        for _ in range(10_000):
            carbonwrap.progress(2, 2, "epoch")
        with open("late.tmp", "w") as out:
            out.write(str(time.process_time() - start))
        os.rename("late.tmp", "late")
        """
    )
    result = run_cw(
        "run", "-q", "--", "sh", "-c", f"{PY} -c '{late}' > /dev/null 2>&1 &", cwd=workdir
    )
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 30
    while not (workdir / "late").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert float((workdir / "late").read_text()) < 2.0


@pytest.mark.parametrize("reporter", ["helper", "module"])
def test_a_run_that_reports_progress_ends_with_its_command(workdir: Path, reporter: str) -> None:
    """Reports right before the command exits (the last one waiting for its time in the rate
    limiter): carbonwrap ends within 0.5 s of its command, and the run's duration is the
    command's. Before, the channel's close waited its whole 2 s timeout: 2 s more in wall
    time, in elapsed_s, and in every interval's energy."""
    report = (
        "carbonwrap.progress({}, 10, 'epoch')"
        if reporter == "helper"
        else f"subprocess.run([{PY!r}, '-m', 'carbonwrap.report_progress', 'epoch {{}}/10'])"
    )
    script = textwrap.dedent(
        f"""
        import json, subprocess, time, carbonwrap
        start = time.monotonic()
        {report.format(1)}
        {report.format(2)}
        time.sleep(0.3)
        {report.format(9)}
        with open("times", "w") as out:
            json.dump([start, time.monotonic()], out)
        """
    )
    launched = time.monotonic()
    result = run_cw("run", "-q", "--", PY, "-c", script, cwd=workdir)
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr
    start, stop = json.loads((workdir / "times").read_text())
    progress, recs = progress_records(workdir)
    assert [r["done"] for r in progress] == [1, 9]  # 2 superseded by 9, logged at the end
    assert ended - stop < 0.5, f"carbonwrap ended {ended - stop:.2f} s after its command"
    overhead_s = (ended - launched) - (stop - start)
    assert overhead_s < 0.5 + STARTUP_ALLOWANCE_S, f"{overhead_s:.2f} s more than the command"
    assert recs[-1]["elapsed_s"] - (stop - start) < 0.5
