"""Start-up as a multiple of the bare interpreter (issue 19): `carbonwrap run -q -- true` and
`carbonwrap run -- true` against `python -c pass`, measured interleaved in the same run.

    python3 bench/startup_ratio.py [--runs 40] [--python PATH] [--source DIR]
                                   [--before DIR | --baseline REV]

The figure, as the issue words it ("adds at most 2.5x the time of a bare python3 -c pass"):
what carbonwrap adds to running `true` alone (the difference of their median wall times),
divided by the median wall time of `python -c pass` started the same way (same interpreter,
same environment, one of each per round, the order rotating each round, after a warm-up
round); the whole run's ratio beside it. Target: at most 2.5x. The CPU time (user+sys from
os.wait4: carbonwrap plus `true`) is printed in the table with its own ratio: on a machine
shared with other work it is the steadier figure.

Variants:
  - `python -c pass`: the bare baseline (the interpreter and its `site`, nothing imported);
  - `true`: the command alone, spawned the same way;
  - `carbonwrap run -q -- true`: no report;
  - `carbonwrap run -- true`: the plain-text final report written to stderr, a pipe that
    this script drains after the exit (a CI log, `2>&1 | tee`);
  - with --before DIR (a directory holding a carbonwrap/ package, e.g. a copy taken before a
    change) or --baseline REV (carbonwrap/ of a commit), the same two for that code.
carbonwrap is started as the console script starts it, with PYTHONPATH set to the checkout
(bench/_bench.py says why not an editable install); bytecode cached in a temporary
PYTHONPYCACHEPREFIX. Timed figures are never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench

TARGET_RATIO = 2.5


def timed(argv: list[str], env: dict[str, str], cwd: str, pipe_stderr: bool) -> tuple[float, float]:
    """Wall ms around spawn + wait, and CPU ms (user+sys of the process and its children)."""
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if pipe_stderr else subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter_ns() - t0) / 1e6
    if proc.stderr is not None:  # the report (a few hundred bytes) waits in the pipe's buffer
        proc.stderr.read()
        proc.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc
    if rc != 0:
        again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
        tail = (again.stderr.strip().splitlines() or [""])[-1]
        sys.exit(f"bench: {shlex.join(argv)} exited {rc}; stderr of a rerun: {tail}")
    return elapsed, (usage.ru_utime + usage.ru_stime) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=40, help="timed rounds (default 40)")
    ap.add_argument(
        "--source",
        metavar="DIR",
        help="time the carbonwrap/ package in DIR instead of the working tree (a copy is "
        "immune to edits made while the bench runs)",
    )
    ap.add_argument("--before", metavar="DIR", help="also time the carbonwrap/ package in DIR")
    ap.add_argument("--baseline", metavar="REV", help="also time carbonwrap/ of commit REV")
    _bench.add_common_args(ap)
    args = ap.parse_args()
    interp = _bench.apply_common_args(args)
    if args.source:
        _bench.SOURCE = Path(args.source).resolve()
        _bench.SOURCE_NOTE = f"the carbonwrap/ package in {_bench.SOURCE}"
    true = shutil.which("true") or "/bin/true"
    print(_bench.header("carbonwrap start-up as a multiple of python -c pass", interp))
    print(
        f"runs:     {args.runs} rounds, interleaved (order rotating), after 1 warm-up round; "
        "stdout -> /dev/null; cwd outside the repo"
    )
    with tempfile.TemporaryDirectory(prefix="cw-bench-ratio-") as tmp:
        logs = os.path.join(tmp, "logs")
        env = _bench.carbonwrap_env(os.path.join(tmp, "pycache"))
        cw = _bench.carbonwrap_argv
        quiet = cw(interp, "run", "-q", "--log-dir", logs, "--", true)
        report = cw(interp, "run", "--log-dir", logs, "--", true)
        variants: list[tuple[str, list[str], dict[str, str], bool]] = [
            ("python -c pass", [interp.python, "-c", "pass"], env, False),
            ("true", [true], env, False),  # what carbonwrap adds to: the command alone
            ("carbonwrap run -q -- true", quiet, env, False),
            ("carbonwrap run -- true (report -> pipe)", report, env, True),
        ]
        other: Path | None = None
        if args.before:
            other, label = Path(args.before).resolve(), "before"
            print(f"before:   {other}")
        elif args.baseline:
            other, note = _bench.snapshot(args.baseline)
            label = args.baseline
            print(f"baseline: {note}")
        if other is not None:
            base_env = _bench.carbonwrap_env(os.path.join(tmp, "pycache-other"), source=other)
            variants += [
                (f"{label}: carbonwrap run -q -- true", quiet, base_env, False),
                (f"{label}: carbonwrap run -- true (report -> pipe)", report, base_env, True),
            ]
        print()
        for _, argv, e, pipe in variants:  # warm-up: page cache, .pyc files
            timed(argv, e, tmp, pipe)
        wall: dict[str, list[float]] = {v[0]: [] for v in variants}
        cpu: dict[str, list[float]] = {v[0]: [] for v in variants}
        for i in range(args.runs):
            k = i % len(variants)
            for name, argv, e, pipe in variants[k:] + variants[:k]:
                wall_ms, cpu_ms = timed(argv, e, tmp, pipe)
                wall[name].append(wall_ms)
                cpu[name].append(cpu_ms)
            _bench.clear_logs(logs)

    base_wall = _bench.quantiles(wall["python -c pass"])[1]
    base_cpu = _bench.quantiles(cpu["python -c pass"])[1]
    width = max(len(v[0]) for v in variants)
    print(
        f"{'variant':<{width}}  {'wall median':>11}  {'p10':>8}  {'p90':>8}  {'ratio':>6}  "
        f"{'CPU median':>10}  {'ratio':>6}"
    )
    for name, *_ in variants:
        p10, med, p90 = _bench.quantiles(wall[name])
        c = _bench.quantiles(cpu[name])[1]
        print(
            f"{name:<{width}}  {med:8.1f} ms  {p10:5.1f} ms  {p90:5.1f} ms  "
            f"{med / base_wall:5.2f}x  {c:7.1f} ms  {c / base_cpu:5.2f}x"
        )
    print()
    alone = _bench.quantiles(wall["true"])[1]
    for name, *_ in variants[2:]:
        whole = _bench.quantiles(wall[name])[1]
        ratio, added = whole / base_wall, (whole - alone) / base_wall
        verdict = "within" if added <= TARGET_RATIO else "OVER"
        print(
            f"{name}: adds {added:.2f}x python -c pass to `true` alone ({ratio:.2f}x in all), "
            f"wall medians: {verdict} the {TARGET_RATIO}x target"
        )


if __name__ == "__main__":
    main()
