"""Every signal whose default action would end carbonwrap mid-run: forwarded to the command (it
decides), or ignored where it concerns carbonwrap alone (SIGXCPU); either way carbonwrap
outlives the command and writes its end record. Real signals from `kill`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env, logs_in, records

from carbonwrap.run.child import signal_name

PY = sys.executable

# Before, each of these ended carbonwrap by its default action (exit 128 + N, no end record),
# and the command ran on, orphaned.
FORWARDED = [
    signal.SIGALRM,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGIO,
    signal.SIGPWR,
    signal.SIGRTMIN,
    signal.SIGRTMIN + 5,
    signal.SIGRTMAX,
]

# The command notes each signal it gets, and ends with status 7 on SIGTERM.
TRAP = """
import signal, sys, time
out = sys.argv[1]
def note(signum, frame):
    with open(out, "a") as f:
        f.write(f"{signum}\\n")
    if signum == signal.SIGTERM:
        sys.exit(7)
for s in [int(n) for n in sys.argv[2:]] + [signal.SIGTERM, signal.SIGXCPU]:
    signal.signal(s, note)
open(out + ".ready", "w").close()
deadline = time.time() + 30
while time.time() < deadline:
    time.sleep(0.01)
"""


def start_trap(workdir: Path, signals: list[int]) -> tuple[subprocess.Popen[str], Path]:
    out = workdir / "signals.txt"
    args = ["run", "-q", "--json", str(workdir / "r.json"), "--log-dir", str(workdir / "logs")]
    proc = subprocess.Popen(
        cw_argv(*args, "--", PY, "-c", TRAP, str(out), *map(str, signals)),
        cwd=workdir,
        env=cw_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not Path(f"{out}.ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    return proc, out


def received(out: Path) -> list[int]:
    return [int(line) for line in out.read_text().split()] if out.exists() else []


def wait_for(out: Path, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(received(out)) < count and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("sig", FORWARDED, ids=signal_name)
def test_a_fatal_signal_is_forwarded_and_the_end_is_recorded(workdir: Path, sig: int) -> None:
    proc, out = start_trap(workdir, [sig])
    proc.send_signal(sig)
    wait_for(out, 1)
    assert proc.poll() is None, proc.communicate()  # carbonwrap lives on
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 7, stderr
    assert received(out) == [sig, signal.SIGTERM]
    (log,) = logs_in(workdir / "logs")
    end = records(log)[-1]
    assert end["type"] == "end" and end["exit_code"] == 7
    assert end["signals_received"] == [signal_name(sig), "SIGTERM"]
    assert json.loads((workdir / "r.json").read_text())["exit_code"] == 7


def test_all_of_them_in_a_row(workdir: Path) -> None:
    proc, out = start_trap(workdir, FORWARDED)
    for n, sig in enumerate(FORWARDED, start=1):
        proc.send_signal(sig)
        wait_for(out, n)  # one at a time: the order is checked
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 7
    assert received(out) == [*FORWARDED, signal.SIGTERM]


def test_sigxcpu_is_carbonwraps_own_and_ignored(workdir: Path) -> None:
    """RLIMIT_CPU is per process: the kernel's SIGXCPU to carbonwrap is about carbonwrap's CPU
    time, and passing it on could end a job that is within its own limit. Ignored: before, it
    ended carbonwrap (exit 152, a core dump, no end record)."""
    proc, out = start_trap(workdir, [])
    proc.send_signal(signal.SIGXCPU)
    time.sleep(0.3)
    assert proc.poll() is None, proc.communicate()
    assert received(out) == []  # the command was not touched
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 7
    (log,) = logs_in(workdir / "logs")
    end = records(log)[-1]
    assert end["type"] == "end" and end["signals_received"] == ["SIGTERM"]


def test_the_command_gets_them_at_their_default(workdir: Path) -> None:
    """Caught by carbonwrap, so exec resets them: the command starts with the default action
    for each (SigCgt and SigIgn clear), as it would without carbonwrap."""
    script = (
        "status = dict(l.split(':') for l in open('/proc/self/status') if l.startswith('Sig'))\n"
        "print(int(status['SigIgn'], 16), int(status['SigCgt'], 16))"
    )
    result = subprocess.run(
        cw_argv("run", "-q", "--log-dir", str(workdir / "logs"), "--", PY, "-c", script),
        cwd=workdir,
        env=cw_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    ignored, caught = map(int, result.stdout.split())
    for sig in [*FORWARDED, signal.SIGXCPU]:
        bit = 1 << (sig - 1)
        assert not ignored & bit and not caught & bit, signal_name(sig)
