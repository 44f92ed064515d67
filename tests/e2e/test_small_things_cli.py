"""Small things that cost a user time (issue 14), through the real carbonwrap: completion of
the wrapped command in real bash, zsh and fish; the one-line hints; workers that end a moment
after the command; `report` where no runs were logged."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cgroup_marks import needs_cgroup1, needs_cgroup2
from conftest import REPO, cw_env, logs_in, records, run_cw

FAST = ("--interval", "0.05", "--log-interval", "0.1", "--intensity", "100", "--log-dir", "logs")


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """A `carbonwrap` on PATH that runs the checkout, a program `trainer-x1` beside it, and a
    working directory with two files that start alike."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "carbonwrap"
    program.write_text(f'#!/bin/sh\nexec {sys.executable} -m carbonwrap "$@"\n')
    program.chmod(0o755)
    (bin_dir / "trainer-x1").write_text("#!/bin/sh\n")
    (bin_dir / "trainer-x1").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    (work / "train.py").write_text("")
    (work / "trainer.cfg").write_text("")
    env = cw_env()
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["HOME"] = str(tmp_path)
    # Shells make their own directories there (fish: $XDG_CONFIG_HOME/fish): never the shared
    # /nonexistent of cw_env, whose absence other tests count on.
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def _bash_complete(line: str, env: dict[str, str], cwd: Path) -> tuple[list[str], str]:
    """COMPREPLY for the last word of `line` (a trailing space: an empty word), the way bash's
    programmable completion calls the function; and the `compopt` calls it made (recorded by a
    stand-in: the builtin works only while bash itself is completing)."""
    words = line.split() + ([""] if line.endswith(" ") else [])
    script = REPO / "completions" / "carbonwrap.bash"
    bash = (
        f'source {script}; compopt() {{ local IFS=" "; echo "compopt $*" >&2; }}; '
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}; "
        '_carbonwrap_completion carbonwrap; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    result = subprocess.run(
        ["bash", "-c", bash], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split(), result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_the_wrapped_program_then_its_files(
    shell_env: dict[str, str], tmp_path: Path
) -> None:
    """Before: `carbonwrap run trai<Tab>` offered nothing (no completion for the argument)."""
    work = tmp_path / "work"
    for line in ("carbonwrap run trainer-x", "carbonwrap run --region DK -q -- trainer-x"):
        reply, calls = _bash_complete(line, shell_env, work)
        assert reply == ["trainer-x1"] and calls == "", line
    # After the program's name: files, by bash's own filename completion (`-o default`).
    for line in (
        "carbonwrap run -- python3 trai",
        "carbonwrap run python3 -c ",
        "carbonwrap run python3 --region ",
    ):
        reply, calls = _bash_complete(line, shell_env, work)
        assert reply == [] and calls == "compopt -o default\n", line
    reply, _ = _bash_complete("carbonwrap report --group-by ", shell_env, work)
    assert reply == ["command", "host", "day", "job", "job,host", "job,rank", "tag:"]
    reply, _ = _bash_complete("carbonwrap run --region DK-D", shell_env, work)
    assert reply == ["DK-DK1", "DK-DK2"]  # run's options as before


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish")
def test_fish_completes_the_wrapped_program_then_its_files(
    shell_env: dict[str, str], tmp_path: Path
) -> None:
    script = REPO / "completions" / "carbonwrap.fish"
    replies = {}
    for line in (
        "carbonwrap run --region DK -- trainer-x",
        "carbonwrap run -- python3 trai",
        "carbonwrap report --group-by ",
    ):
        result = subprocess.run(
            ["fish", "--no-config", "-c", f"source {script}; complete -C {line!r}"],
            capture_output=True, text=True, env=shell_env, cwd=tmp_path / "work", timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        replies[line] = [row.split("\t")[0] for row in result.stdout.splitlines()]
    assert replies["carbonwrap run --region DK -- trainer-x"] == ["trainer-x1"]
    assert replies["carbonwrap run -- python3 trai"] == ["train.py", "trainer.cfg"]
    assert replies["carbonwrap report --group-by "] == ["command", "day", "host", "job", "tag:"]


@pytest.mark.skipif(
    shutil.which("zsh") is None or shutil.which("tmux") is None, reason="no zsh or no tmux"
)
def test_zsh_completes_the_wrapped_program_then_its_files(
    shell_env: dict[str, str], tmp_path: Path
) -> None:
    """zsh's completion system runs only in an interactive shell: tmux types and reads it."""
    rc = tmp_path / "zshrc"
    rc.write_text(
        "PS1='$ '\nautoload -Uz compinit && compinit -u -D\n"
        f"source {REPO / 'completions' / 'carbonwrap.zsh'}\n"
    )
    socket = str(tmp_path / "tmux.sock")

    def tmux(*args: str) -> str:
        return subprocess.run(
            ["tmux", "-S", socket, "-f", "/dev/null", *args],
            capture_output=True, text=True, env=shell_env, timeout=30, check=True,
        ).stdout  # fmt: skip

    def typed(line: str) -> str:
        """The prompt's line once `line` and Tab are typed and the completion has come."""
        tmux("send-keys", "-t", "0", "C-u")
        tmux("send-keys", "-t", "0", "-l", line)
        tmux("send-keys", "-t", "0", "Tab")
        deadline = time.monotonic() + 30
        while True:
            rows = [r for r in tmux("capture-pane", "-p", "-t", "0").splitlines() if r.strip()]
            last = rows[-1] if rows else ""
            grown = last.startswith(f"$ {line}") and len(last) > len(f"$ {line}")
            if grown or time.monotonic() > deadline:
                return last[2:]
            time.sleep(0.1)

    tmux(
        "new-session", "-d", "-x", "150", "-y", "10", "-c", str(tmp_path / "work"),
        f"ZDOTDIR={tmp_path} exec zsh -f -i",
    )  # fmt: skip
    try:
        tmux("send-keys", "-t", "0", "-l", f"source {rc}; clear")
        tmux("send-keys", "-t", "0", "Enter")
        assert typed("carbonwrap run -q trainer-") == "carbonwrap run -q trainer-x1"
        assert typed("carbonwrap run -- python3 train.") == "carbonwrap run -- python3 train.py"
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


# --- the one-line hints, as the user sees them -------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "line"),
    [
        (
            ["--region", "DK", "run", "--", "true"],
            125,
            "carbonwrap: --region is an option of `run` and goes after the command's name: "
            "carbonwrap run --region DK -- …",
        ),
        (
            ["run", "python3 -c pass"],
            127,
            "carbonwrap: python3 -c pass: command not found; pass the command and its "
            "arguments as separate words: carbonwrap run -- python3 -c pass",
        ),
        (
            ["run", "--intensity", "300g", "--", "true"],
            125,
            "carbonwrap: --intensity wants a number in gCO2e/kWh, e.g. --intensity 300; '300g' "
            "is not one (see 'carbonwrap run --help')",
        ),
    ],
)
def test_the_hints_are_one_line(tmp_path: Path, args: list[str], status: int, line: str) -> None:
    result = run_cw(*args, cwd=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (status, line + "\n", "")


def test_report_where_nothing_was_logged_says_so(tmp_path: Path) -> None:
    """Before: "carbonwrap: logs: no such file or directory" and 125."""
    result = run_cw("report", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.startswith("carbonwrap: no runs here: logs/ does not exist")
    assert "carbonwrap report DIR" in result.stderr
    assert result.stdout.startswith("No runs.")


# --- workers that end a moment after the command -------------------------------------------

METHODS = [
    pytest.param("cgroup2", marks=needs_cgroup2),
    pytest.param("cgroup1", marks=needs_cgroup1),
    "process-tree",
]


def _run_leaving(tmp_path: Path, method: str, seconds: float) -> dict[str, Any]:
    result = run_cw(
        "run", "-q", *FAST, "--cpu-accounting", method, "--json", "-", "--",
        "sh", "-c", f"sleep {seconds} >/dev/null 2>&1 & exit 0", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_that_ends_a_moment_after_the_command_was_not_left_running(
    tmp_path: Path, method: str
) -> None:
    """Before: "1 process(es) still running when the command ended were left running"."""
    report = _run_leaving(tmp_path, method, 0.2)
    assert report["leftover_pids"] == []
    assert not any("left running" in note for note in report["notes"])
    (log,) = logs_in(tmp_path)
    assert records(log)[-1]["leftover_pids"] == []


@pytest.mark.parametrize("method", METHODS)
def test_a_worker_that_stays_is_still_left_running(tmp_path: Path, method: str) -> None:
    started = time.monotonic()
    report = _run_leaving(tmp_path, method, 30)
    (pid,) = report["leftover_pids"]
    try:
        assert time.monotonic() - started < 20
        os.kill(pid, 0)  # still running
        notes = report["notes"]
        assert any(f"left running and are not counted further: {pid}" in n for n in notes)
        (log,) = logs_in(tmp_path)
        assert records(log)[-1]["leftover_pids"] == [pid]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_the_stop_order_in_the_architecture_is_the_codes() -> None:
    """docs/ARCHITECTURE.md lists STOP_ORDER (wait_for_leftovers among them) step by step."""
    import re

    from carbonwrap.run.finish import STOP_ORDER

    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## How a run ends", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^\d+\. `(\w+)`", section, re.M) == [step for step, _ in STOP_ORDER]


def test_a_command_not_found_leaves_no_log_directory(tmp_path: Path) -> None:
    """`carbonwrap run nope` in a fresh directory: 127, one line, and no empty `logs/` made for a
    run that never started (a later `report` would then say "no logs found in logs")."""
    result = run_cw("run", "--", "no-such-command-here", cwd=tmp_path)
    assert result.returncode == 127 and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "logs").exists()
    (tmp_path / "logs").mkdir()  # one that was there already stays
    result = run_cw("run", "--", "no-such-command-here", cwd=tmp_path)
    assert result.returncode == 127 and (tmp_path / "logs").is_dir()
