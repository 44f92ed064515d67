"""Signals to carbonwrap at random moments, start-up and the final write included: SIGTERM,
SIGHUP, SIGINT (from `kill` and to the terminal's process group) and SIGKILL.

Each run wraps a short command that notes when it starts and ends; a seeded random delay picks
the moment. Whatever the moment: the command is treated as without carbonwrap (a forwarded
signal, a terminal's Ctrl-C to the group, or nothing at all), carbonwrap exits with the
command's status (or, before the command exists, of the signal, as the command would have),
the log is whole lines, and an end record agrees with the exit status."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import cw_argv, cw_env

from carbonwrap.runlog.reader import RecordReader

CHILD = "echo started >> {marker}; sleep 0.3; echo done >> {marker}"
SEED = 20261127
VARIANTS = ["TERM", "HUP", "INT-kill", "INT-group", "KILL"]


def one_run(workdir: Path, variant: str, delay_s: float, n: int) -> str:
    """One wrapped run signalled after `delay_s`; checks it and says what happened."""
    marker = workdir / f"marker-{n}"
    logs = workdir / f"logs-{n}"
    proc = subprocess.Popen(
        cw_argv("run", "-q", "--interval", "0.05", "--log-interval", "0.05", "--log-dir",
                str(logs), "--", "sh", "-c", CHILD.format(marker=marker)),
        cwd=workdir, env=cw_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        process_group=0,  # its own group, as a shell's job: the group is what a terminal signals
    )  # fmt: skip
    time.sleep(delay_s)
    sig = {"TERM": signal.SIGTERM, "HUP": signal.SIGHUP, "KILL": signal.SIGKILL}.get(
        variant, signal.SIGINT
    )
    with contextlib.suppress(ProcessLookupError):
        if variant == "INT-group":
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    code = proc.returncode
    if stderr.startswith("Fatal Python error: init_"):
        # Ctrl-C within the interpreter's own first ~40 ms (its standard streams, site.py),
        # before any carbonwrap code: CPython's fatal error in that phase of its start
        # (init_sys_streams, init_import_site), nothing to hand over (a known limit,
        # RELIABILITY.md).
        assert variant.startswith("INT") and not (marker.exists() or logs.exists()), stderr
        return "before"
    assert "Traceback" not in stderr, (variant, delay_s, stderr)
    # What the command did (it runs on after carbonwrap's SIGKILL: wait for it to finish).
    deadline = time.monotonic() + 5
    lines = marker.read_text().split() if marker.exists() else []
    while variant == "KILL" and lines == ["started"] and time.monotonic() < deadline:
        time.sleep(0.02)
        lines = marker.read_text().split()
    started, finished = "started" in lines, "done" in lines
    where = f"{variant} after {delay_s:.3f} s: exit {code}, command {lines}, stderr {stderr!r}"
    forwarded = variant in ("TERM", "HUP", "INT-group")  # reaches the command (or would have)
    if variant == "KILL":
        assert code == -signal.SIGKILL or (code == 0 and finished), where
        assert not started or finished, where  # the command is not touched
    elif not started:  # signalled before the command existed: ended as the command would be
        assert code in (128 + sig, -sig) if forwarded else code in (128 + sig, -sig, 0), where
    elif finished:
        assert code == 0, where  # it ended on its own: its status, the signal changed nothing
    else:
        assert forwarded and code == 128 + sig, where  # it died of the signal: 128 + N
    for log in logs.glob("*.jsonl") if logs.exists() else ():
        reader = RecordReader(log)
        found = list(reader)
        assert reader.bad_lines == 0, where  # whole lines, whatever the moment
        ends = [r for r in found if r["type"] == "end"]
        if ends:
            assert ends[0]["exit_code"] == code, where
        if found:
            assert found[0]["type"] == "start", where
    if variant != "KILL" and started:
        assert list(logs.glob("*.jsonl")), where  # a command that ran has its log
    return "before" if not started else ("after" if finished else "during")


def run_many(workdir: Path, variant: str, runs: int, seed: int) -> dict[str, int]:
    rng = random.Random(f"{seed}-{variant}")
    seen: dict[str, int] = {}
    for n in range(runs):
        delay_s = rng.uniform(0.0, 0.9)  # start-up (~0.15-0.4 s), the command, the end
        moment = one_run(workdir, variant, delay_s, n)
        seen[moment] = seen.get(moment, 0) + 1
    return seen


@pytest.mark.parametrize("variant", VARIANTS)
def test_signals_at_random_moments(workdir: Path, variant: str) -> None:
    run_many(workdir, variant, 8, SEED)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_signals_at_random_moments_long(workdir: Path, variant: str) -> None:
    seen = run_many(workdir, variant, 60, SEED + 1)
    assert len(seen) >= 2, seen
