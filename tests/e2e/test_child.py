"""The child comes first: exit statuses, pass-through, environment, stdio and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, records, run_cw

PY = sys.executable


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_status_is_the_childs(workdir: Path, code: int) -> None:
    result = run_cw("run", "-q", "--", PY, "-c", f"raise SystemExit({code})", cwd=workdir)
    assert result.returncode == code


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
def test_death_by_signal_is_128_plus_n_and_named(workdir: Path, sig: signal.Signals) -> None:
    script = f"import os; os.kill(os.getpid(), {int(sig)})"
    result = run_cw("run", "-q", "--json", "-", "--", PY, "-c", script, cwd=workdir)
    assert result.returncode == 128 + sig
    report = json.loads(result.stdout)
    assert report["signal"] == sig.name
    assert report["exit_code"] == 128 + sig


def test_command_not_found_is_127_with_one_line(workdir: Path) -> None:
    result = run_cw("run", "--", "no-such-command-xyz", cwd=workdir)
    assert result.returncode == 127
    assert result.stderr.count("\n") == 1
    assert "no-such-command-xyz: command not found" in result.stderr
    assert logs_in(workdir) == []  # nothing ran, nothing logged


def test_not_executable_is_126(workdir: Path) -> None:
    script = workdir / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = run_cw("run", "--", str(script), cwd=workdir)
    assert result.returncode == 126
    assert result.stderr.count("\n") == 1 and "cannot execute" in result.stderr


def test_a_script_without_a_shebang_runs_under_sh(workdir: Path) -> None:
    """As `env` and shells run it (ENOEXEC: /bin/sh, its path as $0); before, 126."""
    script = workdir / "plain"
    script.write_text('echo "ran $0 $1"\nexit 4\n')
    script.chmod(0o755)
    result = run_cw("run", "-q", "--", str(script), "x", cwd=workdir)
    assert (result.returncode, result.stdout) == (4, f"ran {script} x\n"), result.stderr


def test_a_missing_interpreter_is_126_with_bashs_line(workdir: Path) -> None:
    """Before, "command not found" and 127 (execve's ENOENT), for a file that is there."""
    script = workdir / "script.sh"
    script.write_text("#!/no/such/sh\necho hi\n")
    script.chmod(0o755)
    result = run_cw("run", "--", str(script), cwd=workdir)
    assert result.returncode == 126
    assert result.stderr == (
        f"carbonwrap: {script}: /no/such/sh: bad interpreter: No such file or directory\n"
    )
    assert logs_in(workdir) == []


def test_death_by_a_real_time_signal(workdir: Path) -> None:
    """SIGRTMIN+N has no name in Python's enum: before, a traceback (exit 1) after the command
    ended, no end record."""
    script = "import os, signal; os.kill(os.getpid(), signal.SIGRTMIN + 2)"
    result = run_cw("run", "-q", "--json", "-", "--", PY, "-c", script, cwd=workdir)
    assert result.returncode == 128 + signal.SIGRTMIN + 2, result.stderr
    report = json.loads(result.stdout)
    assert (report["signal"], report["exit_code"]) == ("SIGRTMIN+2", result.returncode)


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--bogus", "true"],
        ["run", "--pue", "0.5", "true"],
        ["run", "--interval", "abc", "true"],
        ["run", "--tag", "novalue", "true"],
        ["run", "--region", "Atlantis", "true"],
        ["run", "--interval", "5", "--log-interval", "1", "true"],
        ["run"],
        ["nosuchcommand"],
    ],
)
def test_bad_input_is_one_line_and_125(workdir: Path, args: list[str]) -> None:
    result = run_cw(*args, cwd=workdir)
    assert result.returncode == 125, result.stderr
    assert result.stderr.startswith("carbonwrap: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_log_dir_is_125_and_child_never_runs(workdir: Path) -> None:
    blocker = workdir / "file"
    blocker.write_text("")
    marker = workdir / "ran"
    result = run_cw(
        "run", "--log-dir", str(blocker / "logs"), "--", "touch", str(marker), cwd=workdir
    )
    assert result.returncode == 125
    assert "cannot write the log" in result.stderr and "--log-dir" in result.stderr
    assert not marker.exists()


def test_options_after_the_command_go_to_the_child(workdir: Path) -> None:
    show = "import json, sys; print(json.dumps(sys.argv[1:]))"
    for args in (
        ["run", "-q", "--", PY, "-c", show, "--log", "x", "--output", "y", "-q", "--"],
        ["run", "-q", PY, "-c", show, "--log", "x", "--output", "y", "-q", "--"],
    ):
        result = run_cw(*args, cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == ["--log", "x", "--output", "y", "-q", "--"]
    assert len(logs_in(workdir / "logs")) == 2  # --log x did not move carbonwrap's log


def test_environment_stdin_and_run_id(workdir: Path) -> None:
    script = (
        "import os, sys; data = sys.stdin.read(); "
        "print(os.environ['CARBONWRAP_RUN_ID'], os.environ['MY_VAR'], data)"
    )
    result = run_cw(
        "run", "-q", "--", PY, "-c", script, cwd=workdir, env=cw_env(MY_VAR="kept"), input="piped"
    )
    run_id, my_var, data = result.stdout.split()
    assert (my_var, data) == ("kept", "piped")
    (log,) = logs_in(workdir)
    assert records(log)[0]["run_id"] == run_id
    assert run_id in log.name


TRAP = """
import os, signal, sys, time
out = sys.argv[1]
def note(signum, frame):
    with open(out, "a") as f:
        f.write(signal.Signals(signum).name + "\\n")
    if signum == signal.SIGTERM:
        sys.exit(7)
for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, note)
open(out + ".ready", "w").close()
deadline = time.time() + 20
while time.time() < deadline:
    time.sleep(0.01)
"""


def _start_trap(workdir: Path) -> tuple[subprocess.Popen[str], Path]:
    out = workdir / "signals.txt"
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--json", str(workdir / "r.json"), "--", PY, "-c", TRAP, str(out)),
        cwd=workdir,
        env=cw_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 20
    while not Path(str(out) + ".ready").exists():
        assert time.time() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    return proc, out


def test_forwards_hup_usr1_usr2_and_term_then_still_writes_end(workdir: Path) -> None:
    proc, out = _start_trap(workdir)
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        proc.send_signal(sig)
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 7
    assert out.read_text().split() == ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTERM"]
    (log,) = logs_in(workdir)
    end = records(log)[-1]
    assert end["type"] == "end" and end["exit_code"] == 7
    assert end["signals_received"] == ["SIGHUP", "SIGUSR1", "SIGUSR2", "SIGTERM"]
    assert json.loads((workdir / "r.json").read_text())["exit_code"] == 7


def test_sigint_to_the_wrapper_alone_is_ignored(workdir: Path) -> None:
    proc, _ = _start_trap(workdir)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGQUIT)
    time.sleep(0.3)
    assert proc.poll() is None  # carbonwrap ignored both, the child was not touched
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 7


def test_ctrl_c_to_the_process_group_reaches_the_child(workdir: Path) -> None:
    """As a terminal does: SIGINT to the foreground group; the child dies of it, we report it."""
    script = "import time; open('ready', 'w').close(); time.sleep(30)"
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--json", "r.json", "--", PY, "-c", script),
        cwd=workdir,
        env=cw_env(),
        process_group=0,
    )
    deadline = time.time() + 20
    while not (workdir / "ready").exists():
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=20)
    # Python's default SIGINT handler raises KeyboardInterrupt: exit status 130 after cleanup
    # (128 + SIGINT), and carbonwrap passes it through with its log complete.
    assert proc.returncode == 130
    report = json.loads((workdir / "r.json").read_text())
    assert report["status"] == "killed" and report["log_complete"] is True


