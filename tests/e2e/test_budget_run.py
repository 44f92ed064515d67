"""--budget through real runs: carbonwrap as a subprocess, busy children that exceed tiny
budgets (the actual total: no progress needed), stopping with SIGTERM, the grace period and
SIGKILL, warnings, settings from the environment and files, and one-line errors."""

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import cw_env, logs_in, records, run_cw

# Busy for at most 30 s of wall time: a budget that never triggers fails the test, never hangs.
BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end: pass\n"
IGNORE_TERM = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
FAST = ("--interval", "0.05", "--log-interval", "0.1", "--intensity", "100", "--log-dir", "logs")


def budget_events(workdir: Path) -> list[dict[str, Any]]:
    (log,) = logs_in(workdir / "logs")
    return [r for r in records(log) if r["type"] == "budget"]


def end_record(workdir: Path) -> dict[str, Any]:
    (log,) = logs_in(workdir / "logs")
    return records(log)[-1]


def test_stop_on_the_actual_energy(workdir: Path) -> None:
    began = time.monotonic()
    done = run_cw(
        "run", *FAST, "--budget", "1J", "--on-exceed", "stop", "--json", "out.json", "--",
        sys.executable, "-c", BUSY, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert time.monotonic() - began < 25
    lines = done.stderr.splitlines()
    assert lines[0].startswith("carbonwrap: budget 1 J exceeded (actual ")
    assert lines[0].endswith(": stopping the command (SIGTERM; SIGKILL after 10 s)")
    assert "· stopped by --budget, killed by SIGTERM (exit 143) ·" in done.stderr
    assert "STOPPED: budget 1 J exceeded (actual" in done.stderr
    assert "exit status 124" in done.stderr
    found = budget_events(workdir)
    assert [e["event"] for e in found] == ["set", "exceeded"]
    assert found[0]["limit_energy_j"] == 1.0 and found[0]["grace_s"] == 10.0
    assert found[1]["basis"] == "actual" and found[1]["energy_j"] > 1.0
    end = end_record(workdir)
    assert end["type"] == "end" and end["signal"] == "SIGTERM" and end["exit_code"] == 143
    assert end["stopped"] == found[1]["message"]
    doc = json.loads((workdir / "out.json").read_text())
    assert doc["exit_code"] == 143 and doc["stopped"] == end["stopped"]
    budget = doc["budget"]
    assert budget["limit"] == "1 J" and budget["limit_energy_kwh"] == pytest.approx(1 / 3.6e6)
    assert budget["exceeded"] and budget["stopped"] == end["stopped"]
    assert budget["events"][0]["energy_kwh"] > 1 / 3.6e6
    assert "prediction" not in doc or doc["prediction"] is None


def test_sigkill_when_the_command_ignores_sigterm(workdir: Path) -> None:
    done = run_cw(
        "run", *FAST, "--budget", "1J", "--on-exceed", "stop", "--budget-grace", "0.5", "--",
        sys.executable, "-c", IGNORE_TERM + BUSY, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert "carbonwrap: the command was still running 0.5 s after SIGTERM: SIGKILL sent" in (
        done.stderr
    )
    assert [e["event"] for e in budget_events(workdir)] == ["set", "exceeded", "kill"]
    end = end_record(workdir)
    assert end["signal"] == "SIGKILL" and end["exit_code"] == 137


def test_the_whole_tree_is_stopped(workdir: Path) -> None:
    """A shell dies of SIGTERM at once; its child ignores SIGTERM: it is killed after the
    grace period, not left running."""
    child = (
        IGNORE_TERM + "open('grandchild.pid', 'w').write(str(__import__('os').getpid()))\n" + BUSY
    )
    script = f"{shlex.quote(sys.executable)} -c {shlex.quote(child)} & wait"
    done = run_cw(
        "run", *FAST, "--budget", "1J", "--on-exceed", "stop", "--budget-grace", "0.5", "--",
        "bash", "-c", script, cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    end = end_record(workdir)
    assert end["signal"] == "SIGTERM" and end["leftover_pids"] == []
    assert [e["event"] for e in budget_events(workdir)] == ["set", "exceeded", "kill"]
    pid = int((workdir / "grandchild.pid").read_text())
    for _ in range(100):  # a zombie until init reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"grandchild {pid} still there")


def test_warn_once_and_let_the_command_finish(workdir: Path) -> None:
    child = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass\n"
    done = run_cw(
        "run", *FAST, "--budget", "1J", "--", sys.executable, "-c", child, cwd=workdir
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "exceeded (actual" in line]
    assert len(warned) == 2  # the line when it happened, the report's budget line
    assert warned[0].startswith("carbonwrap: budget 1 J exceeded (actual ")
    assert warned[0].endswith("; the command goes on (--on-exceed warn)")
    assert "(--on-exceed warn): used " in warned[1] and "; warned: budget 1 J exceeded" in warned[1]
    found = budget_events(workdir)
    assert [(e["event"], e.get("action")) for e in found] == [
        ("set", None),
        ("exceeded", "warn"),
    ]
    assert "stopped" not in end_record(workdir)


def test_a_co2e_budget_from_the_environment_also_under_quiet(workdir: Path) -> None:
    env = cw_env(CARBONWRAP_BUDGET="0.0001 gCO2e", CARBONWRAP_ON_EXCEED="stop")
    done = run_cw(
        "run", "-q", *FAST, "--intensity", "1000", "--", sys.executable, "-c", BUSY,
        cwd=workdir, env=env,
    )  # fmt: skip
    assert done.returncode == 124, done.stderr
    assert done.stderr.startswith("carbonwrap: budget 0.0001 g CO2e exceeded (actual ")
    set_record, exceeded = budget_events(workdir)
    assert set_record["limit_co2e_g"] == 0.0001 and set_record["quantity"] == "co2e"
    assert exceeded["co2e_g"] > 0.0001


def test_a_budget_from_a_project_file(workdir: Path) -> None:
    (workdir / "carbonwrap.toml").write_text('budget = "1 J"\non_exceed = "stop"\n')
    done = run_cw("run", *FAST, "--", sys.executable, "-c", BUSY, cwd=workdir)
    assert done.returncode == 124, done.stderr
    config = run_cw("config", "--json", cwd=workdir)
    settings = json.loads(config.stdout)["settings"]
    assert settings["budget"]["value"] == "1 J" and settings["budget"]["source"] == "project"
    assert settings["on_exceed"]["value"] == "stop"
    assert settings["budget_grace"] == {
        "value": 10.0,
        "source": "default",
        "origin": "",
        "unit": "s",
    }


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("--budget", "5kW"),
            {},
            "carbonwrap: Invalid value for '--budget': '5kW' has an unknown unit 'kW' "
            "(CO2e: g, kg, t; energy: J, kJ, MJ, Wh, kWh, MWh)",
        ),
        (("--budget", "0 g"), {}, "carbonwrap: Invalid value for '--budget': '0 g' must be"),
        (("--on-exceed", "kill"), {}, "carbonwrap: Invalid value for '--on-exceed': 'kill'"),
        (("--budget-grace", "-1"), {}, "carbonwrap: Invalid value for '--budget-grace'"),
        (
            (),
            {"CARBONWRAP_BUDGET": "lots"},
            "carbonwrap: CARBONWRAP_BUDGET=lots: is not an amount with a unit",
        ),
        ((), {"CARBONWRAP_ON_EXCEED": "halt"}, "carbonwrap: CARBONWRAP_ON_EXCEED=halt: must be"),
    ],
)
def test_bad_budget_settings_are_one_line_and_125(
    workdir: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    done = run_cw("run", *args, "--", "true", cwd=workdir, env=cw_env(**env))
    assert done.returncode == 125
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not (workdir / "logs").exists()  # refused before anything ran


def test_a_budget_in_a_file_needs_a_unit(workdir: Path) -> None:
    (workdir / "carbonwrap.toml").write_text("pue = 1.1\nbudget = 500\n")
    done = run_cw("run", "--", "true", cwd=workdir)
    assert done.returncode == 125
    assert "carbonwrap.toml" in done.stderr and ":2" in done.stderr
    assert 'must be an amount with a unit, e.g. "500 g" or "5 kWh"' in done.stderr