def test_child_keeps_dispositions_carbonwrap_was_started_with(workdir: Path) -> None:
    """Under nohup (SIGHUP ignored) the child still ignores SIGHUP; otherwise it is default."""
    script = (
        "import signal as s; "
        "print(s.getsignal(s.SIGHUP) == s.SIG_IGN, s.getsignal(s.SIGTERM) == s.SIG_DFL)"
    )
    plain = run_cw("run", "-q", "--", PY, "-c", script, cwd=workdir)
    assert plain.stdout.split() == ["False", "True"]

    def ignore_hup() -> None:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    nohup = subprocess.run(
        cw_argv("run", "-q", "--", PY, "-c", script),
        cwd=workdir,
        env=cw_env(),
        capture_output=True,
        text=True,
        preexec_fn=ignore_hup,
        timeout=30,
    )
    assert nohup.stdout.split() == ["True", "True"]


def test_child_gets_default_sigpipe_as_from_a_shell(workdir: Path) -> None:
    """Python ignores SIGPIPE; the child must not inherit that (`yes | head` ends quietly)."""
    result = run_cw("run", "-q", "--", "sh", "-c", "yes | head -c 5; echo", cwd=workdir)
    assert result.returncode == 0
    assert result.stdout == "y\ny\ny\n"
    assert result.stderr == ""  # no "yes: standard output: Broken pipe"


def test_inherited_file_descriptors_pass_through(workdir: Path) -> None:
    """An fd the caller passes (as a shell's 3>file does) reaches the command unchanged."""
    target = workdir / "fd3.txt"
    with open(target, "w") as f:
        result = subprocess.run(
            cw_argv("run", "-q", "--", "sh", "-c", "echo via-fd >&7"),
            cwd=workdir,
            env=cw_env(),
            preexec_fn=lambda: os.dup2(f.fileno(), 7),  # as `7>file` in a shell
            pass_fds=(7,),
            timeout=30,
        )
    assert result.returncode == 0
    assert target.read_text() == "via-fd\n"
